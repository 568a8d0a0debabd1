"""The tables of `rlaif review`: the agreement report (the AI judge against people, people among themselves).

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from rlaif.cli.options import console
from rlaif.reports import percent
from rlaif.review.reports import AgreementReport

__all__ = ["print_review_report"]


def _num(value: float | None, ci: tuple[float, float] | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def print_review_report(report: AgreementReport) -> None:
    """The agreement report as rich tables."""
    ai = report.ai_vs_human
    table = Table(title=f"AI judge vs people ({percent(report.settings.confidence, 0)} bootstrap intervals)")
    for column in (
        "overall / principle / reviewer",
        "pairs",
        "decisions",
        "accuracy",
        "kappa",
        "ties",
        "flags",
    ):
        table.add_column(column, justify="left" if column.startswith("overall") else "right")
    rows = [("overall", ai.overall)] + [(f"· {k}", v) for k, v in ai.by_principle.items()]
    if len(ai.by_reviewer) >= 2:
        rows += [(f"reviewer {k}", v) for k, v in ai.by_reviewer.items()]
    for scope, stats in rows:
        table.add_row(
            scope, str(stats.pairs), str(stats.decisions), _num(stats.accuracy, stats.accuracy_ci),
            _num(stats.kappa, stats.kappa_ci), str(stats.ties), str(stats.flags),
        )  # fmt: skip
    console.print(table)
    people = report.between_reviewers
    if len(people.reviewers) >= 2:
        between = Table(title="Between reviewers (on the pairs both decided)")
        columns = (
            "reviewers",
            "shared pairs",
            "same verdict",
            "both picked: same",
            "with a tie",
            "flagged",
            "kappa",
        )
        for column in columns:
            between.add_column(column, justify="left" if column == "reviewers" else "right")
        for names, cohen in people.cohen.items():
            between.add_row(
                f"Cohen: {names}",
                str(cohen.pairs),
                f"{cohen.agree} ({percent(cohen.raw_agreement, 0)})",
                f"{cohen.decisive_agree} of {cohen.decisive} ({percent(cohen.decisive_agreement, 0)})",
                str(cohen.ties),
                str(cohen.flags),
                _num(cohen.kappa, cohen.kappa_ci),
            )
        if people.fleiss:
            fleiss = people.fleiss
            between.add_row(
                f"Fleiss: {len(people.reviewers)} reviewers", str(fleiss.pairs), "", "", "", "",
                _num(fleiss.kappa, fleiss.kappa_ci),
            )  # fmt: skip
        console.print(between)
    reviewers = ", ".join(f"{name} ({count})" for name, count in report.reviewers.items()) or "none yet"
    console.print(
        f"pairs reviewed: {report.pairs_reviewed}; reviewers: {reviewers}", highlight=False, markup=False
    )
    gate = report.gate
    if gate is None:
        console.print("gate: none configured (review.gate)")
    elif gate.passed:
        console.print(f"gate: [green]passed[/green] ({gate.metric} {_num(gate.value)} on {gate.pairs} pairs)")
    else:
        console.print(f"gate: [red]failed[/red]: {escape('; '.join(gate.reasons))}")
