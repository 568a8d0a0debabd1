"""An optional engine: Ray Data batch jobs on vLLM engines (`ray.data.llm`) instead of a server.

For offline jobs on a Ray cluster: each replica is a vLLM engine inside a Ray actor, and Ray Data
streams the rows through them. The stages do not change: they call `chat` as with a server; the
requests that arrive together are sent as one dataset (a "wave"), and each answer is handed back as
its row comes out, so stored records, ids and resuming work as with a server. A request sent while
a wave runs (a revision whose critique just came back) goes in the next wave. Each wave starts its
engines afresh (about 25 s for the bundled model on CPU), so this pays off for big batches.

Needs `pip install 'rlaif-toolkit[ray]'` (Ray Data; vLLM is already a dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.config import RayConfig
from rlaif.errors import ConfigError

__all__ = ["RayDataBackend", "request_rows", "to_result"]

WAVE = 100_000
"""Most requests a stage has waiting at once on this engine (`window_for`): each wave starts its engines
afresh, so waves must be large; this bounds a 1M-prompt stage's memory to 100k requests at a time."""


def request_rows(index: int, request: ChatRequest) -> list[dict[str, Any]]:
    """The dataset rows of one request: one row per sample, each carrying the request as JSON.

    Ray Data moves rows between its stages as Arrow tables, which give a field that some rows lack
    to all of them as null, and turn an int field with nulls into floats (vLLM then refuses
    `logprobs=5.0` and its engine hangs). So every row has the same fields with the same types:
    `logprobs` is always an int (0 returns only the sampled token's), and a JSON schema travels as
    text. A request for n samples becomes n rows seeded seed, seed + 1, …: a row yields one sample.
    """
    sampling: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "logprobs": request.top_logprobs,
    }
    if request.choices:
        sampling["structured_outputs"] = {"choice": list(request.choices)}
    elif request.json_schema is not None:
        sampling["structured_outputs"] = {"json": json.dumps(request.json_schema)}
    return [
        {
            "rlaif_index": index,
            "rlaif_sample": sample,
            "rlaif_request": json.dumps(
                {
                    "messages": list(request.messages),
                    "sampling_params": {**sampling, "seed": request.seed + sample},
                }
            ),
        }
        for sample in range(request.n)
    ]


def _preprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **json.loads(row["rlaif_request"])}


def _postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Runs in a Ray worker: keep what `to_result` needs, as JSON (log-prob dicts have int keys)."""
    logprobs = row.get("logprobs")
    first: dict[str, float] = {}
    asked = json.loads(row["rlaif_request"])["sampling_params"]["logprobs"] > 0
    if asked and logprobs is not None and len(logprobs) > 0 and logprobs[0]:
        for info in logprobs[0].values():
            if info:
                first[str(info.get("decoded_token"))] = float(info["logprob"])
    answer = {
        "text": row.get("generated_text") or "",
        "prompt_tokens": int(row.get("num_input_tokens") or 0),
        "completion_tokens": int(row.get("num_generated_tokens") or 0),
        "first_token_logprobs": first,
    }
    return {
        "rlaif_index": row["rlaif_index"],
        "rlaif_sample": row["rlaif_sample"],
        "rlaif_answer": json.dumps(answer),
    }


def to_result(request: ChatRequest, answers: Sequence[dict[str, Any]]) -> ChatResult:
    """One request's result from its rows' answers (in sample order).

    The engine rows do not say why generation stopped; an answer that used all of `max_tokens` is
    reported as "length", as a server would.
    """
    result = ChatResult()
    for answer in answers:
        result.texts.append(answer["text"])
        result.finish_reasons.append(
            "length" if answer["completion_tokens"] >= request.max_tokens else "stop"
        )
        result.prompt_tokens = answer["prompt_tokens"]
        result.completion_tokens += answer["completion_tokens"]
    if answers:
        result.first_token_logprobs = dict(answers[0]["first_token_logprobs"])
    return result


class RayDataBackend:
    """Answers chat requests through `ray.data.llm` processors, in waves (see the module docstring).

    Args:
        model_path: Model folder (or hub id) every engine loads.
        label: Stable model name for record ids; the same as a server of this model would get, so a
            run can move between the two engines and keep what it stored.
        config: Replicas, batch size, engine arguments and the Ray cluster to join.
        quiet: Hide Ray Data's progress bars.
    """

    def __init__(self, model_path: str, *, label: str, config: RayConfig, quiet: bool = False):
        try:
            import ray
            from ray.data.llm import build_processor, vLLMEngineProcessorConfig
        except ImportError as error:
            raise ConfigError(
                "model.ray needs Ray Data: pip install 'rlaif-toolkit[ray]' (or remove `ray:` from the model "
                f"section to use a vLLM server) [{error}]"
            ) from error
        self.model = self.label = label
        self._ray = ray
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports home, as for vLLM
            level = logging.WARNING if quiet else logging.INFO
            ray.init(address=config.address, num_cpus=config.num_cpus, include_dashboard=False,
                     log_to_driver=not quiet, logging_level=level)  # fmt: skip
        if quiet:
            logging.getLogger("ray").setLevel(logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = not quiet
        placement = config.resources_per_replica or _default_resources()
        engine = {"max_model_len": 2048, "seed": 0, **_cpu_engine_defaults(), **config.engine_kwargs}
        processor_config = vLLMEngineProcessorConfig(
            model_source=model_path,
            engine_kwargs=engine,
            concurrency=config.replicas,
            batch_size=config.batch_size,
            placement_group_config={"bundles": [placement]},
            runtime_env={"env_vars": _engine_env(config)},
            log_engine_metrics=False,  # they need ray[serve]
        )
        self._processor = build_processor(processor_config, preprocess=_preprocess, postprocess=_postprocess)
        self._queue: list[tuple[ChatRequest, asyncio.Future[ChatResult]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._gather_seconds = config.gather_seconds
        self.waves = 0
        self.window = WAVE
        """What the stages send at once (`rlaif.backends.window.window_for`): a wave's worth."""

    async def resolve_model(self) -> str:
        """The engines load the model folder itself; there is no server to ask for a name."""
        return self.model

    async def chat(self, request: ChatRequest) -> ChatResult:
        future: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Run waves until no request is waiting."""
        while self._queue:
            size = -1
            while size != len(self._queue):  # let the stage finish sending what it sends together
                size = len(self._queue)
                await asyncio.sleep(self._gather_seconds)
            wave, self._queue = self._queue, []
            await self._run_wave(wave)

    async def _run_wave(self, wave: list[tuple[ChatRequest, asyncio.Future[ChatResult]]]) -> None:
        loop = asyncio.get_running_loop()
        rows = [row for index, (request, _) in enumerate(wave) for row in request_rows(index, request)]
        answers: dict[int, dict[int, dict[str, Any]]] = {}

        def finish(index: int) -> None:
            request, future = wave[index]
            got = answers.pop(index)
            if not future.done():
                future.set_result(to_result(request, [got[s] for s in sorted(got)]))

        def stream() -> None:
            dataset = self._processor(self._ray.data.from_items(rows))
            for row in dataset.iter_rows():
                index = int(row["rlaif_index"])
                answers.setdefault(index, {})[int(row["rlaif_sample"])] = json.loads(row["rlaif_answer"])
                if len(answers[index]) == wave[index][0].n:
                    loop.call_soon_threadsafe(finish, index)

        self.waves += 1
        error: str | None = None
        thread_done = loop.create_future()

        def run() -> None:
            nonlocal error
            # A failed job fails the requests it had left: the stage records them, a rerun retries.
            try:
                stream()
            except Exception as exc:
                error = f"ray job failed: {type(exc).__name__}: {exc}"
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, thread_done)

        threading.Thread(target=run, name="rlaif-ray-wave", daemon=True).start()
        await thread_done
        for _, future in wave:
            if not future.done():
                future.set_result(ChatResult(error=error or "ray job ended without this request's answer"))

    async def aclose(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        if self._started_ray:
            self._ray.shutdown()


def _settle(future: asyncio.Future[None]) -> None:
    # The caller may have closed the backend (cancelling this wait) once every answer was out.
    if not future.done():
        future.set_result(None)


def _default_resources() -> dict[str, float]:
    import torch

    return {"GPU": 1, "CPU": 1} if torch.cuda.is_available() else {"CPU": 1}


def _cpu_engine_defaults() -> dict[str, Any]:
    from rlaif.backends.vllm_server import _on_cpu, server_dtype

    # Same reasons as the managed server: eager starts faster, chunked prefill of a seeded request
    # crashes the CPU engine, and a CPU without hardware bf16 runs float32 several times faster.
    if not _on_cpu():
        return {}
    return {"enforce_eager": True, "enable_chunked_prefill": False, "dtype": server_dtype("auto")}


def _engine_env(config: RayConfig) -> dict[str, str]:
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(config.kv_cache_gb),
        "VLLM_NO_USAGE_STATS": "1",
        "HF_HUB_OFFLINE": "1",
    }
