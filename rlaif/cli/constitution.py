"""`rlaif constitution ...`: check constitution files and measure their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from rlaif.cli.options import JsonOpt, console
from rlaif.errors import ConfigError

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


@constitution_app.command("bench")
def constitution_bench(
    file: FileArg,
    responses: Annotated[
        int,
        typer.Option("--responses", min=1, help="Responses in the mix, each checked under every principle."),
    ] = 20_000,
    json_path: JsonOpt = None,
) -> None:
    """Measure how many responses per second the declarative check rules handle (not a timed test)."""
    from rlaif.bench.checks import bench_checks
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.reports import percent

    constitution = load_constitution(find_constitution(file))
    report = bench_checks(constitution, responses=responses)
    table = Table(title=escape(f"checks of {report.constitution} on {report.responses:,} responses"))
    for column in ("principle", "rules", "pass rate", "check errors"):
        table.add_column(column)
    for entry in report.principles:
        row = (entry.principle_id, ", ".join(entry.rules), percent(entry.pass_rate), str(entry.check_errors))
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for note in report.left_out:
        console.print(f"[yellow]left out[/yellow]: {escape(note)}")
    rate, target = report.responses_per_second, report.target_per_second
    shown = "n/a" if rate is None else f"{rate:,.0f}"
    colour = "green" if rate is not None and rate >= target else "yellow"
    console.print(
        f"[{colour}]{shown} responses/s[/{colour}] (median of {report.repeats} passes; each response checked "
        f"under {len(report.principles)} principles; target {target:,.0f}) on {escape(report.machine)}"
    )
    if json_path is not None:
        _write_json(json_path, report.model_dump_json(indent=2) + "\n")


def _write_json(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"--json {path}: cannot write the report ({exc.strerror or exc}); give a file path"
        ) from None
