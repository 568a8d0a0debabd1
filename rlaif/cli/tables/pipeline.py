"""The tables of the pipeline's commands (`rlaif run` and the stages): the run's summary.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from rlaif.cli.options import console
from rlaif.cli.tables.evaluate import calibration_rows
from rlaif.evaluate.bias import describe_share
from rlaif.pipeline.reports import JudgeBiasReport, QualityReport, RubricReport, RunSummary
from rlaif.reports import percent, rate_text
from rlaif.train.registry import TRAINERS
from rlaif.train.reports import RewardAccuracy

__all__ = ["print_summary"]


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
        table.add_row("judge agreement with the checks", rate_text(judge.check_agreement))
        if judge.error_orders:
            table.add_row("[red]judge orders whose request failed[/red]", str(judge.error_orders))
    if summary.probes is not None:
        # Universal probes (judge.probes): accuracy where the two orders agree (what the gate reads), red
        # below the default gate (80%) or when none was decided; then ties counted half (one verdict's worth).
        probes = summary.probes
        decided = probes.decided
        low = decided is None or decided.value is None or decided.value < 0.8
        table.add_row("judge probe accuracy (decided)", Text(rate_text(decided), style="red" if low else ""))
        table.add_row("judge probe accuracy, ties half", rate_text(probes.accuracy))
        for kind, tally in probes.by_kind.items():
            ties = f", {tally.ties} ties" if tally.ties else ""
            missing = sum(tally.not_built.values())
            table.add_row(f"  probes: {kind}", f"{rate_text(tally.decided)} decided{ties}" + (
                f"; {missing} not built" if missing else ""))  # fmt: skip
    calibration_rows(table, summary.calibration, summary.ensemble)
    if summary.server_restarts:
        table.add_row("[yellow]managed server restarts[/yellow]", str(summary.server_restarts))
    for stage, report in summary.stages.items():
        if isinstance(report, RubricReport):
            table.add_row("rubric", _rubric_text(report))
        if report.failed:
            first = f": {report.errors[0]}" if report.errors else ""
            table.add_row(Text(f"{stage} failed requests", style="red"), Text(f"{report.failed}{first}"))
    if summary.bias is not None:
        _bias_rows(table, summary.bias)
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


def _bias_rows(table: Table, bias: JudgeBiasReport) -> None:
    """Self-judging said once; the judge pairs' length and own-model preference with their figures."""
    if bias.self_judging:
        table.add_row(Text("warning", style="yellow"), Text(bias.self_judging, style="yellow"))
    if bias.length is not None and bias.length.judged.n:
        ratio = bias.length.mean_log_ratio
        tail = "" if ratio is None else f"; mean log length ratio chosen/rejected {ratio:+.2f}"
        table.add_row("judge length bias", Text(describe_share(bias.length, "the longer answer") + tail))
    if bias.self_preference is not None:
        own = bias.self_preference
        truth = f"; accuracy where the better answer is known {rate_text(own.ground_truth)}"
        table.add_row("judge self-preference", Text(describe_share(own, "its own model's answer") + truth))


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


def _rubric_text(report: RubricReport) -> str:
    """The rubric stage in one cell: items written, kept and dropped (by reason), and what it cost."""
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(report.items_dropped.items())) or "none"
    return (
        f"{report.prompts} prompts; {report.items_written} items written ({report.items_unparsed} lists "
        f"unparsed, {report.items_duplicate} repeats); {report.items_kept} kept, dropped: {dropped}; "
        f"{report.judgments} judgments; {report.requests} requests, {report.prompt_tokens} prompt + "
        f"{report.completion_tokens} completion tokens"
    )
