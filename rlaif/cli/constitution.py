"""`rlaif constitution ...`: check constitution files."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from rlaif.cli.options import console

__all__ = ["constitution_app"]

constitution_app = typer.Typer(no_args_is_help=True, help="Check constitution files.")

FileArg = Annotated[
    str,
    typer.Argument(help="Constitution file (YAML, CAI JSON, CAI RL list, llm-swarm JSON) or shipped name."),
]


@constitution_app.command("validate")
def constitution_validate(file: FileArg) -> None:
    """Check a constitution file and list its principles, what each is used for, and its check."""
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.judging.checks import checkable, describe_check

    constitution = load_constitution(find_constitution(file))
    title = f"{constitution.name} v{constitution.version} (hash {constitution.hash})"
    table = Table(title=escape(title))
    table.add_column("id", overflow="fold")
    table.add_column("used to")
    table.add_column("weight")
    table.add_column("check (all rules must pass)", overflow="fold")
    table.add_column("tags")
    for p in constitution.principles:
        uses = " + ".join(use for use, on in (("critique", p.critiques), ("judge", p.judges)) if on)
        row = (p.id, uses, f"{p.weight:g}", describe_check(p.check) or "-", ", ".join(p.tags))
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    counts = (
        f"{len(constitution.principles)} principles ({len(constitution.for_critique())} critique, "
        f"{len(constitution.for_judging())} judge, {len(checkable(constitution))} checkable), "
        f"{len(constitution.examples)} examples"
    )
    console.print(f"[green]ok[/green]: {counts}")
