"""Servers that are not quite vLLM: a 2xx answer that is not a chat completion is retried like a failing
server, then ends in one line naming the URL and what came back; never an exception from deep inside."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.errors import BackendError, RlaifError, ServerRefused
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


TRANSIENT = [
    "error500",
    "drop",
    "html",
    "empty_choices",
    "null_choices",
    "no_message",
    "half_closed",
    "garbage_json",
]


@pytest.mark.parametrize("mode", [*TRANSIENT, "not_found", "hang"])
def test_a_server_that_always_misbehaves_ends_in_one_bounded_line(mode: str) -> None:
    """Every hostile mode, for good: one line naming the URL, within unreachable_after plus one
    first-byte timeout (a 404 is a refusal and ends at once), never an exception from inside."""
    with StubServer() as stub:
        stub.mode = mode  # type: ignore[assignment]
        started = time.monotonic()
        with pytest.raises(RlaifError) as info:
            chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 1.0, "timeout": 60,
                  "first_byte_timeout": 0.5}, [ChatRequest(messages=QUESTION)])  # fmt: skip
        waited = time.monotonic() - started
        stub.mode = "ok"
    message = str(info.value)
    assert stub.base_url in message and "\n" not in message, message
    assert waited < 1.0 + 0.5 + 4, waited
    assert isinstance(info.value, ServerRefused) == (mode == "not_found")


@settings(max_examples=10, deadline=None)  # each bad reply costs a backoff of 1-2 s
@given(script=st.lists(st.sampled_from(TRANSIENT), max_size=2))
def test_any_short_run_of_bad_replies_then_a_good_one_loses_nothing(script: list[str]) -> None:
    """Whatever broke first, the request is answered once the server recovers, with the answer the
    good server gives, and every bad reply was retried (one request each)."""
    with StubServer() as stub:
        stub.script = list(script)  # type: ignore[arg-type]
        (result,) = chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 30},
                         [ChatRequest(messages=QUESTION, seed=3)])  # fmt: skip
        modes = [m for _, _, m in stub.requests]
    with StubServer() as clean:
        (expected,) = chat(
            {"base_urls": [clean.base_url], "model": "m"}, [ChatRequest(messages=QUESTION, seed=3)]
        )
    assert result.error is None and result.texts == expected.texts
    assert modes == [*script, "ok"]
