"""Servers that are not quite vLLM: a 2xx answer that is not a chat completion is retried like a failing
server, then ends in one line naming the URL and what came back; never an exception from deep inside."""

from __future__ import annotations

import asyncio
import time

import pytest

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.errors import BackendError, ServerRefused
from tests.support.stub import QUESTION, StubServer, chat


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("html", "got str '<!doctype html>"),
        ("empty_choices", "`choices` is []"),
        ("null_choices", "`choices` is None"),
        ("no_message", "a choice has no `message`"),
    ],
)
def test_a_reply_that_is_not_a_chat_completion_ends_in_one_line(mode: str, said: str) -> None:
    with StubServer() as stub:
        stub.mode = mode  # type: ignore[assignment]
        started = time.monotonic()
        with pytest.raises(BackendError) as info:
            chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 1.0},
                 [ChatRequest(messages=QUESTION)])  # fmt: skip
        waited = time.monotonic() - started
        tries = stub.count(mode=mode)  # type: ignore[arg-type]
    message = str(info.value)
    assert "did not answer like an OpenAI-compatible server" in message and said in message
    assert stub.base_url in message and "\n" not in message
    assert tries >= 2 and waited < 8  # retried per policy, then given up on within unreachable_after


def test_a_broken_reply_that_recovers_is_retried_and_loses_nothing() -> None:
    with StubServer() as stub:
        stub.failure, stub.failures_left = "null_choices", 2  # type: ignore[assignment]
        results = chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 30},
                       [ChatRequest(messages=QUESTION, seed=1)])  # fmt: skip
    assert results[0].error is None and results[0].texts[0].startswith("stub answer")


def test_a_url_without_v1_is_named_in_the_refusal() -> None:
    with StubServer() as stub:
        root = stub.base_url.removesuffix("/v1")
        with pytest.raises(ServerRefused) as info:
            chat({"base_urls": [root], "model": "m"}, [ChatRequest(messages=QUESTION)])
    assert f"is `/v1` missing from {root}?" in str(info.value)


def test_a_web_page_where_the_model_list_should_be_is_one_line() -> None:
    with StubServer() as stub:
        stub.mode = "html"
        backend = OpenAIBackend(base_urls=[stub.base_url], model=None)
        with pytest.raises(BackendError, match="GET /models returned no model list"):
            asyncio.run(backend.resolve_model())
