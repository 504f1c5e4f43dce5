import pytest

from corral.pki import InvalidJoinToken, JoinToken, ca_fingerprint, create_ca
from pki_factories import NOW


def test_a_token_round_trips_and_carries_the_ca_digest() -> None:
    ca = create_ca(NOW)
    token = JoinToken.generate(ca.certificate)
    text = str(token)
    assert text.startswith(f"corral-{ca_fingerprint(ca.certificate)}-")
    assert JoinToken.parse(text) == token
    assert JoinToken.parse(f"  {text}\n") == token


@pytest.mark.parametrize(
    "text",
    ["", "corral-abc-def", "SWMTKN-1-" + "a" * 64 + "-" + "b" * 48, "corral-" + "A" * 64 + "-" + "b" * 48, "corral-" + "a" * 64 + "-short"],
)
def test_malformed_tokens_are_refused_with_the_expected_shape(text: str) -> None:
    with pytest.raises(InvalidJoinToken, match="corral-<64 hex digits"):
        JoinToken.parse(text)


def test_the_agent_accepts_only_the_ca_the_token_pins() -> None:
    ca, impostor = create_ca(NOW), create_ca(NOW)
    token = JoinToken.generate(ca.certificate)
    token.verify_ca(ca.certificate)
    with pytest.raises(InvalidJoinToken, match="pins"):
        token.verify_ca(impostor.certificate)


def test_the_manager_accepts_only_its_current_token() -> None:
    ca = create_ca(NOW)
    current = JoinToken.generate(ca.certificate)
    JoinToken.parse(str(current)).verify_secret(current)
    rotated = JoinToken.generate(ca.certificate)
    with pytest.raises(InvalidJoinToken, match="rotated"):
        current.verify_secret(rotated)
    other_cluster = JoinToken(ca_digest=ca_fingerprint(create_ca(NOW).certificate), secret=current.secret)
    with pytest.raises(InvalidJoinToken):
        other_cluster.verify_secret(current)
