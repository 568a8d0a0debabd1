"""What every command shares: the consoles, the options declared once, and `--set` parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from rlaif.errors import ConfigError

__all__ = [
    "ConfigArg", "ForceOpt", "JsonOpt", "QuietOpt", "SetOpt", "console", "err", "overrides", "set_option",
]  # fmt: skip

console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Run config YAML (see examples/quickstart.yaml).")]


def set_option(example: str, note: str = "") -> Any:
    """The `--set` option, with an example that fits the command."""
    help_text = f"Override a config value{note}: --set {example}" + ("" if note else " (YAML value)") + "."
    return Annotated[list[str] | None, typer.Option("--set", help=help_text)]


SetOpt = set_option("revise.rounds=1")
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")]
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
