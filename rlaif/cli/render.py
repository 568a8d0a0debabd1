"""Every table the CLI prints, rendered from the typed reports' fields.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlaif.cli.options import console
from rlaif.reports import (
    AgreementReport,
    AttackOutcome,
    AttackReport,
    ComplianceReport,
    GenerationBench,
    JudgeCostBench,
    JudgeEvaluation,
    PassRate,
    QualityReport,
    Rate,
    RewardAccuracy,
    RunSummary,
    TrainBench,
    WinRateReport,
    WinTally,
    percent,
)
from rlaif.train.registry import TRAINERS

__all__ = [
    "generation_markdown",
    "print_attacks",
    "print_judge_cost",
    "print_judge_report",
    "print_review_report",
    "print_summary",
    "print_winrate",
    "train_bench_markdown",
]


def print_summary(summary: RunSummary) -> None:
    """The run summary as a table."""
    table = Table(title="rlaif run summary", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for name, count in summary.counts.model_dump().items():
        if count is not None:
            table.add_row(name, str(count))
    judge = summary.judge
    if judge.judged:
        # Red at the bias warnings' limits: orders agreeing under half the time, one position picked 80%.
        low = judge.consistency_rate is not None and judge.consistency_rate < 0.5
        biased = judge.same_position_rate is not None and judge.same_position_rate > 0.8
        table.add_row(
            "judge order-consistency", Text(percent(judge.consistency_rate), style="red" if low else "")
        )
        table.add_row(
            "judge same-position rate", Text(percent(judge.same_position_rate), style="red" if biased else "")
        )
        table.add_row("judge unparsed orders", str(judge.unparsed_orders))
        if judge.check_decided:
            table.add_row("pairs decided by checks", str(judge.check_decided))
        table.add_row("judge agreement with the checks", _rate(judge.check_agreement))
        if judge.error_orders:
            table.add_row("[red]judge orders whose request failed[/red]", str(judge.error_orders))
    if summary.probes is not None:
        # Universal probes (judge.probes): red below the default gate (80%); ties count half.
        probes = summary.probes
        low = (
            probes.accuracy is not None and probes.accuracy.value is not None and probes.accuracy.value < 0.8
        )
        table.add_row("judge probe accuracy", Text(_rate(probes.accuracy), style="red" if low else ""))
        for kind, tally in probes.by_kind.items():
            ties = f", {tally.ties} ties" if tally.ties else ""
            missing = sum(tally.not_built.values())
            table.add_row(f"  probes: {kind}", f"{_rate(tally.accuracy)}{ties}" + (
                f"; {missing} not built" if missing else ""))  # fmt: skip
    if summary.server_restarts:
        table.add_row("[yellow]managed server restarts[/yellow]", str(summary.server_restarts))
    for stage, report in summary.stages.items():
        if report.failed:
            first = f": {report.errors[0]}" if report.errors else ""
            table.add_row(Text(f"{stage} failed requests", style="red"), Text(f"{report.failed}{first}"))
    if summary.quality is not None:
        _quality_rows(table, summary.quality)
    for name, trained in summary.trained.items():
        label = TRAINERS[name].label
        table.add_row(f"{label} steps", f"{trained.steps} ({trained.seconds_per_step:.1f} s/step)")
        if trained.loss_first is not None and trained.loss_last is not None:
            table.add_row(f"{label} loss first → last", f"{trained.loss_first:.4f} → {trained.loss_last:.4f}")
        metrics = trained.metrics
        if name == "reward" and metrics.get("eval_accuracy") is not None:
            before = metrics.get("eval_accuracy_before")
            table.add_row(
                "reward model held-out accuracy",
                f"{'n/a' if before is None else f'{before:.3f}'} → {metrics['eval_accuracy']:.3f} "
                f"({metrics['eval_pairs']} pairs)",
            )
        if name == "reward" and metrics.get("held_out"):
            _reward_rows(table, RewardAccuracy.model_validate(metrics["held_out"]), metrics)
        if name in ("online", "ppo") and metrics.get("reward_first") is not None:
            table.add_row(
                f"{label} reward first → last",
                f"{metrics['reward_first']:.3f} → {metrics['reward_last']:.3f}",
            )
    for name, seconds in summary.seconds.items():
        table.add_row(f"time {name}", f"{seconds:.1f} s")
    if summary.peak_rss_gib is not None:
        table.add_row("peak memory (process tree)", f"{summary.peak_rss_gib:.2f} GiB")
    for name, path in summary.files.items():
        table.add_row(f"files: {name}", Text(path))  # a path is text, never markup
    console.print(table)


def _reward_rows(table: Table, accuracy: RewardAccuracy, metrics: dict[str, object]) -> None:
    """An ensemble's members and a model's heads: held-out accuracy each, and the heads left out."""
    if len(accuracy.members) > 1:
        shares = ", ".join(percent(a) for a in accuracy.members)
        table.add_row("reward ensemble members held-out accuracy", f"{shares} ({accuracy.pairs} pairs)")
    for head, result in accuracy.heads.items():
        table.add_row(
            f"reward head {head} held-out accuracy", f"{percent(result.accuracy)} ({result.pairs} pairs)"
        )
    excluded = metrics.get("heads_excluded")
    for head, why in (excluded if isinstance(excluded, dict) else {}).items():
        table.add_row(Text(f"reward head {head} left out", style="yellow"), Text(str(why)))


def _quality_rows(table: Table, quality: QualityReport) -> None:
    """Every gate in colour: green passed, red failed, and red figures even where a gate does not apply."""
    dropped = ", ".join(f"{reason} {count}" for reason, count in quality.dropped.items()) or "none"
    table.add_row("pairs dropped by the filters", dropped)
    for gate in quality.gates:
        shown = (lambda v: "n/a" if v is None else str(int(v))) if gate.name == "pairs" else percent
        limit = "off" if gate.threshold is None else ("≥ " if gate.at_least else "≤ ") + shown(gate.threshold)
        bad = (
            gate.value is not None
            and gate.threshold is not None
            and (gate.value < gate.threshold if gate.at_least else gate.value > gate.threshold)
        )
        if gate.passed is True:
            verdict = Text("passed", style="green")
        elif gate.passed is False:
            verdict = Text("FAILED", style="bold red")
        else:
            verdict = Text(f"does not apply: {gate.note}", style="dim")
        value = Text(shown(gate.value), style="red" if bad else "")
        table.add_row(f"gate: {gate.name}", Text.assemble(value, f" ({limit}) ", verdict))
    for warning in quality.warnings:
        table.add_row(Text("warning", style="yellow"), Text(warning, style="yellow"))
    if quality.forced:
        table.add_row(
            Text("forced", style="bold red"), "a gate failed and --force went on (see the manifest)"
        )


def _rate(rate: Rate | None) -> str:
    """A rate with its denominator and interval: "44.1% of 500 [39.8%, 48.5%]"; "n/a" when undefined."""
    if rate is None or rate.value is None:
        return "n/a" if rate is None else f"n/a (of {rate.n})"
    tail = f"  [{percent(rate.ci95[0])}, {percent(rate.ci95[1])}]" if rate.ci95 else ""
    return f"{percent(rate.value)} of {rate.n}{tail}"


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
    table.add_row("order-consistency", _rate(report.order_consistency))
    table.add_row("same-position rate", _rate(report.same_position_rate))
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
    table.add_row("agreement, decided rows only", _rate(report.agreement_decisive))
    table.add_row("ties (label exactly 0.5, counted half)", str(report.ties))
    if report.agreement_two_orders is not None:
        table.add_row("agreement, first order only", _rate(report.agreement_one_order))
    consistency, same = report.order_consistency, report.same_position_rate
    low_consistency = consistency is not None and consistency.value is not None and consistency.value < 0.5
    one_position = same is not None and same.value is not None and same.value > 0.8
    table.add_row("order-consistency", _yellow(_rate(consistency), low_consistency))
    table.add_row("same-position rate", _yellow(_rate(same), one_position))
    table.add_row("first order picks A", _rate(report.first_order_picks_a))
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
    if report.per_principle:
        for pid, rate in report.per_principle.items():
            table.add_row(f"  principle {escape(pid)} (fixed per row)", _rate(rate))
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


def generation_markdown(report: GenerationBench) -> str:
    """`rlaif bench` as a markdown table (for the README)."""
    rows = [
        "| measurement | requests | seconds | gen tok/s | req/s | vs raw | prefix-cache hits |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in report.measurements:
        shown = "" if m.ratio_to_raw is None else f"{m.ratio_to_raw:.2f}"
        if m.ratio_to_raw_all_at_once is not None:
            shown += f" ({m.ratio_to_raw_all_at_once:.2f} all at once)"
        tokens = f"{m.tokens_per_second:.0f}" if m.completion_tokens else "-"  # pipeline: not counted
        rows.append(
            f"| {m.name} | {m.requests} | {m.seconds:.1f} | {tokens} | {m.requests_per_second:.1f} | "
            f"{shown} | {percent(m.prefix_cache_hit_rate, 0)} |"
        )
    judge, hw = report.judge, report.hardware
    pipeline = next((m.pairs_per_hour for m in report.measurements if m.pairs_per_hour is not None), 0.0)
    rows += [
        "",
        f"Two-order / one-order judge time: {judge.two_vs_one_order_time:.2f} "
        f"(prompt-token ratio {judge.two_vs_one_order_prompt_tokens:.2f}); "
        f"{judge.pairs_per_hour:.0f} judged pairs/hour ({judge.judge_calls_per_second:.1f} "
        f"judge calls/s); pipeline {pipeline:.0f} pairs/hour; peak RSS {report.peak_rss_gib} GiB; "
        f"{report.prompts} prompts, concurrency {report.concurrency}; "
        f"{hw.device}, {hw.cpus} CPUs, vLLM {hw.vllm}.",
    ]
    return "\n".join(rows)


def train_bench_markdown(report: TrainBench) -> str:
    """`rlaif train bench` as a markdown table: one row per trainer and per plain TRL run."""
    lines = [
        f"steps per measurement: {report.steps} (s/step: median after the first); "
        f"threads: {report.threads or 'torch default'}; device: {report.hardware.device}",
        "",
        "| trainer | s/step | peak RSS (GiB) | steps | note |",
        "|---|---|---|---|---|",
    ]
    for runs_by_trainer, label in ((report.trainers, "rlaif"), (report.plain_trl, "plain TRL")):
        for name, runs in runs_by_trainer.items():
            for run in runs:
                if run.error is not None:
                    lines.append(f"| {label} {name} | - | - | - | {run.error} |")
                    continue
                step = "-" if run.seconds_per_step is None else f"{run.seconds_per_step:.2f}"
                rss = "-" if run.peak_rss_gib is None else f"{run.peak_rss_gib:.2f}"
                lines.append(f"| {label} {name} | {step} | {rss} | {run.steps} | |")
    for name, entry in report.comparison.items():
        lines.append("")
        lines.append(
            f"{name}: rlaif {entry.rlaif_seconds_per_step:.2f} s/step vs plain TRL "
            f"{entry.plain_trl_seconds_per_step:.2f} (ratio {entry.ratio:.3f}, "
            f"within 5%: {entry.within_5_percent})"
        )
    return "\n".join(lines)


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
    interval = f" [{percent(rate.ci95[0])}, {percent(rate.ci95[1])}]" if rate.ci95 else ""
    errors = f", {rate.errors} check errors" if rate.errors else ""
    return f"{percent(rate.value)} of {rate.n}{interval}{errors}"


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
