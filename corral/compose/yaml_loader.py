"""A YAML loader that reads compose files as Docker Compose does (YAML 1.2 core), within bounds.

PyYAML's SafeLoader follows YAML 1.1, where `22:22` is the base-60 number
1342 and `on`/`off`/`yes`/`no` are booleans: a port or an environment value
would silently change. This loader drops those two rules; it is otherwise
SafeLoader (no arbitrary objects).

It also bounds what a small text can make: an alias is counted as the nodes
it stands for (a 600-byte "billion laughs" file stands for billions), and the
file is refused once it stands for more than `Limits.yaml_nodes` nodes, uses
more than `yaml_aliases` aliases, nests deeper than `yaml_depth`, has a
mapping or list of more than `yaml_entries` entries, or takes longer than its
time budget to read. An alias inside the node it names (a loop) is refused.
Events come from libyaml when it is installed (several times faster).
"""

import re
import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, NoReturn

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import Node, ScalarNode
from yaml.resolver import Resolver

from corral.compose.paths import child, item
from corral.model.errors import InvalidSpec
from corral.model.limits import Limits

Parser: type = yaml.cyaml.CParser if yaml.__with_libyaml__ else yaml.SafeLoader  # type: ignore[attr-defined]
_CHECK_CLOCK_EVERY = 1024  # nodes


class _BoundedComposer(Composer):
    """PyYAML's composer, counting nodes (aliases expanded), aliases, depth and entries as it goes."""

    limits: Limits
    deadline: float
    clock: Callable[[], float]
    check_event: Callable[..., bool]  # the parser's (PyYAML's mixins are untyped)
    peek_event: Callable[[], Any]

    def start_counting(self, limits: Limits, deadline: float, clock: Callable[[], float]) -> None:
        self.limits, self.deadline, self.clock = limits, deadline, clock
        self._nodes = 0
        self._aliases = 0
        self._path: list[str] = []
        self._sizes: dict[int, int] = {}  # id(anchored node) -> nodes it stands for, once composed

    def compose_node(self, parent: Node | None, index: object) -> Node:
        if parent is not None and len(parent.value) >= self.limits.yaml_entries:
            self._refuse(f"more than {self.limits.yaml_entries} entries in one mapping or list")
        if self.check_event(AliasEvent):
            return self._alias()
        self._path.append(self._segment(index))
        if len(self._path) > self.limits.yaml_depth:
            self._refuse(f"nested deeper than {self.limits.yaml_depth} levels")
        before = self._nodes
        self._count(1)
        anchor = self.peek_event().anchor
        node: Node = super().compose_node(parent, index)  # type: ignore[arg-type, assignment]
        if anchor is not None:
            self._sizes[id(node)] = self._nodes - before
        self._path.pop()
        return node

    def _alias(self) -> Node:
        event = self.peek_event()
        node = self.anchors.get(event.anchor)
        self._aliases += 1
        if self._aliases > self.limits.yaml_aliases:
            self._refuse(f"more than {self.limits.yaml_aliases} aliases in the file", whole=True)
        if node is not None:
            size = self._sizes.get(id(node))
            if size is None:
                self._refuse(f"the alias *{event.anchor} is inside the node it names (a loop)")
            else:
                self._count(size)
        found: Node = super().compose_node(None, None)  # type: ignore[arg-type, assignment]  # PyYAML's own checks (undefined alias)
        return found

    def _count(self, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > self.limits.yaml_nodes:
            self._refuse(f"the file stands for more than {self.limits.yaml_nodes} YAML nodes once its aliases are expanded", whole=True)
        if self._nodes % _CHECK_CLOCK_EVERY < nodes and self.clock() > self.deadline:
            self._refuse("the file takes too long to read; send a smaller one", whole=True)

    def _segment(self, index: object) -> str:
        """The path step to a child: a list index, a mapping key's text, or "" (a key itself, the root)."""
        if index is None:
            return ""
        if isinstance(index, int):
            return f"[{index}]"
        if isinstance(index, ScalarNode):
            return str(index.value)[:60]
        return "?"

    def _refuse(self, reason: str, whole: bool = False) -> NoReturn:
        path = ""
        for segment in [] if whole else self._path:
            if segment.startswith("["):
                path = item(path, int(segment[1:-1]))
            elif segment:
                path = child(path, segment)
        mark = self.peek_event().start_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise InvalidSpec(path, f"{where}{reason}")


class ComposeLoader(_BoundedComposer, Parser, SafeConstructor, Resolver):  # type: ignore[misc]
    def __init__(self, stream: str) -> None:
        Parser.__init__(self, stream)  # type: ignore[misc]
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class Reset:
    """`!reset`: merging this file removes the value (compose's merge tag)."""


@dataclass(frozen=True)
class Override:
    """`!override VALUE`: merging this file replaces the value whole, bypassing the merge rules."""

    value: object


def _override(loader: ComposeLoader, node: Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


ComposeLoader.add_constructor("!reset", lambda _loader, _node: Reset())
ComposeLoader.add_constructor("!override", _override)


def load(text: str, limits: Limits = Limits(), budget: float = 10.0, clock: Callable[[], float] = time.monotonic) -> object:
    """The document of `text`; InvalidSpec when it goes beyond `limits` or takes over `budget` seconds."""
    loader = ComposeLoader(text)
    loader.start_counting(limits, clock() + budget, clock)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_document(text: str, limits: Limits = Limits(), budget: float = 10.0, clock: Callable[[], float] = time.monotonic) -> object:
    """`load`, every failure turned into an InvalidSpec that says what is wrong and on which line."""
    try:
        return load(text, limits, budget, clock)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise InvalidSpec("", f"invalid YAML: {where}{error.problem or error.context or error}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise InvalidSpec("", f"invalid YAML: line {line}: {error.reason}") from None
    except yaml.YAMLError as error:
        raise InvalidSpec("", f"invalid YAML: {error}") from None
    except (ValueError, OverflowError) as error:  # e.g. a date like 2024-13-45
        raise InvalidSpec("", f"invalid YAML: {error}") from None
    except RecursionError:
        raise InvalidSpec("", "invalid YAML: nested too deeply") from None


class _ComposeDumper(yaml.SafeDumper):
    """SafeDumper quoting every string either YAML 1.1 or this loader would read as something else (`0o17`, `1e3`)."""


_ComposeDumper.yaml_implicit_resolvers = {
    first: [*yaml.SafeDumper.yaml_implicit_resolvers.get(first, []), *ComposeLoader.yaml_implicit_resolvers.get(first, [])]
    for first in {*yaml.SafeDumper.yaml_implicit_resolvers, *ComposeLoader.yaml_implicit_resolvers}
}


def dump(document: object) -> str:
    """`document` as YAML that `load` reads back the same (strings stay strings)."""
    return yaml.dump(document, Dumper=_ComposeDumper, sort_keys=False, width=1_000_000)  # non-ASCII escaped: NEL would read back as a break
