"""The tables of `rlaif train`: `rlaif train bench` (each trainer against plain TRL), as Markdown.

Text that comes from users or models (names, paths, prompts) is never read as rich markup.
"""

from __future__ import annotations

from rlaif.bench.reports import TrainBench

__all__ = ["train_bench_markdown"]


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
