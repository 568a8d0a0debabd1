"""What every command shares: the consoles, the options declared once, and `--set` parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from rlaif.errors import ConfigError

__all__ = [
    "ConfigArg", "ForceOpt", "JsonOpt", "QuietOpt", "SetOpt", "console", "err", "output_file",
    "output_option", "overrides", "set_option",
]  # fmt: skip

console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Run config YAML (see examples/quickstart.yaml).")]


def set_option(example: str, note: str = "") -> Any:
    """The `--set` option, with an example that fits the command."""
    help_text = f"Override a config value{note}: --set {example}" + ("" if note else " (YAML value)") + "."
    return Annotated[list[str] | None, typer.Option("--set", help=help_text)]


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
