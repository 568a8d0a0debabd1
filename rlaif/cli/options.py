"""What every command shares: the consoles, the group class, the options declared once, `--set` parsing."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from typer.core import TyperGroup

from rlaif.errors import ConfigError

__all__ = [
    "CommandGroup", "ConfigArg", "ForceOpt", "JsonOpt", "QuietOpt", "SetOpt", "choices", "console", "err",
    "output_file", "output_option", "overrides", "set_option",
]  # fmt: skip

console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Run config YAML (see examples/quickstart.yaml).")]


class CommandGroup(TyperGroup):
    """Every group of the `rlaif` command (`typer.Typer(cls=CommandGroup)`).

    Flags show as flags in `--help` (typer labels them `<bool>`), and a command whose run config is its first
    argument still accepts the `--config FILE` spelling of other commands, with a one-line note.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _flags_as_flags(command.get_params(ctx))
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and any(
            p.param_type_name == "argument" and p.name == "config" for p in command.params
        ):
            rest = _config_first(f"{ctx.command_path} {name}", rest)
        return name, command, rest


def _flags_as_flags(params: list[Any]) -> list[Any]:
    """A flag takes no value, so its help shows no type."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _config_first(command: str, args: list[str]) -> list[str]:
    """`--config FILE` (`-c FILE`, `--config=FILE`) moved to the first argument, with a deprecation note."""
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("--config", "-c") and index + 1 < len(args):
            value, rest = args[index + 1], args[:index] + args[index + 2 :]
        elif arg.startswith("--config="):
            value, rest = arg.partition("=")[2], args[:index] + args[index + 1 :]
        else:
            continue
        err.print(
            f"note: `--config` is deprecated for `{command}`; give the config as its first argument: "
            f"{command} {value}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        return [value, *rest]
    return args


def choices(name: str, values: Iterable[str]) -> type[StrEnum]:
    """An option type taking one of `values`: help lists them, a wrong one is a usage error naming them."""
    return StrEnum(name, {value: value for value in values})  # type: ignore[return-value]


def set_option(example: str, note: str = "") -> Any:
    """The `--set` option, with an example that fits the command."""
    help_text = f"Override a config value{note}: --set {example}" + ("" if note else " (YAML value)") + "."
    return Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=help_text)]


def output_file(param: typer.CallbackParam, value: Path | None) -> Path | None:
    """An output file option, checked before any work starts: not a folder, not under a file."""
    if value is None:
        return None
    name = (param.opts or [param.name or "option"])[0]
    if value.is_dir():
        raise ConfigError(f"{name} {value} is a folder; give a file name, e.g. {value / 'report.json'}")
    above = next((p for p in value.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{name} {value}: {above} is a file, not a folder; choose another path")
    return value


def output_option(flag: str, help_text: str) -> Any:
    """A `Path` option naming a file rlaif writes (checked at once by `output_file`)."""
    return Annotated[Path | None, typer.Option(flag, help=help_text, callback=output_file)]


SetOpt = set_option("revise.rounds=1")
JsonOpt = output_option("--json", "Write the report as JSON here.")
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go on when a quality gate, an empty export or the human-review gate would stop the run "
        "(recorded in the manifest).",
    ),
]


def overrides(values: list[str] | None) -> dict[str, Any]:
    """`--set key=value` options as a dotted-key mapping; values are YAML."""
    result: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: write it as key=value, e.g. --set revise.rounds=1")
        try:
            result[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(
                f"--set {item!r}: the value is not valid YAML ({problem}); "
                "fix it or quote it as text, e.g. --set 'key=\"text\"'"
            ) from None
    return result
