import stat
from pathlib import Path

import pytest

from corral.manager import keys
from corral.manager.access.roles import Role
from corral.manager.access.tokens import (
    authenticate,
    create_token,
    ensure_admin_token,
    list_tokens,
    new_token,
    revoke_token,
    token_id,
    verify,
)
from corral.model.errors import InvalidSpec, NotFound, Unauthorized
from corral.store import Store

NOW = 1_800_000_000.0


def test_a_new_token_verifies_and_carries_its_role() -> None:
    text, record = new_token("ci", Role.viewer, NOW)
    assert text.startswith(f"corral_{record.id}_")
    assert token_id(text) == record.id
    assert verify(record, text, NOW) == Role.viewer


def test_the_record_holds_a_hash_never_the_secret() -> None:
    text, record = new_token("ci", Role.deployer, NOW)
    secret = text.split("_", 2)[2]
    assert secret not in record.model_dump_json()
    assert len(record.secret_sha256) == 64


@pytest.mark.parametrize("change", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t[:-1], lambda t: "Bearer " + t])
def test_a_wrong_or_malformed_token_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    text, record = new_token("ci", Role.admin, NOW)
    with pytest.raises(Unauthorized):
        verify(record, change(text), NOW)


def test_another_tokens_secret_does_not_pass_for_this_one() -> None:
    text, record = new_token("a", Role.admin, NOW)
    other, _ = new_token("b", Role.admin, NOW)
    forged = f"corral_{record.id}_{other.split('_', 2)[2]}"
    with pytest.raises(Unauthorized, match="invalid token"):
        verify(record, forged, NOW)


def test_expiry_is_decided_by_the_clock_passed_in() -> None:
    text, record = new_token("ci", Role.viewer, NOW, expires_at=NOW + 30)
    assert verify(record, text, NOW + 29.9) == Role.viewer
    with pytest.raises(Unauthorized, match="expired"):
        verify(record, text, NOW + 30)


def test_bad_names_roles_and_expiries_are_invalid_input() -> None:
    with pytest.raises(InvalidSpec) as bad_name:
        new_token("has space", Role.viewer, NOW)
    assert bad_name.value.path == "name"
    with pytest.raises(InvalidSpec, match="role"):
        new_token("n", Role.node, NOW)
    with pytest.raises(InvalidSpec, match="future"):
        new_token("n", Role.viewer, NOW, expires_at=NOW)


async def test_create_list_revoke_and_authenticate(store: Store) -> None:
    text, record = await create_token(store, "ci", Role.deployer, NOW)
    assert (await authenticate(store, text, NOW)).name == "ci"
    assert [r.id for r in await list_tokens(store)] == [record.id]
    revoked = await revoke_token(store, record.id, NOW + 5)
    assert revoked.revoked_at == NOW + 5
    assert (await revoke_token(store, record.id, NOW + 9)).revoked_at == NOW + 5  # idempotent
    with pytest.raises(Unauthorized, match="revoked"):
        await authenticate(store, text, NOW + 10)
    with pytest.raises(NotFound):
        await revoke_token(store, "0" * 12, NOW)


async def test_missing_and_unknown_tokens_are_unauthorized(store: Store) -> None:
    with pytest.raises(Unauthorized, match="missing token"):
        await authenticate(store, None, NOW)
    text, _ = new_token("never-stored", Role.admin, NOW)
    with pytest.raises(Unauthorized, match="matches no token"):
        await authenticate(store, text, NOW)


async def test_the_admin_token_is_written_once_0600_and_kept(store: Store, tmp_path: Path) -> None:
    path = await ensure_admin_token(store, tmp_path, NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text().strip()
    assert (await authenticate(store, text, NOW)).role == Role.admin
    await ensure_admin_token(store, tmp_path, NOW + 100)
    assert path.read_text().strip() == text
    assert len(await list_tokens(store)) == 1


async def test_a_revoked_admin_token_file_is_replaced(store: Store, tmp_path: Path) -> None:
    path = await ensure_admin_token(store, tmp_path, NOW)
    old = path.read_text().strip()
    await revoke_token(store, token_id(old), NOW + 1)
    await ensure_admin_token(store, tmp_path, NOW + 2)
    new = path.read_text().strip()
    assert new != old
    assert (await authenticate(store, new, NOW + 2)).role == Role.admin


async def test_records_live_under_the_tokens_prefix(store: Store) -> None:
    _, record = await create_token(store, "ci", Role.viewer, NOW)
    assert await store.get(keys.token_key(record.id)) is not None
    assert keys.token_key(record.id).startswith(keys.TOKENS)
