"""The table of `rlaif iterate`: one row per round, the base first, and what the stop rules did.

Text that comes from users or models (paths, reasons) is never read as rich markup.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from rlaif.cli.options import console
from rlaif.evaluate.reports import PassRate
from rlaif.reports import percent
from rlaif.rounds.reports import IterateReport

__all__ = ["print_rounds", "rounds_markdown"]

ALL = "every check"


def _rate(rate: PassRate | None) -> str:
    if rate is None or rate.value is None:
        return "n/a"
    return f"{percent(rate.value, 0)} ({rate.passed}/{rate.n})"


def _gain(value: float | None, interval: tuple[float, float] | None) -> Text:
    if value is None or interval is None:
        return Text("n/a")
    low, high = interval
    style = "green" if low > 0 else ("red" if high < 0 else "")
    return Text(f"{percent(value)} [{percent(low)}, {percent(high)}]", style=style)


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _principles(report: IterateReport) -> list[str]:
    return [p for p in report.base_rates if p != ALL]


def print_rounds(report: IterateReport) -> None:
    """The round table: held-out pass rates, gains with intervals, KL, length, pairs, what stopped it."""
    table = Table(title=f"rlaif iterate {report.run_dir}: {report.heldout_prompts} held-out prompts")
    principles = _principles(report)
    for column in ("round", "pairs", *principles, ALL, "gain vs previous [95% CI]", "vs base [95% CI]",
                   "KL/token", "words", "alerts"):  # fmt: skip
        table.add_column(column, overflow="fold")
    table.add_row(
        "base", "", *(_rate(report.base_rates.get(p)) for p in principles), _rate(report.base_rates.get(ALL)),
        "", "", "", _number(report.rounds[0].base_words_mean if report.rounds else None, 1), "",
    )  # fmt: skip
    for r in report.rounds:
        if r.status != "done":
            blank = [""] * len(principles)
            table.add_row(str(r.round), "", *blank, Text("refused", style="red"), "", "", "", "", "")
            continue
        table.add_row(
            str(r.round) + (" (best)" if r.round == report.best_round else ""), str(r.pairs),
            *(_rate(r.pass_rates.get(p)) for p in principles), _rate(r.pass_rates.get(ALL)),
            _gain(r.gain, r.gain_ci95), _gain(r.gain_vs_base, r.gain_vs_base_ci95),
            _number(r.kl_per_token, 3), _number(r.words_mean, 1), str(len(r.alerts)),
        )  # fmt: skip
    console.print(table)
    for r in report.rounds:
        if r.red_team is not None:
            red = r.red_team
            console.print(
                f"round {r.round} red team: {red.kept} of {red.asked} asked joined (aimed at "
                f"{', '.join(red.principles)}); every check on their answers {_rate(red.pass_rate)}, "
                f"on the others {_rate(red.others_pass_rate)}",
                highlight=False, markup=False,
            )  # fmt: skip
        for alert in r.alerts:
            console.print(Text(f"round {r.round} alert: {alert}", style="yellow"))
    if report.stop is not None:
        stop = report.stop
        style = "yellow" if stop.rule != "gate" else "red"
        console.print(Text(f"stopped after round {stop.round} ({stop.rule}): {stop.reason}", style=style))
    else:
        console.print(
            f"{report.status}: {len(report.rounds)} of {report.rounds_planned} rounds", highlight=False
        )
    if report.best_round is not None:
        console.print(f"best round: {report.best_round} ({report.best_model})", highlight=False, markup=False)
    if report.plot:
        console.print(f"chart: {report.plot}", highlight=False, markup=False)


def rounds_markdown(report: IterateReport) -> str:
    """The round table in markdown (for the README and the docs page)."""
    principles = _principles(report)
    head = ["round", "pairs", *principles, ALL, "gain vs previous [95% CI]", "KL/token", "words"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    base_words = report.rounds[0].base_words_mean if report.rounds else None
    rows = [["base", "", *(_rate(report.base_rates.get(p)) for p in [*principles, ALL]), "", "",
             _number(base_words, 1)]]  # fmt: skip
    for r in report.rounds:
        if r.status != "done":
            continue
        rates = [_rate(r.pass_rates.get(p)) for p in [*principles, ALL]]
        gain = _gain(r.gain, r.gain_ci95).plain
        name = f"{r.round}" + (" (best)" if r.round == report.best_round else "")
        rows.append([name, str(r.pairs), *rates, gain, _number(r.kl_per_token, 3), _number(r.words_mean, 1)])
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
