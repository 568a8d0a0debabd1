"""`rlaif constitution ...`: check constitution files."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rlaif.cli.options import console

__all__ = ["constitution_app"]

constitution_app = typer.Typer(no_args_is_help=True, help="Check constitution files.")


@constitution_app.command("validate")
def constitution_validate(
    file: Annotated[
        str, typer.Argument(help="Constitution file (YAML, CAI JSON, llm-swarm JSON) or shipped name.")
    ],
) -> None:
    """Check a constitution file and list its principles."""
    from rlaif.inputs.constitution import find_constitution, load_constitution

    constitution = load_constitution(find_constitution(file))
    table = Table(title=f"{constitution.name} v{constitution.version} (hash {constitution.hash})")
    for column in ("id", "weight", "tags", "critique request"):
        table.add_column(column)
    for p in constitution.principles:
        table.add_row(p.id, f"{p.weight:g}", ", ".join(p.tags), p.critique_request[:70])
    console.print(table)
    console.print(
        f"[green]ok[/green]: {len(constitution.principles)} principles, {len(constitution.examples)} examples"
    )
