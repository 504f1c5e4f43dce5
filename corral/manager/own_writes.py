"""This manager's own writes, read back by its cache without validating them again.

A write made with `writes.put_op` carries a compacted copy of the object it dumped (`Op.model`); the SQLite
store hands that to its watchers in this process with the write's event (`WatchEvent.model`), and the cache
takes it instead of validating the value it reads back: during a deploy the cache's validation of each change
was 13% of the event loop. Values from anywhere else (etcd, another manager, a listing, a watch's history
after a restart) carry none and are validated as before.

With CORRAL_VERIFY_WRITES=1 (tests/conftest.py sets it for the whole suite) the cache validates the value
anyway and refuses a written object that differs from it in any field's value or type: `model_copy(update=...)`
does not validate, so a writer that put a value of another type into a model (a plain string for an enum, a
dict for a model) would otherwise give the cache an object the store's value does not read back as.
"""

import os
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

VERIFY = os.environ.get("CORRAL_VERIFY_WRITES") == "1"


class WrittenMismatch(AssertionError):
    """A written object differs from what its stored value reads back as (a writer's bug)."""


def written(cls: type[M], model: object, value: dict[str, Any]) -> M | None:
    """`model` if it is the writer's object of class `cls` for `value` (None: validate `value`)."""
    if type(model) is not cls:
        return None
    assert isinstance(model, cls)
    if VERIFY:
        check(model, cls.model_validate(value))
    return model


def check(model: BaseModel, validated: BaseModel) -> None:
    """Raise WrittenMismatch naming the first field whose value or type differs between the two, or if they were
    not given the same fields (what `exclude_unset` dumps; only at the top: a task's spec is written without its
    defaults, and the cache shares one spec object per service version whatever it was read with)."""
    if model.model_fields_set != validated.model_fields_set:
        raise WrittenMismatch(
            f"{type(validated).__name__} was written with fields {sorted(model.model_fields_set)} given but reads back"
            f" with {sorted(validated.model_fields_set)}"
        )
    _check_fields(model, validated)


def _check_fields(model: BaseModel, validated: BaseModel) -> None:
    for name in type(validated).model_fields:
        mine, theirs = model.__dict__.get(name), validated.__dict__.get(name)
        if not _same(mine, theirs):
            raise WrittenMismatch(
                f"{type(validated).__name__}.{name} was written as {mine!r:.300} ({type(mine).__name__}) but reads back"
                f" as {theirs!r:.300} ({type(theirs).__name__})"
            )


def _same(mine: object, theirs: object) -> bool:
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, BaseModel) and isinstance(theirs, BaseModel):
        try:
            _check_fields(mine, theirs)
        except WrittenMismatch:
            return False
        return True
    if isinstance(mine, (list, tuple)) and isinstance(theirs, (list, tuple)):
        return len(mine) == len(theirs) and all(_same(a, b) for a, b in zip(mine, theirs))
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)
    return mine == theirs
