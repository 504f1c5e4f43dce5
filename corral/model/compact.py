"""Pydantic objects held by the hundred thousand, made smaller without changing what they are.

A validated `Task` read from the store is about 3.2 KB, and the spec it points at is shared
already (`task.SharedSpecs`); most of the rest is pydantic's bookkeeping, not data:

- `__pydantic_fields_set__`: a set of the names given at validation. A stored task names every
  field, so each task held its own 22-name set (2.2 KB). Objects given every field now share one
  set per model class. Adding a name to it (pydantic does, on assignment and in `model_copy`'s
  copy) adds nothing, since every name is in it, and `model_copy` copies it before changing it.
- `__dict__`: pydantic makes each instance a dict of its own (832 bytes for a task's 22 fields).
  CPython keeps the attributes of ordinary objects in dicts that share one table of keys per class
  (PEP 412, "key-sharing dictionaries"), 296 bytes for the same 22 values; the values are moved
  into such a dict. It is an ordinary `dict` to every reader (pydantic's validation, dumps,
  `==`, `model_copy`), and on an interpreter without shared keys it is just a dict as before.
- Strings repeated across objects (service, stack and node names) are interned, so a
  million tasks on 5,000 nodes hold 5,000 node names, not a million.

With the spec shared, a cached task goes from about 3.2 KB to about 0.6 KB (bench/memory.py).
Objects compacted here are shared by whoever reads the cache: never change one in place (copy
with `model_copy(update=...)`, as everything does already).
"""

import sys
from dataclasses import make_dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}  # model class -> the one fields-set of objects given every field
_KEY_SHARING: dict[type[BaseModel], type] = {}  # model class -> a plain class whose instances' dicts share keys


def _all_fields(cls: type[BaseModel]) -> set[str]:
    shared = _ALL_FIELDS.get(cls)
    if shared is None:
        shared = _ALL_FIELDS[cls] = set(cls.model_fields)
    return shared


def _key_sharing_dict(cls: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values` in a dict that shares its table of keys with every other one made for `cls`: the
    attributes of a plain object of a class with the same fields (its generated `__init__` sets
    them, the fastest way), taken as its `__dict__`. `values` itself when it has other keys."""
    holder_class = _KEY_SHARING.get(cls)
    if holder_class is None:
        holder_class = _KEY_SHARING[cls] = make_dataclass(f"_{cls.__name__}Values", list(cls.model_fields), eq=False, repr=False)
    try:
        holder = holder_class(**values)
    except TypeError:  # not every field, or others (extra="allow"): left as it is
        return values
    shared: dict[str, Any] = holder.__dict__
    return shared


def compact(model: BaseModel, intern: tuple[str, ...] = ()) -> None:
    """Make `model` smaller in place (see the module's docstring); the fields named in `intern` are
    strings (or None) to intern. Call it once, right after validation, before anybody else sees it."""
    cls = type(model)
    values = model.__dict__
    for name in intern:
        value = values.get(name)
        if type(value) is str:
            values[name] = sys.intern(value)
    if model.__pydantic_fields_set__ == _all_fields(cls):
        object.__setattr__(model, "__pydantic_fields_set__", _all_fields(cls))
    object.__setattr__(model, "__dict__", _key_sharing_dict(cls, values))


def compacted_copy(model: M, intern: tuple[str, ...] = (), every_field: bool = False) -> M:
    """A compacted copy of `model` (as `compact` leaves one) with a dict of values of its own: changing `model`'s
    fields afterwards does not change the copy (the values themselves are shared, as `model_copy` shares them).
    `every_field`: the copy counts every field as given, as validating the model's full dump does (an object made
    with a few fields given, its defaults for the rest, otherwise keeps a set of its own naming those few).
    Made directly, not by `model_copy` and `compact` (half the time: it is made for every write)."""
    cls = type(model)
    values = model.__dict__
    copied_values = _key_sharing_dict(cls, values)
    if copied_values is values:
        copied_values = dict(values)
    for name in intern:
        value = copied_values.get(name)
        if type(value) is str:
            copied_values[name] = sys.intern(value)
    every = _all_fields(cls)
    fields_set = model.__pydantic_fields_set__
    extra, private = model.__pydantic_extra__, model.__pydantic_private__
    copied = cls.__new__(cls)
    _set = object.__setattr__
    _set(copied, "__dict__", copied_values)
    _set(copied, "__pydantic_fields_set__", every if every_field or fields_set is every or fields_set == every else set(fields_set))
    _set(copied, "__pydantic_extra__", None if extra is None else dict(extra))
    _set(copied, "__pydantic_private__", None if private is None else dict(private))
    return copied
