"""What two-order judging costs (`rlaif evaluate judge-cost`): a benchmark, not a timed test.

One-token verdicts are prefill-bound and the judge prompt puts the shared part (instructions,
principle, conversation) before the candidates, so the second order should cost only its unshared
tokens. With S the tokens both orders share and R the rest, counted with the model's own tokenizer
and chat template, two orders should take (S + 2R)/(S + R) times one order's wall time. Every
measurement runs on a freshly started server, so no prefix cached by an earlier one can flatter it.
One-order chain of thought is timed the same way for comparison.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif.backends.bundled import BUNDLED_NAME, cache_dir, ensure_model
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.backends.vllm_server import VLLMServer
from rlaif.bench.generation import prefix_cache_counters
from rlaif.bench.reports import JudgeCostBench, JudgeCostRun, TokenCounts
from rlaif.config import JudgeConfig, ServerConfig
from rlaif.evaluate.judge import labelled_items
from rlaif.inputs.constitution import load_constitution
from rlaif.inputs.labelled import load_labelled_pairs
from rlaif.inputs.load import constitution_file
from rlaif.judging.engine import judge_items
from rlaif.judging.modes import JudgeItem, judge_nonce, judge_prompt
from rlaif.records import Constitution

__all__ = ["MEASUREMENTS", "bench_judge_cost", "token_counts"]

MEASUREMENTS: dict[str, dict[str, Any]] = {
    "one-order": {"mode": "logprob", "both_orders": False},
    "two-order": {"mode": "logprob", "both_orders": True},
    "cot-one-order": {"mode": "cot", "both_orders": False},
}
"""Measurement name → judge settings."""


def token_counts(items: Sequence[JudgeItem], tokenizer: Any, *, seed: int, block: int = 128) -> TokenCounts:
    """Prompt tokens of one-order and two-order judging of `items`, with the shared prefix counted once.

    `block_ratio` rounds each shared prefix down to whole KV-cache blocks, which is what vLLM's prefix
    cache can actually reuse.
    """
    nonce = judge_nonce(seed)
    one = two = two_blocks = shared = 0
    for item in items:
        principles = item.members[0]
        ids = []
        for first, second in ((item.a, item.b), (item.b, item.a)):
            text = judge_prompt(item.conversation, principles, first.text, second.text, nonce).text
            ids.append(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
                )
            )
        # transformers 5 returns a BatchEncoding (a Mapping, not a dict); older versions a list.
        first_ids, second_ids = (list(x["input_ids"]) if isinstance(x, Mapping) else list(x) for x in ids)
        common = next(
            (i for i, (x, y) in enumerate(zip(first_ids, second_ids, strict=False)) if x != y),
            min(len(first_ids), len(second_ids)),
        )
        one += len(first_ids)
        two += len(first_ids) + len(second_ids) - common
        two_blocks += len(first_ids) + len(second_ids) - (common // block) * block
        shared += common
    return TokenCounts(
        pairs=len(items),
        shared_tokens_S=shared,
        rest_tokens_R=one - shared,
        one_order_tokens=one,
        two_order_tokens=two,
        token_ratio=two / one if one else None,
        block_ratio=two_blocks / one if one else None,
        block=block,
    )


async def _timed(
    base_url: str,
    served: str,
    items: Sequence[JudgeItem],
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    quiet: bool,
    *,
    measurement: str,
    repeat: int,
) -> JudgeCostRun:
    # Generous limits: on a busy CPU a chain-of-thought request can wait minutes in the queue.
    backend = OpenAIBackend([base_url], served, label=BUNDLED_NAME, timeout=3600, unreachable_after=900)
    try:
        # Warm-up on unrelated text: first-request overheads are not judging costs.
        await backend.chat(
            ChatRequest(messages=({"role": "user", "content": "Say hello."},), max_tokens=1, seed=1)
        )
        hits_before, queries_before = await prefix_cache_counters(base_url)
        started = time.perf_counter()
        judgments = await judge_items(
            backend,
            items,
            constitution=constitution,
            config=config,
            seed=seed,
            quiet=quiet,
            description="bench",
        )
        seconds = time.perf_counter() - started
        hits, queries = await prefix_cache_counters(base_url)
    finally:
        await backend.aclose()
    return JudgeCostRun(
        measurement=measurement,
        repeat=repeat,
        seconds=round(seconds, 2),
        ok=sum(j.status == "ok" for j in judgments),
        prefix_cache_hit_tokens=int(hits - hits_before),
        prefix_cache_query_tokens=int(queries - queries_before),
    )


def bench_judge_cost(
    data_path: str | Path,
    *,
    limit: int = 48,
    model_path: str | Path | None = None,
    constitution: str = "harmless",
    seed: int = 0,
    repeats: int = 1,
    server: ServerConfig | None = None,
    measurements: Sequence[str] = tuple(MEASUREMENTS),
    on_update: Callable[[JudgeCostBench], None] | None = None,
    quiet: bool = False,
) -> JudgeCostBench:
    """Time one-order, two-order and one-order chain-of-thought judging of `limit` labelled pairs.

    Each measurement (repeated `repeats` times, interleaved) starts its own server. Returns the token
    counts, the wall times and the ratios; `on_update` gets the partial result after each
    measurement (so a long benchmark that fails late keeps what it measured).
    """
    from transformers import AutoTokenizer

    server = server or ServerConfig()
    model_dir = Path(model_path) if model_path else ensure_model()
    data = load_labelled_pairs(data_path, limit=limit)
    loaded = load_constitution(constitution_file(constitution, Path.cwd()))
    items = labelled_items(data.pairs, loaded, JudgeConfig(), seed=seed, source=data.path)
    tokens = token_counts(items, AutoTokenizer.from_pretrained(model_dir), seed=seed)
    runs: list[JudgeCostRun] = []
    for repeat in range(repeats):
        for name in measurements:
            config = JudgeConfig(**MEASUREMENTS[name])
            with VLLMServer(
                model_dir,
                log_path=cache_dir("logs") / "vllm-bench.log",
                cache_dir=cache_dir("vllm"),
                max_model_len=server.max_model_len,
                dtype=server.dtype,
                kv_cache_gb=server.kv_cache_gb,
                extra_args=server.extra_args,
                startup_timeout=server.startup_timeout,
            ) as vllm:
                timed = asyncio.run(
                    _timed(
                        vllm.base_url, vllm.served_name, items, loaded, config, seed, quiet,
                        measurement=name, repeat=repeat,
                    )
                )  # fmt: skip
            runs.append(timed)
            result = _result(model_dir, tokens, runs)
            if on_update is not None:
                on_update(result)
    return _result(model_dir, tokens, runs)


def _result(model_dir: Path, tokens: TokenCounts, runs: list[JudgeCostRun]) -> JudgeCostBench:
    names = list(dict.fromkeys(r.measurement for r in runs))
    result = JudgeCostBench(model=str(model_dir), tokens=tokens, runs=list(runs))
    for name in names:
        mine = [r for r in runs if r.measurement == name]
        result.mean_seconds[name] = sum(r.seconds for r in mine) / len(mine)
        queried = sum(r.prefix_cache_query_tokens for r in mine)
        hit = sum(r.prefix_cache_hit_tokens for r in mine)
        result.prefix_cache_hit_rate[name] = hit / queried if queried else None
    mean = result.mean_seconds
    if "one-order" in mean and "two-order" in mean:
        result.wall_ratio = mean["two-order"] / mean["one-order"]
        if tokens.token_ratio:
            result.wall_over_token_ratio = result.wall_ratio / tokens.token_ratio
            result.within_10_percent = abs(result.wall_over_token_ratio - 1) <= 0.10
    if "cot-one-order" in mean and "two-order" in mean:
        result.cot_one_order_over_two_order = mean["cot-one-order"] / mean["two-order"]
    return result
