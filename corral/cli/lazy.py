"""Commands registered by name, their modules imported only when one of them runs.

`corral --help` lists every command and `corral service ls` runs one; neither needs the manager, the agent, FastAPI
or the compose parser that other commands import. So the top-level group holds, for each command, its name, its
one-line help and a loader (a function that imports the command's module and returns the typer sub-app or the
command function); the loader runs only when the command is invoked or asked for its own help. Listing the commands
(`corral --help`, completion, "did you mean") uses the one-line help alone. tests/cli/test_lean_cli.py checks that
each one-line help is the command's own and that a listing imports none of the heavy modules.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

Loader = Callable[[], "typer.Typer | Callable[..., Any]"]


@dataclass(frozen=True)
class LazyCommand:
    name: str
    help: str  # the first line of the command's own help, shown in `corral --help`
    load: Loader


class LazyGroup(TyperGroup):
    """A typer group that also holds `lazy` commands, built into click commands only when resolved."""

    lazy: dict[str, LazyCommand] = {}  # set per group by `lazy_group`

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return self.commands.get(cmd_name)
        entry = self.lazy[cmd_name]
        if getattr(ctx, "_corral_listing", False):  # a help listing: the name and the line suffice
            return TyperCommand(name=entry.name, help=entry.help)
        command = build(entry, self.rich_markup_mode)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        ctx._corral_listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx._corral_listing = False

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        ctx._corral_listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            ctx._corral_listing = False


def lazy_group(commands: list[LazyCommand]) -> type[LazyGroup]:
    """A LazyGroup class holding `commands` (typer instantiates the class it is given as `cls`)."""
    return type("CorralGroup", (LazyGroup,), {"lazy": {each.name: each for each in commands}})


def build(entry: LazyCommand, markup: Any) -> Any:
    """The click command of `entry`: its module imported now (`markup`: the parent's rich markup mode)."""
    from typer.main import get_command_from_info, get_group_from_info
    from typer.models import CommandInfo, TyperInfo

    loaded = entry.load()
    if isinstance(loaded, typer.Typer):
        return get_group_from_info(
            TyperInfo(loaded, name=entry.name), pretty_exceptions_short=True, suggest_commands=True, rich_markup_mode=markup,
        )
    return get_command_from_info(CommandInfo(name=entry.name, callback=loaded), pretty_exceptions_short=True, rich_markup_mode=markup)
