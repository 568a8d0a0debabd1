"""The whole pipeline as one function: respond → critique/revise → judge → pairs → export → training.

Training runs the enabled trainers of `train` in the registry's order (SFT, reward model, DPO, KTO,
online RL, PPO; only DPO is on by default), each from the configured policy.

People's review decisions (`reviews.jsonl`) override the AI's labels in the export, and training
starts only when the human-review gate passes (`rlaif.review.gate.check_gate`).

Critique/revise and the judge both start from the responses, so they run at the same time: the
server's batch stays full while each revision waits for its critique.

Each stage reads and appends records in the run directory, so rerunning the same config after an
interruption skips what is done. Generation servers are stopped before training starts, so the
two never hold memory at once (online RL with the judge as its reward starts its own judge server).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rlaif.backends.serving import make_backend, model_path, served_backend, with_restarts
from rlaif.backends.vllm_server import VLLMServer
from rlaif.compat import check_training
from rlaif.config import RunConfig
from rlaif.errors import ConfigError, QualityGateError, RlaifError
from rlaif.inputs.load import load_inputs, load_run_constitution, load_run_prompts
from rlaif.memory import PeakMemory
from rlaif.pipeline.current import StoredResponses, iter_current
from rlaif.pipeline.export_stage import export_stage
from rlaif.pipeline.judge import judge, validate_revisions, validates_revisions
from rlaif.pipeline.probes import judge_probes, probes_on
from rlaif.pipeline.quality import (
    training_sources,
)
from rlaif.pipeline.reports import QualityReport, RunSummary, StageReport
from rlaif.pipeline.respond import respond
from rlaif.pipeline.revise import revise
from rlaif.pipeline.rubric import join_dropped, rubric, rubric_on
from rlaif.pipeline.summary import summarize, versions
from rlaif.pipeline.trajectory import tool_use
from rlaif.pipeline.workers import ShardJob, run_rounds, shard_of, worker_count, worker_process
from rlaif.progress import quiet_libraries, server_spinner
from rlaif.records import (
    Constitution,
    Judgment,
    ProbeResponse,
    PromptRecord,
    Response,
    ReviewDecision,
    Revision,
    RevisionStep,
    RubricItems,
    RubricScore,
)
from rlaif.review.gate import check_gate
from rlaif.review.session import current_decisions
from rlaif.store import RunDir, RunLayout, write_atomic
from rlaif.train.distributed import Ranks, barrier, connect, follow, lead, ranks, share
from rlaif.train.registry import TRAINERS, check_trainers, train_stage

__all__ = ["ALL_STAGES", "GENERATION_STAGES", "run_pipeline"]

GENERATION_STAGES = ("respond", "revise", "judge")
ALL_STAGES = (*GENERATION_STAGES, "export", *TRAINERS)

R = TypeVar("R")


async def _generate(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    stages: Sequence[str],
    policy_args: dict[str, Any],
    judge_args: dict[str, Any] | None,
    quiet: bool,
    everyone: Sequence[PromptRecord] | None = None,
    dropped: Path | None = None,
) -> dict[str, StageReport]:
    """The generation stages on `prompts`; in a worker, `prompts` is its share, `everyone` the whole
    set (the probes' partners are drawn from it) and `dropped` its part of `rubric_dropped.jsonl`."""
    layout, templates = run.layout, config.template_set()
    reports: dict[str, StageReport] = {}
    policy = make_backend(policy_args, quiet=quiet)
    judge_backend = make_backend(judge_args, quiet=quiet) if judge_args else policy
    try:
        await policy.resolve_model()
        responses = run.stage(layout.RESPONSES, Response)
        if "respond" in stages:
            with tool_use(config, prompts, run) as tools:
                reports["respond"] = await respond(
                    policy, prompts, constitution=constitution, config=config.generation, seed=config.seed,
                    stage=responses, quiet=quiet, templates=templates, tools=tools,
                )  # fmt: skip
        by_prompt = StoredResponses(responses, prompts)
        # Revise and judge both start from the responses, so they run together: the server's batch
        # stays full while revisions wait for their critiques.
        work: dict[str, Coroutine[Any, Any, StageReport]] = {}
        if "revise" in stages and config.revise.enabled:
            originals = by_prompt.originals()
            work["revise"] = revise(
                policy, prompts, originals, constitution=constitution, config=config.revise, seed=config.seed,
                steps=run.stage(layout.REVISION_STEPS, RevisionStep),
                revisions=run.stage(layout.REVISIONS, Revision), quiet=quiet, templates=templates,
            )  # fmt: skip
        if "judge" in stages and config.judge.enabled:
            if judge_backend is not policy:
                await judge_backend.resolve_model()
            work["judge"] = judge(
                judge_backend, prompts, by_prompt, constitution=constitution, config=config.judge,
                seed=config.seed, stage=run.stage(layout.JUDGMENTS, Judgment), quiet=quiet,
                templates=templates,
            )  # fmt: skip
            if rubric_on(constitution, config.judge):  # checklists for the pairs the judge leaves to them
                work["rubric"] = rubric(
                    judge_backend, prompts, by_prompt, constitution=constitution, config=config.judge,
                    seed=config.seed, items=run.stage(layout.RUBRIC_ITEMS, RubricItems),
                    scores=run.stage(layout.RUBRIC_SCORES, RubricScore),
                    judgments=run.stage(layout.JUDGMENTS, Judgment),
                    dropped=dropped or layout.root / RUBRIC_DROPPED, quiet=quiet, templates=templates,
                )  # fmt: skip
            if probes_on(config.judge.probes):  # beside the judge: a ground truth, never trained on
                mine = None if everyone is None else {p.id for p in prompts}
                work["probes"] = judge_probes(
                    judge_backend, everyone or prompts,
                    by_prompt if everyone is None else StoredResponses(responses, everyone),
                    constitution=constitution, config=config.judge,
                    seed=config.seed, stage=run.stage(layout.PROBES, Judgment),
                    texts=run.stage(layout.PROBE_RESPONSES, ProbeResponse), quiet=quiet, templates=templates,
                    only=mine,
                )  # fmt: skip
        reports.update(zip(work, await _together(list(work.values())), strict=True))
        if "revise" in work and validates_revisions(config.judge):
            # After revise: a validation needs the final revision.
            reports["validate"] = await validate_revisions(
                judge_backend, prompts,
                iter_current(run, layout.REVISIONS, Revision, prompts, constitution, templates=templates),
                constitution=constitution, config=config.judge, seed=config.seed,
                stage=run.stage(layout.JUDGMENTS, Judgment), quiet=quiet, templates=templates,
            )  # fmt: skip
    finally:
        await policy.aclose()
        if judge_backend is not policy:
            await judge_backend.aclose()
    return reports


async def _together(work: Sequence[Coroutine[Any, Any, R]]) -> list[R]:
    """Run coroutines at once; when one raises, cancel the others and raise that error itself
    (not an exception group), so `with_restarts` still sees a dead server."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _work_shard(job: ShardJob, bars: Any) -> None:
    """A worker process of `rlaif run --workers N` (`rlaif.pipeline.workers`): its share of the prompts."""
    worker_process(job, bars, _shard_stages)


def _shard_stages(job: ShardJob) -> dict[str, StageReport]:
    config = job.config
    constitution = load_run_constitution(config)
    # Only the probes read other prompts (their off-topic partners); without them a worker holds its
    # share alone (it still reads every row), so N workers do not hold N copies of a million prompts.
    probing = "judge" in job.stages and config.judge.enabled and probes_on(config.judge.probes)
    everyone: list[PromptRecord] | None = None
    if probing:
        everyone = load_run_prompts(config)
        mine = [p for p in everyone if shard_of(p.id, job.workers) == job.index]
    else:
        mine = load_run_prompts(config, keep=lambda id: shard_of(id, job.workers) == job.index)
    with RunDir(config.run_dir, worker=True) as run:
        return asyncio.run(
            _generate(
                config, constitution, mine, run, job.stages, job.policy_args, job.judge_args, quiet=True,
                everyone=everyone, dropped=_dropped_part(run, job.index),
            )
        )  # fmt: skip


RUBRIC_DROPPED = "rubric_dropped.jsonl"


def _dropped_part(run: RunDir, index: int) -> Path:
    """A worker's part of `rubric_dropped.jsonl`, which the parent joins (`join_dropped`)."""
    return run.layout.root / f"{RUBRIC_DROPPED}.worker-{index}"


def _rounds(config: RunConfig, stages: Sequence[str]) -> list[tuple[str, ...]]:
    """The workers' rounds: respond, then the stages after it, which need every answer stored first only
    when the probes run (they pair prompts); without them each worker runs its share's stages at once,
    and starts one process, not two."""
    if not ("judge" in stages and config.judge.enabled and probes_on(config.judge.probes)):
        return [tuple(stages)]
    first = tuple(s for s in stages if s == "respond")
    rest = tuple(s for s in stages if s != "respond")
    return [r for r in (first, rest) if r]


def _generation(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    stages: Sequence[str],
    quiet: bool,
) -> tuple[dict[str, StageReport], int]:
    """Serve the policy (and a judge of its own, if configured) and run the generation stages, in this
    process or in `model.workers` worker processes."""
    managed: dict[VLLMServer, int] = {}
    with contextlib.ExitStack() as stack:
        policy_args = stack.enter_context(
            served_backend(
                config.model, run, servers=managed, ray=True,
                on_wait=server_spinner("the vLLM server", quiet=quiet),
            )
        )  # fmt: skip
        judge_args = None
        if config.judge.model is not None and "judge" in stages:
            judge_args = stack.enter_context(
                served_backend(
                    config.judge.model, run, name="judge", servers=managed, ray=True,
                    on_wait=server_spinner("the judge's vLLM server", quiet=quiet),
                )
            )  # fmt: skip
        workers = worker_count(config, len(prompts))
        if workers > 1:
            run.save_manifest(workers=workers)

            def in_workers() -> dict[str, StageReport]:
                for stale in run.layout.root.glob(f"{RUBRIC_DROPPED}.worker-*"):  # a killed run's parts
                    stale.unlink()
                reports, peaks = run_rounds(
                    _work_shard, config, _rounds(config, stages), workers=workers, policy_args=policy_args,
                    judge_args=judge_args, quiet=quiet,
                )  # fmt: skip
                run.save_manifest(workers=workers, worker_peak_rss_gib=[round(p, 3) for p in peaks])
                if "rubric" in reports:
                    parts = [_dropped_part(run, i) for i in range(workers)]
                    join_dropped(run.layout.root / RUBRIC_DROPPED, parts)
                return reports

            return with_restarts(in_workers, managed)
        run.save_manifest(workers=1, worker_peak_rss_gib=None)
        return with_restarts(
            lambda: asyncio.run(
                _generate(config, constitution, prompts, run, stages, policy_args, judge_args, quiet)
            ),
            managed,
        )


def _refuse(run: RunDir, summary: RunSummary, quality: QualityReport, trainers: Sequence[str]) -> None:
    """Stop before training (or after an empty export) with one line per failed gate."""
    lines = quality.failures()
    if trainers:
        message = f"the data in {run.layout.export} failed {len(lines)} quality gate(s); nothing was trained:"
    else:
        message = f"the export in {run.layout.export} is empty:"
    message += "".join(f"\n  - {line}" for line in lines)
    message += "\n  see export/dropped.jsonl and export/README.md; --force trains anyway"
    raise QualityGateError(message, summary)


def run_pipeline(
    config: RunConfig, *, stages: Sequence[str] = ALL_STAGES, quiet: bool = False, force: bool = False
) -> RunSummary:
    """Run the chosen stages of the pipeline and return a summary (also saved as `summary.json`).

    `force` trains even when a quality gate or the human-review gate fails (recorded in the manifest).
    Raises `QualityGateError` (with the summary so far) when a gate stops training or the export is
    empty.

    Under `torchrun` or `accelerate launch` (`rlaif.train.distributed`) rank 0 runs the stages as one
    process would, then tells the other ranks to train beside it; they wait for that, train, and
    return the summary rank 0 wrote.
    """
    if quiet:
        quiet_libraries()
    unknown = set(stages) - set(ALL_STAGES)
    if unknown:
        raise ConfigError(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(ALL_STAGES)}")
    where = ranks()
    if not where.distributed:
        return _run(config, stages=stages, quiet=quiet, force=force)
    if not _trainers(config, stages):
        raise ConfigError(
            f"{where}: stages {', '.join(stages)} train nothing, and only training runs on several "
            "processes; run generation and export as one process (without torchrun or accelerate launch)"
        )
    connect()
    if not where.main:
        return _follow(config, stages, where)
    told = False

    def ready() -> None:
        nonlocal told
        lead()
        told = True

    try:
        summary = _run(config, stages=stages, quiet=quiet, force=force, ready=ready)
    except BaseException as exc:
        if not told:
            lead(exc)
        raise
    return share(summary)  # the other ranks return it too


def _trainers(config: RunConfig, stages: Sequence[str]) -> list[str]:
    """The enabled trainers among `stages`, in the registry's order."""
    return [name for name, t in TRAINERS.items() if name in stages and t.section(config).enabled]


def _follow(config: RunConfig, stages: Sequence[str], where: Ranks) -> RunSummary:
    """A rank other than 0: no lock, no generation, no export; wait for rank 0, then only train."""
    layout = RunLayout(Path(config.run_dir))
    follow(where)
    for name in _trainers(config, stages):
        train_stage(name, config, layout.root, model=model_path(config.model))
        barrier()
    summary: RunSummary = share(None)
    return summary


def _run(
    config: RunConfig,
    *,
    stages: Sequence[str],
    quiet: bool,
    force: bool,
    ready: Callable[[], None] | None = None,
) -> RunSummary:
    """The pipeline in this process; `ready` is called once training is about to start."""
    if _trainers(config, stages):
        check_training()  # before hours of generation: a judge-only install has no torch
    check_trainers(config, _trainers(config, stages))  # before hours of generation, not after
    constitution, prompts = load_inputs(config)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with RunDir(config.run_dir) as run, PeakMemory() as memory, _failure_recorded(run):
        layout = run.layout
        run.save_manifest(
            config=config.model_dump(mode="json"),
            constitution={
                "name": constitution.name,
                "version": constitution.version,
                "hash": constitution.hash,
            },
            templates=config.template_set().hashes(),
            versions=versions(),
            status="running",
        )
        reports: dict[str, StageReport] = {}
        restarts = None
        generation = [s for s in stages if s in GENERATION_STAGES]
        if generation:
            t0 = time.perf_counter()
            reports, restarts = _generation(config, constitution, prompts, run, generation, quiet)
            timings["generation"] = time.perf_counter() - t0
        summary = summarize(config, constitution, prompts, run, reports)
        summary.server_restarts = restarts
        human = current_decisions(run.stage(layout.REVIEWS, ReviewDecision))
        trainers = _trainers(config, stages)
        quality = None
        # Trainers always read a fresh export: reviews or settings changed since the last one count.
        # The exception is a run folder that generated nothing beside an export someone brought:
        # re-exporting would replace their dataset with an empty one.
        if trainers and "export" not in stages and _brought_export(layout):
            sources = training_sources(config, trainers)
            summary.quality = QualityReport(sources=sources, passed=True, warnings=[
                f"{layout.root} generated nothing: training on the export found there as it is; "
                "no quality gate was applied to it"])  # fmt: skip
        # With neither judge nor revisions nothing makes pairs: a generation-only run exports nothing.
        elif trainers or ("export" in stages and (config.judge.enabled or config.revise.enabled)):
            quality = export_stage(
                config, constitution, prompts, run, summary, human, trainers=trainers, force=force
            )
            empty = not sum(quality.exported.values())
            if (trainers and not quality.passed and not force) or (empty and not force):
                failed = sum(r.failed for r in reports.values())
                status = "incomplete" if failed else "refused"  # a rerun resumes an incomplete one
                run.save_manifest(status=status, counts=summary.counts.model_dump(mode="json"))
                write_atomic(layout.summary, summary.model_dump_json(indent=2))
                _refuse(run, summary, quality, trainers)
            if "export" in stages and config.export.push_to_hub:
                from rlaif.pipeline.hub import push_export

                summary.files["hub"] = push_export(
                    layout.export, config.export.push_to_hub, private=config.export.private
                )
            if trainers and quality.forced:
                forced = [*run.manifest.get("forced", []), {"at": _now(), "gates": quality.failures()}]
                run.save_manifest(forced=forced)
        if trainers:
            check_gate(run, config, force=force)
            if ready is not None:
                ready()
            for name in trainers:
                t0 = time.perf_counter()
                result = train_stage(name, config, run.path, model=model_path(config.model))
                barrier()  # every rank trained it, and rank 0 saved it, before the next one reads it
                timings[name] = time.perf_counter() - t0
                summary.trained[name] = result.summary()
                summary.files[f"{name}_model"] = str(result.output_dir)
        timings["total"] = time.perf_counter() - started
        summary.seconds = {k: round(v, 1) for k, v in timings.items()}
        summary.peak_rss_gib = round(memory.peak_gib, 2)
        failed = sum(r.failed for r in reports.values())
        run.save_manifest(
            status="done" if not failed else "incomplete", counts=summary.counts.model_dump(mode="json")
        )
        write_atomic(layout.summary, summary.model_dump_json(indent=2))
    return summary


@contextlib.contextmanager
def _failure_recorded(run: RunDir) -> Iterator[None]:
    """On the way out through an error, the manifest says `failed` (or `interrupted`) and why.

    A refused or incomplete run has saved its own status before raising; that one stays.
    """
    try:
        yield
    except QualityGateError:
        raise
    except (KeyboardInterrupt, asyncio.CancelledError):
        with contextlib.suppress(Exception):
            run.save_manifest(status="interrupted", error="interrupted; rerun to resume")
        raise
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RlaifError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # a full disk may refuse this write too
            run.save_manifest(status="failed", error=reason)
        raise


def _brought_export(layout: RunLayout) -> bool:
    """An export folder in a run folder without a single generation stage file."""
    generated = (layout.RESPONSES, layout.REVISIONS, layout.JUDGMENTS, layout.PAIRS)
    return layout.export_pairs.exists() and not any(layout.stage_file(n).exists() for n in generated)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
