"""The tables of the constitution author's tools: `rlaif constitution lint`, `preview`, `test`,
`compare`, and `rlaif evaluate audit`.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlaif.authoring.reports import (
    AuditReport,
    ConstitutionComparison,
    ConstitutionTrial,
    LintReport,
    PreviewReport,
)
from rlaif.cli.options import console
from rlaif.evaluate.bias import describe_share
from rlaif.reports import percent, rate_text

__all__ = ["print_audit", "print_comparison", "print_lint", "print_preview", "print_trial"]


def _notes(notes: list[str], label: str = "note") -> None:
    for note in notes:
        console.print(f"[yellow]{label}[/yellow]: {escape(note)}")


def print_lint(report: LintReport) -> None:
    # One line per warning in the FILE:LINE: form editors and CI annotate.
    for w in report.warnings:
        where = f"{w.file}:{w.line}" if w.line else w.file
        who = f" {w.principle_id}:" if w.principle_id else ""
        console.print(f"{escape(where)}: [yellow]{w.rule}[/yellow]{escape(who)} {escape(w.message)}")
    colour = "yellow" if report.warnings else "green"
    console.print(
        f"[{colour}]{len(report.warnings)} warning(s)[/{colour}] in {escape(report.constitution)} "
        f"({report.principles} principles; context {report.max_context} tokens, {escape(report.tokens)})"
    )


def print_preview(report: PreviewReport, *, full: bool = True) -> None:
    console.print(
        f"[bold]{escape(report.constitution)}[/bold], principle [bold]{escape(report.principle_id)}[/bold] "
        f"(tokens: {escape(report.tokens)})"
    )
    for request in report.requests:
        cached = ""
        if request.cached_prefix_tokens is not None:
            cached = (
                f"; {request.cached_prefix_tokens} from the prefix cache ({percent(request.cached_share)})"
            )
        console.rule(f"{request.name}: {request.tokens} tokens of {report.max_context}{cached}")
        for part in request.parts:
            console.print(f"[cyan]── {escape(part.label)} ({part.role}, {part.tokens} tokens)[/cyan]")
            if full:
                console.print(part.text, markup=False, highlight=False)
    if report.rubric is not None:
        written = report.rubric
        console.rule(f"rubric items written by {escape(written.model or 'the judge')}: {written.status}")
        for item in written.items:
            console.print(f"- {escape(item)}")
        if written.status != "ok" or written.duplicates:
            console.print(f"raw answer: {escape(written.raw)}", highlight=False)
    _notes(report.notes)


def print_trial(report: ConstitutionTrial) -> None:
    table = Table(
        title=escape(f"{report.constitution}: each principle as the judge's, on {report.rows} rows")
    )
    for column in (
        "principle",
        "agreement (95% CI)",
        "order-consistent",
        "same position",
        "decisive",
        "no label",
    ):
        table.add_column(column)
    for t in report.principles:
        table.add_row(
            escape(t.principle_id), rate_text(t.agreement), rate_text(t.order_consistency),
            rate_text(t.same_position_rate), rate_text(t.decisive), str(t.rows_without_label),
        )  # fmt: skip
    console.print(table)
    console.print(f"judge {escape(report.judge)}, seed {report.seed}, {report.seconds} s; a tie counts half")
    _notes(report.warnings, "warning")


def print_comparison(report: ConstitutionComparison) -> None:
    table = Table(title=escape(f"{report.a} (A) against {report.b} (B) on {report.rows} rows"))
    table.add_column("")
    table.add_column("agreement (95% CI)")
    table.add_row(escape(f"A {report.a}"), rate_text(report.agreement_a))
    table.add_row(escape(f"B {report.b}"), rate_text(report.agreement_b))
    d = report.difference
    ci = f" [{d.ci95[0]:+.3f}, {d.ci95[1]:+.3f}]" if d.ci95 else " (no interval)"
    shown = "n/a" if d.value is None else f"{d.value:+.3f}{ci}"
    table.add_row("B - A (paired bootstrap)", f"{shown} over {d.n} rows")
    console.print(table)
    common = ", ".join(report.common_principles) or "none"
    console.print(
        f"judge {escape(report.judge)}, seed {report.seed}; rows whose verdict differs: "
        f"{report.disagreeing_rows}; principles in common: {escape(common)}"
    )
    if report.disagreements_file:
        console.print(f"rows that differ most: {escape(report.disagreements_file)}")
    _notes(report.notes)


def print_audit(report: AuditReport) -> None:
    # A row per trait and a heading row per group (not a column per principle): it reads at 80 columns.
    table = Table(title=escape(f"What the {report.pairs} pairs of {report.run_dir} reward: chosen has more"))
    table.add_column("pairs / trait", overflow="fold")
    for column in ("chosen more", "95% CI", "differ", "equal"):
        table.add_column(column, justify="right")
    for group in report.groups:
        table.add_row(Text(f"{group.group} ({group.pairs} pairs)", style="bold"))
        for share in group.traits:
            r = share.chosen_more
            ci = f"[{100 * r.ci95[0]:.0f}, {100 * r.ci95[1]:.0f}]" if r.ci95 else "n/a"
            table.add_row(Text(f"  {share.trait}"), percent(r.value, 0), ci, str(r.n), str(share.equal))
    console.print(table)
    console.print(
        "share of pairs where the chosen answer has more of the trait (95% Wilson interval) of the pairs "
        "that differ; pairs with equal amounts are left out (counted in --json)"
    )
    if report.length_bias is not None:
        console.print(f"judge length bias: {escape(describe_share(report.length_bias, 'the longer answer'))}")
    if report.chart:
        console.print(f"chart: {escape(report.chart)}")
    _notes(report.warnings, "warning")
    _notes(report.notes)
