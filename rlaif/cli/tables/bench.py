"""The tables of `rlaif bench`: generation against raw vLLM, as Markdown.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rlaif.bench.reports import GenerationBench
from rlaif.reports import percent

__all__ = ["generation_markdown"]


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
