"""The Ray Data engine's rows and results (pure conversions), and a wave's thread with stand-ins for
Ray and its processor (the engine itself runs in tests/integration/test_ray_engine.py)."""

from __future__ import annotations

import asyncio
import builtins
import json
import math
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from rlaif.backends.protocol import ChatRequest
from rlaif.backends.ray_data import RayDataBackend, _postprocess, _preprocess, request_rows, to_result
from rlaif.config import ModelConfig, RayConfig
from rlaif.errors import ConfigError


def test_a_judge_request_becomes_one_row_with_its_constraint_and_log_probs() -> None:
    request = ChatRequest(
        messages=({"role": "user", "content": "A or B?"},), max_tokens=1, temperature=0.0, seed=7,
        top_logprobs=5, choices=("A", "B"),
    )  # fmt: skip
    (row,) = request_rows(3, request)
    assert row["rlaif_index"] == 3 and row["rlaif_sample"] == 0
    engine_row = _preprocess(row)
    assert engine_row["messages"] == [{"role": "user", "content": "A or B?"}]
    assert engine_row["sampling_params"] == {
        "max_tokens": 1, "temperature": 0.0, "top_p": 1.0, "logprobs": 5,
        "structured_outputs": {"choice": ["A", "B"]}, "seed": 7,
    }  # fmt: skip
    plain = json.loads(request_rows(0, ChatRequest(messages=()))[0]["rlaif_request"])["sampling_params"]
    assert plain["logprobs"] == 0 and isinstance(plain["logprobs"], int)  # same type in every row
    assert set(plain) == set(engine_row["sampling_params"]) - {"structured_outputs"}


def test_n_samples_become_n_rows_with_their_own_seeds_and_come_back_in_order() -> None:
    schema = {"type": "object"}
    request = ChatRequest(messages=({"role": "user", "content": "hi"},), seed=10, n=3, json_schema=schema)
    rows = request_rows(0, request)
    params = [json.loads(r["rlaif_request"])["sampling_params"] for r in rows]
    assert [p["seed"] for p in params] == [10, 11, 12]
    assert all(p["structured_outputs"] == {"json": '{"type": "object"}'} for p in params)  # text
    answers = [
        {"text": f"s{i}", "prompt_tokens": 9, "completion_tokens": 5, "first_token_logprobs": {}}
        for i in range(3)
    ]
    result = to_result(request, answers)
    assert result.texts == ["s0", "s1", "s2"]
    assert result.prompt_tokens == 9 and result.completion_tokens == 15
    assert result.error is None


def test_an_engine_row_keeps_the_first_tokens_log_probs_and_a_full_answer_reads_as_length() -> None:
    request = ChatRequest(messages=(), max_tokens=1, top_logprobs=2, choices=("A", "B"))
    engine_row: dict[str, Any] = {
        **request_rows(0, request)[0], "generated_text": "A", "num_input_tokens": 40,
        "num_generated_tokens": 1,
        "logprobs": [{65: {"logprob": math.log(0.8), "rank": 1, "decoded_token": "A"},
                      66: {"logprob": math.log(0.2), "rank": 2, "decoded_token": "B"}}],
        "messages": [{"role": "user", "content": "long text we do not carry back"}],
    }  # fmt: skip
    out = _postprocess(engine_row)
    assert set(out) == {"rlaif_index", "rlaif_sample", "rlaif_answer"}
    result = to_result(request, [json.loads(out["rlaif_answer"])])
    assert result.texts == ["A"] and result.finish_reasons == ["length"]
    assert result.first_token_logprobs == pytest.approx({"A": math.log(0.8), "B": math.log(0.2)})
    # A request that did not ask for log-probs gets none back, though the engine sent the sampled token's.
    plain = ChatRequest(messages=())
    empty = {"num_generated_tokens": 0, "generated_text": ""}
    not_asked = _postprocess({**engine_row, **request_rows(0, plain)[0], **empty})
    stopped = to_result(plain, [json.loads(not_asked["rlaif_answer"])])
    assert stopped.texts == [""] and stopped.finish_reasons == ["stop"] and stopped.first_token_logprobs == {}


def test_ray_and_running_servers_are_one_or_the_other() -> None:
    with pytest.raises(ValueError, match="either base_urls"):
        ModelConfig(base_urls=["http://127.0.0.1:8000/v1"], ray=RayConfig())


def test_without_ray_installed_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'rlaif-toolkit\[ray\]'"):
        RayDataBackend("model", label="m", config=RayConfig())


class _SlowDataset:
    """A finished wave's dataset: it hands out every answer, then takes a while to shut down."""

    def __init__(self, rows: list[dict[str, Any]], release: threading.Event):
        self.rows, self.release = rows, release

    def iter_rows(self) -> Any:
        for row in self.rows:
            answer = {"text": "ok", "prompt_tokens": 3, "completion_tokens": 1, "first_token_logprobs": {}}
            yield {**row, "rlaif_answer": json.dumps(answer)}
        self.release.wait(10)


def _offline_backend(release: threading.Event) -> RayDataBackend:
    """A RayDataBackend whose Ray and processor are stand-ins (the real ones: the integration test)."""
    backend = object.__new__(RayDataBackend)
    backend.model = backend.label = "m"
    backend._ray = SimpleNamespace(data=SimpleNamespace(from_items=lambda rows: rows))
    backend._started_ray = False
    backend._processor = lambda rows: _SlowDataset(rows, release)  # type: ignore[assignment]
    backend._queue = []
    backend._flusher = None
    backend._gather_seconds = 0.01
    backend.waves = 0
    return backend


def test_closing_while_a_wave_winds_down_raises_nothing_later(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every answer is out, so the caller closes the backend while Ray Data is still ending the
    # wave; the wave's thread must not then fail on the cancelled wait or on the closed loop.
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    loop_errors: list[dict[str, Any]] = []
    release = threading.Event()

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
        backend = _offline_backend(release)
        result = await backend.chat(ChatRequest(messages=({"role": "user", "content": "hi"},)))
        assert result.texts == ["ok"] and result.error is None
        await backend.aclose()
        release.set()  # the wave ends while the loop still runs
        await asyncio.sleep(0.2)

    asyncio.run(run())
    assert loop_errors == []

    release.clear()

    async def close_early() -> None:
        backend = _offline_backend(release)
        await backend.chat(ChatRequest(messages=({"role": "user", "content": "hi"},)))
        await backend.aclose()

    asyncio.run(close_early())
    release.set()  # the wave ends after the loop has closed
    for thread in threading.enumerate():
        if thread.name == "rlaif-ray-wave":
            thread.join(10)
    assert thread_errors == []
