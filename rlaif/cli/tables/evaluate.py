"""The tables of `rlaif evaluate`: the judge against labels, attacks, its cost, win rate, compliance.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlaif.bench.reports import JudgeCostBench
from rlaif.cli.options import console
from rlaif.evaluate.reports import (
    AttackOutcome,
    AttackReport,
    CalibrationFit,
    ComplianceReport,
    EnsembleVotes,
    JudgeEvaluation,
    PassRate,
    WinRateReport,
    WinTally,
)
from rlaif.reports import percent, rate_text

__all__ = [
    "calibration_rows",
    "print_attacks",
    "print_compliance",
    "print_judge_cost",
    "print_judge_report",
    "print_winrate",
]


def _warnings(table: Table, warnings: list[str]) -> None:
    for warning in warnings:
        table.add_row("[yellow]warning[/yellow]", f"[yellow]{escape(warning)}[/yellow]")


def _win(tally: WinTally) -> str:
    if tally.win_rate is None:
        return "n/a (no prompt decided)"
    interval = ""
    if tally.ci is not None:
        interval = f"  {percent(tally.confidence, 0)} CI [{percent(tally.ci[0])}, {percent(tally.ci[1])}]"
    return f"{percent(tally.win_rate)} of {tally.n}{interval}"


def print_winrate(report: WinRateReport) -> None:
    """The win-rate report as a table."""
    rate = report.win_rate
    title = f"win rate of {escape(report.candidate)} against {escape(report.base)}"
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value")
    prompts = report.prompts
    held = (
        "held out"
        if prompts.held_out
        else f"[yellow]{prompts.overlap_with_training} seen in training[/yellow]"
    )
    table.add_row("prompts", f"{prompts.count} from {escape(prompts.path)} ({held})")
    table.add_row("judge", f"{escape(report.judge)} ({report.judge_mode}, both orders)")
    table.add_row("candidate win rate (tie = half)", _win(rate))
    table.add_row("wins / losses / ties", f"{rate.wins} / {rate.losses} / {rate.ties}")
    if rate.orders_disagreed:
        table.add_row("win rate, prompts whose orders disagree as ties", _win(report.win_rate_strict))
    table.add_row("order-consistency", rate_text(report.order_consistency))
    table.add_row("same-position rate", rate_text(report.same_position_rate))
    table.add_row(f"orders disagreed (handled: inconsistent={rate.inconsistent})", str(rate.orders_disagreed))
    table.add_row("unjudged (no verdict parsed)", str(rate.unjudged))
    if rate.mean_p_candidate is not None:
        table.add_row("mean P(candidate better)", f"{rate.mean_p_candidate:.3f}")
    lengths = report.lengths
    for who, stats in (("base", lengths.base), ("candidate", lengths.candidate)):
        if stats.n and stats.tokens_mean is not None:
            table.add_row(
                f"{who} answer tokens mean / median / p90",
                f"{stats.tokens_mean:.1f} / {stats.tokens_median:.0f} / {stats.tokens_p90}  "
                f"(cut off {percent(stats.cut_off, 0)})",
            )
    if lengths.drift_tokens is not None:
        table.add_row("verbosity drift (candidate - base, tokens)", f"{lengths.drift_tokens:+.1f}")
    kl = report.kl
    if kl.per_token is not None and kl.per_answer is not None:
        table.add_row(
            "KL(candidate ‖ base)", f"{kl.per_token:.4f} nats/token, {kl.per_answer:.3f} nats/answer"
        )
    seconds = report.seconds
    startup = f" (judge server start {seconds['judge_startup']} s)" if "judge_startup" in seconds else ""
    table.add_row("time", f"{seconds.get('total')} s{startup}")
    _warnings(table, report.warnings)
    console.print(table)
    if report.plot:
        console.print(f"chart: {report.plot}", highlight=False, markup=False)


def print_judge_report(report: JudgeEvaluation) -> None:
    """The judge evaluation as a table; a figure that means the data is noise is yellow, with a warning."""
    table = Table(title=f"judge evaluation: {escape(report.judge)}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    data = report.data
    if data is not None:
        fixed = f", {data.principle_rows} naming their principle" if data.principle_rows else ""
        table.add_row("data", f"{escape(data.path)} ({data.format}, {data.rows} rows{fixed})")
        if data.prefix_mismatch_lines:
            lines = ", ".join(map(str, data.prefix_mismatch_lines))
            table.add_row("[yellow]prefix mismatch (lines)[/yellow]", lines)
    labelled = report.n - report.parse.rows_without_label
    headline = "[yellow]n/a (no row decided)[/yellow]"
    if report.agreement is not None:
        interval = ""
        if report.agreement_ci95 is not None:
            low, high = report.agreement_ci95
            interval = f"  95% CI [{percent(low)}, {percent(high)}]"
        headline = f"{percent(report.agreement)} of {labelled} labelled rows{interval}"
    table.add_row(f"agreement ({report.agreement_method})", headline)
    table.add_row("agreement, decided rows only", rate_text(report.agreement_decisive))
    table.add_row("ties (label exactly 0.5, counted half)", str(report.ties))
    if report.agreement_two_orders is not None:
        table.add_row("agreement, first order only", rate_text(report.agreement_one_order))
    consistency, same = report.order_consistency, report.same_position_rate
    low_consistency = consistency is not None and consistency.value is not None and consistency.value < 0.5
    one_position = same is not None and same.value is not None and same.value > 0.8
    table.add_row("order-consistency", _yellow(rate_text(consistency), low_consistency))
    table.add_row("same-position rate", _yellow(rate_text(same), one_position))
    table.add_row("first order picks A", rate_text(report.first_order_picks_a))
    parse = report.parse
    table.add_row("unparsed / error orders", f"{parse.unparsed_orders} / {parse.error_orders}")
    table.add_row("rows without a label (left out)", str(parse.rows_without_label))
    calibration = report.calibration
    if calibration.ece is None or calibration.brier is None:
        table.add_row("calibration", "n/a (no labelled row)")
    else:
        table.add_row(
            "calibration (one point per row)",
            f"ECE {calibration.ece:.3f}, Brier {calibration.brier:.3f} over {calibration.points} rows "
            "(a constant 0.5 scores Brier 0.25)",
        )
    if calibration.plot:
        table.add_row("reliability plot", escape(calibration.plot))
    calibration_rows(table, report.calibration_fit, report.ensemble)
    if report.per_principle:
        for pid, rate in report.per_principle.items():
            table.add_row(f"  principle {escape(pid)} (fixed per row)", rate_text(rate))
    elif report.baseline is None:
        table.add_row("per principle", "none: no row names its principle_id (principles were sampled)")
    table.add_row("candidates flagged as injections (rows)", str(report.flagged_rows))
    startup = "" if report.startup_seconds is None else f" (server start {report.startup_seconds} s)"
    table.add_row("time judging", f"{report.seconds} s{startup}")
    _warnings(table, report.warnings)
    console.print(table)


def _yellow(text: str, warn: bool) -> str:
    return f"[yellow]{text}[/yellow]" if warn else text


def _flip(outcome: AttackOutcome | None) -> str:
    if outcome is None:
        return "n/a"
    return f"{percent(outcome.flip_rate, 0)} ({outcome.flips}/{outcome.clean_losses})"


def print_attacks(report: AttackReport) -> None:
    """The attack suite's flip rates as a table."""
    table = Table(title=f"attack suite on {report.pairs} pairs (the rejected reply is attacked)")
    for column in (
        "attack",
        "flip rate, defences on",
        "flip rate, defences off",
        "win rate on/off",
        "flagged",
    ):
        table.add_column(column)
    for name, result in report.attacks.items():
        on, off = result.defences_on, result.defences_off
        wins = " / ".join(percent(o.win_rate_attacked, 0) if o else "n/a" for o in (on, off))
        table.add_row(escape(name), _flip(on), _flip(off), wins, percent(result.flagged, 0))
    console.print(table)
    console.print(f"clean responses flagged (false alarms): {percent(report.clean_flagged, 0)}")


def print_judge_cost(result: JudgeCostBench) -> None:
    """The judging-cost benchmark as a table."""
    tokens = result.tokens
    table = Table(
        title=f"judging cost on {tokens.pairs} pairs (fresh server per measurement)", show_header=False
    )
    table.add_column("what")
    table.add_column("value")
    table.add_row("shared prefix tokens S / rest R", f"{tokens.shared_tokens_S} / {tokens.rest_tokens_R}")
    table.add_row("token ratio (S + 2R)/(S + R)", _ratio(tokens.token_ratio))
    table.add_row(f"  with S in whole {tokens.block}-token blocks", _ratio(tokens.block_ratio))
    for name, seconds in result.mean_seconds.items():
        table.add_row(f"wall time, {name}", f"{seconds:.1f} s")
        table.add_row(f"  prefix-cache hit rate, {name}", percent(result.prefix_cache_hit_rate.get(name)))
    if result.wall_ratio is not None:
        table.add_row("wall ratio two-order / one-order", _ratio(result.wall_ratio))
        table.add_row("within 10% of the token ratio", str(result.within_10_percent))
    if result.cot_one_order_over_two_order is not None:
        table.add_row("one-order CoT / two-order one-token", f"{result.cot_one_order_over_two_order:.2f}x")
    console.print(table)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pass(rate: PassRate) -> str:
    if rate.value is None:
        return f"n/a (0 decided, {rate.errors} check errors)"
    errors = f", {rate.errors} check errors" if rate.errors else ""
    return f"{rate_text(rate)}{errors}"


def print_compliance(report: ComplianceReport) -> None:
    """Pass rates per checkable principle, base against candidate, with the difference and its interval."""
    title = (
        f"compliance of {escape(report.candidate)} against {escape(report.base)}: {report.prompts} held-out "
        f"prompts × {report.samples} answers"
    )
    table = Table(title=title)
    for column in ("principle", "check", "base", "candidate", "difference [95% CI]"):
        table.add_column(column)
    for row in report.principles:
        if row.difference is None or row.difference_ci95 is None:
            difference = Text("n/a")
        else:
            low, high = row.difference_ci95
            style = "green" if low > 0 else ("red" if high < 0 else "")
            difference = Text(f"{percent(row.difference)} [{percent(low)}, {percent(high)}]", style=style)
        table.add_row(row.principle_id, Text(row.rules), _pass(row.base), _pass(row.candidate), difference)
    console.print(table)
    lengths = report.lengths
    words = [
        f"{x:.1f}" if x is not None else "n/a"
        for x in (lengths.base.words_mean, lengths.candidate.words_mean)
    ]
    console.print(
        f"words per answer: base {words[0]}, candidate {words[1]}; "
        f"cut off: {percent(lengths.base.cut_off)} / {percent(lengths.candidate.cut_off)}",
        highlight=False,
    )
    if report.kl is not None and report.kl.per_token is not None:
        console.print(f"KL(candidate ‖ base): {report.kl.per_token:.4f} nats/token", highlight=False)
    if report.prompts_seen_in_training:
        console.print(
            Text(f"{report.prompts_seen_in_training} of the prompts were in the training set", style="yellow")
        )
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    if report.plot:
        console.print(f"chart: {report.plot}", highlight=False, markup=False)


def calibration_rows(table: Table, fit: CalibrationFit | None, ensemble: EnsembleVotes | None) -> None:
    """The soft labels' calibration (ECE/Brier before → after, or why they stay raw) and the ensemble's
    effective votes; a judge with no signal on the ground truth in red."""
    if fit is not None:
        head = "calibrated" if fit.applied else "uncalibrated (raw judge labels)"
        style = "" if fit.applied else "yellow"
        table.add_row("soft labels (p_chosen)", Text(f"{head}: {fit.reason}", style=style))
        if fit.rows and fit.ece_before is not None and fit.brier_before is not None:
            after = ""
            if fit.ece_after is not None and fit.brier_after is not None:
                after = f" → ECE {fit.ece_after:.3f}, Brier {fit.brier_after:.3f} ({fit.after_method})"
            table.add_row(
                f"calibration on {fit.rows} ground-truth rows",
                Text(f"ECE {fit.ece_before:.3f}, Brier {fit.brier_before:.3f}{after}"),
            )
        for warning in fit.warnings:
            table.add_row(Text("calibration warning", style="red"), Text(warning, style="red"))
    if ensemble is not None:
        table.add_row("judge ensemble votes", Text(ensemble.note))
