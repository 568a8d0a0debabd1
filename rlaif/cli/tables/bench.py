"""The tables of `rlaif bench`: generation against raw vLLM, and `rlaif bench-trust`, as Markdown.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rlaif.bench.reports import GenerationBench, TrustArm, TrustBench
from rlaif.reports import Rate, percent

__all__ = ["generation_markdown", "trust_markdown"]


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


def _accuracy(rate: Rate | None) -> str:
    """ "78.0% [73.7, 81.8]": a rate and its Wilson interval, in points."""
    if rate is None or rate.value is None:
        return "n/a"
    bounds = f" [{100 * rate.ci95[0]:.1f}, {100 * rate.ci95[1]:.1f}]" if rate.ci95 else ""
    return f"{percent(rate.value)}{bounds}"


def _gates(arm: TrustArm) -> str:
    if not arm.refused:
        return "pass"
    return "**REFUSED**: " + ", ".join(name.removeprefix("judge ") for name in arm.failed_gates)


def trust_markdown(report: TrustBench) -> str:
    """`rlaif bench-trust` as a markdown table: each judge's exported-label accuracy, naive against rlaif."""
    rows = [
        "| judge: accuracy / length bias / position bias | one verdict right (expected) | naive: pairs "
        "| naive: label accuracy [95% CI] | rlaif: pairs | rlaif: label accuracy [95% CI] "
        "| rlaif: probe accuracy | rlaif: length excess (low end) | rlaif: gates |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for cell in report.cells:
        judge, naive, rlaif = cell.judge, cell.naive, cell.rlaif
        excess = "n/a" if rlaif.length_excess_low is None else f"{100 * rlaif.length_excess_low:+.1f} pts"
        rows.append(
            f"| {judge.accuracy:.2f} / {judge.length_bias:.2f} / {judge.position_bias:.2f} "
            f"| {percent(judge.single_order_accuracy)} "
            f"| {naive.exported} | {_accuracy(naive.label_accuracy)} "
            f"| {rlaif.exported} | {_accuracy(rlaif.label_accuracy)} | {_accuracy(rlaif.probe_accuracy)} "
            f"| {excess} | {_gates(rlaif)} |"
        )
    refused = sum(c.rlaif.refused for c in report.cells)
    first, longer = percent(report.first_better.value), percent(report.longer_better.value)
    rows += [
        "",
        f"{report.prompts} prompts, one judge pair each, answered once and judged by every judge in both "
        f"arms; seed {report.seed}; the first sample is the better answer in {first} of the pairs and the "
        f"longer one in {longer}. Label accuracy is the share of the exported pairs whose chosen answer "
        "is truly the better one. A REFUSED run trains on nothing: its accuracy is that of the pairs it "
        f"would have exported. rlaif refused {refused} of {len(report.cells)} judges; the naive arm has "
        f"no gate to refuse with. {report.seconds:.0f} s in all ({report.machine}).",
    ]
    return "\n".join(rows)
