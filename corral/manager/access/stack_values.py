"""The secrets and configs a compose file defines, turned into store writes at deploy time.

A stack's top-level `secrets:`/`configs:` come three ways: `external: true`
(created beforehand: it must exist), `content:` (a config's inline text),
or `file:`/`environment:`, whose values the CLI read on the deploying
machine and sent with the deploy request in base64 (the manager never reads
the user's files). A value not stored yet becomes a put (`expect=0`) in the
deploy's own transaction, so a refused deploy stores nothing. A stored one
must hold the same bytes: values never change (as Swarm), so other bytes
under an existing name are a Conflict that says to use a new name.

A value a deploy stored belongs to its stack (`stack` in the record) and is
removed with it, in the same transaction, unless another stack's service
uses it (as `docker stack rm`).
"""

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from corral.compose import Definition
from corral.compose.paths import child
from corral.manager import keys
from corral.manager.access.secrets import StoredValue, new_record, store_key, users, value_of
from corral.model import ServiceSpec
from corral.model.errors import Conflict, InvalidSpec
from corral.store import KeyValue, Op, Store


@dataclass
class ValueWrites:
    """What a deploy stores of its secrets and configs: the ops, and the names they create."""

    ops: list[Op] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)


async def plan_values(
    store: Store,
    stack: str,
    definitions: Iterable[Definition],
    sent_secrets: Mapping[str, str],
    sent_configs: Mapping[str, str],
    now: float,
    data_key: bytes | None,
) -> ValueWrites:
    """The writes for the compose file's definitions; InvalidSpec or Conflict (naming the entry) refuse the deploy."""
    definitions = list(definitions)
    sent = {"secret": dict(sent_secrets), "config": dict(sent_configs)}
    _check_nothing_extra(definitions, sent)
    writes = ValueWrites()
    for definition in definitions:
        kind, name = definition.kind, definition.name
        found = await store.get(store_key(kind, name))
        if definition.external:
            if found is None:
                raise InvalidSpec(
                    definition.path, f"external {kind} {name!r} does not exist: create it first (corral {kind} create {name} -f FILE)"
                )
            continue
        value = _value(definition, sent[kind])
        if found is not None:
            if not hmac.compare_digest(value_of(StoredValue.model_validate(found.value), data_key), value):
                raise Conflict(
                    f"{definition.path}: {kind} {name!r} already exists with other content, and values never change: "
                    f"store the new value under a new name (`name:` in {definition.path}) and deploy again"
                )
            continue
        record = new_record(kind, name, value, now, data_key, stack)
        writes.ops.append(Op.put(store_key(kind, name), record.model_dump(mode="json"), expect=0))
        (writes.secrets if kind == "secret" else writes.configs).append(name)
    return writes


def _value(definition: Definition, sent: Mapping[str, str]) -> bytes:
    if definition.content is not None:
        return definition.content.encode()
    source = "file" if definition.file is not None else "environment"
    if definition.name not in sent:
        raise InvalidSpec(
            child(definition.path, source),
            f"the value was not sent with the deploy request: the corral CLI reads {source}: values on the deploying machine",
        )
    try:
        return base64.b64decode(sent[definition.name], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec(f"{definition.kind}s.{definition.name}", "the value sent is not base64") from None


def _check_nothing_extra(definitions: list[Definition], sent: Mapping[str, Mapping[str, str]]) -> None:
    """Every value sent is one the compose file reads from a file or the environment."""
    for kind, values in sent.items():
        expected = {d.name for d in definitions if d.kind == kind and not d.external and d.content is None}
        for name in sorted(set(values) - expected):
            raise InvalidSpec(f"{kind}s.{name}", f"the compose file defines no {kind} stored as {name!r} from a file or the environment")


async def stack_values(store: Store, stack: str) -> list[tuple[KeyValue, StoredValue]]:
    """The values a deploy of `stack` stored (read before the stack's removal is planned)."""
    found: list[tuple[KeyValue, StoredValue]] = []
    for prefix in (keys.SECRETS, keys.CONFIGS):
        rows, _ = await store.range(prefix)
        found += [(row, record) for row in rows if (record := StoredValue.model_validate(row.value)).stack == stack]
    return found


def removal_ops(owned: Iterable[tuple[KeyValue, StoredValue]], remaining: Iterable[ServiceSpec]) -> list[Op]:
    """Deletes of a removed stack's values that no remaining service uses (each only if still as read)."""
    specs = list(remaining)
    return [
        Op.delete(row.key, expect=row.mod_revision) for row, record in owned if not users(record.kind, record.name, specs)
    ]
