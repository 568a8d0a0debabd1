"""Server answers checked field by field (issue 31, item 3): every field the client reads is checked for
type and range; an answer of the wrong shape is retried like a failing server, an impossible field is
recorded (`error`, or log-probs dropped so the judge reads `unparsed`) and counted, never guessed."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai._models import construct_type
from openai.types.chat import ChatCompletion

from rlaif.backends.openai_api import NotChatCompletion, OpenAIBackend, _result
from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.errors import ServerUnreachable
from tests.support.stub import QUESTION, StubServer

URL = "http://127.0.0.1:9/v1"


def parse(body: Any, n: int = 1) -> ChatResult:
    """What the client makes of a JSON body, through the same openai model building it uses."""
    return _result(construct_type(type_=ChatCompletion, value=body), URL, n=n)


def completion(content: Any = "A", top: Any = None, **extra: Any) -> dict[str, Any]:
    logprobs = None if top is None else {"content": [{"token": "A", "logprob": -0.1, "top_logprobs": top}]}
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
              "logprobs": logprobs}  # fmt: skip
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice], **extra}


def test_null_content_is_an_error_not_an_empty_response() -> None:
    result = parse(completion(content=None))
    assert result.texts == [] and result.error is not None and "content is None, not text" in result.error


@pytest.mark.parametrize("content", [5, ["A"], {"text": "A"}, True])
def test_content_that_is_not_text_is_an_error(content: Any) -> None:
    assert parse(completion(content=content)).error is not None


@pytest.mark.parametrize("logprob", [0.5, 3, math.inf, math.nan, "high", None, True])
def test_impossible_log_probs_are_dropped_and_said(logprob: Any) -> None:
    result = parse(completion(top=[{"token": "A", "logprob": logprob}, {"token": "B", "logprob": -2.0}]))
    assert result.first_token_logprobs == {} and result.malformed is not None
    assert "not a number <= 0" in result.malformed and result.texts == ["A"]


@pytest.mark.parametrize("content", ["A", 5, {"top_logprobs": []}])
def test_logprobs_content_that_is_not_a_list_is_said(content: Any) -> None:
    body = completion()
    body["choices"][0]["logprobs"] = {"content": content}
    result = parse(body)
    assert result.first_token_logprobs == {} and "logprobs.content is" in (result.malformed or "")


def test_real_log_probs_pass_including_zero_and_minus_infinity() -> None:
    top = [
        {"token": "A", "logprob": 0.0},
        {"token": "B", "logprob": -math.inf},
        {"token": "C", "logprob": -3},
    ]
    result = parse(completion(top=top))
    assert result.first_token_logprobs == {"A": 0.0, "B": -math.inf, "C": -3.0} and result.malformed is None


def test_fewer_choices_than_asked_is_not_a_chat_completion() -> None:
    with pytest.raises(NotChatCompletion, match=r"1 choice\(s\) for the 2 asked for"):
        parse(completion(), n=2)


@pytest.mark.parametrize("usage", [{"prompt_tokens": -3, "completion_tokens": "7"}, "lots", [1, 2]])
def test_token_counts_that_are_not_counts_read_as_zero(usage: Any) -> None:
    result = parse(completion(usage=usage))
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0) and result.error is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
"""Any JSON value, NaN and infinities included (Python's json reads them)."""


def _anything_or(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, JSON)


TOKEN = st.fixed_dictionaries(
    {
        "token": _anything_or(st.sampled_from(["A", "B", " A"])),
        "logprob": _anything_or(st.floats(max_value=0)),
    }
)
TOP = st.lists(TOKEN, max_size=3)
CHOICE = st.fixed_dictionaries(
    {
        "index": _anything_or(st.just(0)),
        "message": _anything_or(st.fixed_dictionaries({"role": JSON, "content": _anything_or(st.text())})),
        "finish_reason": _anything_or(st.sampled_from(["stop", "length"])),
        "logprobs": _anything_or(
            st.fixed_dictionaries(
                {
                    "content": _anything_or(
                        st.lists(
                            st.fixed_dictionaries(
                                {"token": JSON, "logprob": JSON, "top_logprobs": _anything_or(TOP)}
                            ),
                            max_size=2,
                        )
                    )
                }  # fmt: skip
            )
        ),
    }
)
BODY = _anything_or(
    st.fixed_dictionaries(
        {"id": JSON, "object": JSON, "choices": _anything_or(st.lists(CHOICE, max_size=3))},
        optional={
            "usage": _anything_or(st.fixed_dictionaries({"prompt_tokens": JSON, "completion_tokens": JSON}))
        },
    )
)
"""Chat completions with any field replaced by any JSON, and any JSON at all."""


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODY, n=st.integers(1, 3))
def test_no_server_body_escapes_as_anything_but_a_recorded_outcome(body: Any, n: int) -> None:
    """Whatever JSON comes back: `NotChatCompletion` (retried), or a result whose every field has its
    type and range, an impossible part recorded in `error` or `malformed`."""
    try:
        result = parse(body, n=n)
    except NotChatCompletion as exc:
        assert "\n" not in str(exc)
        return
    if result.error is not None:
        assert result.texts == [] and result.first_token_logprobs == {}
        return
    assert len(result.texts) == n and all(isinstance(t, str) for t in result.texts)
    assert all(r is None or isinstance(r, str) for r in result.finish_reasons)
    for token, logprob in result.first_token_logprobs.items():
        assert isinstance(token, str) and isinstance(logprob, float) and not math.isnan(logprob)
        assert logprob <= 0
    for count in (result.prompt_tokens, result.completion_tokens):
        assert isinstance(count, int) and not isinstance(count, bool) and count >= 0


def test_null_content_from_a_server_is_recorded_and_counted() -> None:
    with StubServer(answer=lambda body, index: None) as stub:  # type: ignore[arg-type,return-value]
        backend = OpenAIBackend([stub.base_url], "m")

        async def go() -> ChatResult:
            try:
                return await backend.chat(ChatRequest(messages=QUESTION))
            finally:
                await backend.aclose()

        result = asyncio.run(go())
    assert result.texts == [] and "content is None, not text" in (result.error or "")
    assert backend.malformed == 1


def test_the_last_retry_is_cut_to_the_time_left() -> None:
    """A server that takes every request and never answers: the last try gets only what is left of
    unreachable_after, not a whole connect timeout more (it took 4 + 0.2 + 4 s; the bound is 4 + 0.5, and
    2.5 s of slack is left for a loaded machine)."""
    with StubServer() as stub:
        stub.mode = "hang"
        backend = OpenAIBackend([stub.base_url], "m", timeout=4, connect_timeout=4, unreachable_after=0.5)

        async def go() -> None:
            try:
                await backend.chat(ChatRequest(messages=QUESTION))
            finally:
                await backend.aclose()

        started = time.monotonic()
        with pytest.raises(ServerUnreachable):
            asyncio.run(go())
        waited = time.monotonic() - started
        stub.mode = "ok"
    assert waited < 4 + 0.5 + 2.5, waited


def test_positive_log_probs_make_the_judge_read_unparsed_not_a_confident_verdict() -> None:
    from rlaif.judging.modes import order_verdict

    top = [{"token": "A", "logprob": 2.0}, {"token": "B", "logprob": -5.0}]
    verdict = order_verdict(parse(completion(top=top)), "first")
    assert verdict.status == "unparsed" and verdict.p_first is None and verdict.raw == "A"


def test_a_model_list_entry_without_a_name_is_one_line() -> None:
    from rlaif.errors import BackendError

    with StubServer(served_name=None) as stub:  # type: ignore[arg-type]
        backend = OpenAIBackend([stub.base_url], None)
        with pytest.raises(BackendError, match="listed a model without a name"):
            asyncio.run(backend.resolve_model())
