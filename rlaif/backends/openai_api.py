"""Client for one or more OpenAI-compatible servers (vLLM), through the `openai` package.

Requests go to the replica with the fewest in flight; a replica that fails is set aside with
backoff and tried again later. A semaphore bounds what is in flight overall: high enough to keep
vLLM's batch full, low enough not to queue work the server cannot start. Every request carries its
own seed (a batch-mate without one can void yours on vLLM).

Waits are bounded three ways: connecting (`connect_timeout`), the first byte of the answer
(`first_byte_timeout` plus `first_byte_per_token` for each of max_tokens: answers are not streamed,
so the first byte comes when the whole answer is ready) and the whole request (`timeout`). Retries
after a failure are cut to the time left before `unreachable_after`, so a server that never answers
is given up on within `unreachable_after` plus one timeout, and the message says how long it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletion

from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.errors import BackendError, ServerRefused, ServerUnreachable

__all__ = ["OpenAIBackend"]

_RETRYABLE = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
    openai.RateLimitError,
    openai.ConflictError,
)


class OpenAIBackend:
    """Async chat client over several base URLs with bounded concurrency and retries.

    Args:
        base_urls: Server roots such as `http://127.0.0.1:8000/v1`.
        model: Served model name; None asks the first server for its model list.
        api_key: Key for the servers (vLLM accepts anything unless started with --api-key).
        max_concurrency: Most requests in flight over all replicas.
        timeout: Seconds one request may take in all.
        connect_timeout: Seconds to open a connection.
        first_byte_timeout: Seconds to wait for the first byte of a one-token answer; None waits
            up to `timeout`.
        first_byte_per_token: Seconds more for the first byte per token of `max_tokens`.
        unreachable_after: Seconds of failures in a row, on every replica, before giving up.
        label: Stable model name for record ids and provenance (a managed server's served name is
            random per start, so the pipeline passes the model folder's name here).
        alive: For a managed server, whether its process still runs; when a request fails and this
            says no, retries stop at once with `ServerUnreachable` (the pipeline restarts the server).
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        model: str | None = None,
        *,
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
        first_byte_timeout: float | None = None,
        first_byte_per_token: float = 0.0,
        unreachable_after: float = 60.0,
        label: str | None = None,
        alive: Callable[[], bool] | None = None,
    ):
        if not base_urls:
            raise ServerRefused(
                "no server URL given; set model.base_urls or leave it empty for a managed server"
            )
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self.model = model or ""
        self.label = label or self.model
        self.unreachable_after = unreachable_after
        self.alive = alive
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.first_byte_timeout = first_byte_timeout
        self.first_byte_per_token = first_byte_per_token
        # Several clients per server, each with its own connection pool: httpx's pool checks every
        # pooled connection (a socket poll each) for every request it sends, so one pool of 64
        # connections took 29% of the client's time in a profile; pools of 8 brought it to 11%.
        shards = max(1, min(8, max_concurrency // 8))
        self._shards = [
            [
                openai.AsyncOpenAI(
                    base_url=u,
                    api_key=api_key or "EMPTY",
                    max_retries=0,
                    timeout=openai.Timeout(timeout, connect=self.connect_timeout),
                )  # fmt: skip
                for _ in range(shards)
            ]
            for u in self.base_urls
        ]
        self._clients = [shard[0] for shard in self._shards]
        self._turn = 0
        self._auth = {"Authorization": f"Bearer {api_key or 'EMPTY'}"}
        self._in_flight = [0] * len(self._clients)
        self._down_until = [0.0] * len(self._clients)
        self._failures = [0] * len(self._clients)
        self._failed_at = [-math.inf] * len(self._clients)
        """When each replica's last failure was counted: attempts sent before it are the same incident."""
        self.served = [0] * len(self._clients)
        """Requests answered per replica (for load-balance checks and reports)."""
        self.peak_in_flight = 0
        """Most requests in flight at once, over all replicas."""
        self.malformed = 0
        """Answers with an impossible field (content not text, log-probs above 0), recorded not guessed."""
        self._semaphore = asyncio.Semaphore(max_concurrency)

    async def served_models(self) -> list[str]:
        """The first server's model list: one quick request, so a server that is down, refuses, or is no
        OpenAI-compatible server is told at once (`ServerUnreachable`, `ServerRefused`, `BackendError`)
        instead of after `unreachable_after` seconds of retries."""
        url = self.base_urls[0]
        # A model list is instant on any server; one that holds it for long is stuck.
        read = min(self.timeout, self.first_byte_timeout or 30.0, 30.0)
        try:
            models = await self._clients[0].models.list(
                timeout=openai.Timeout(read, connect=self.connect_timeout)
            )
        except openai.APITimeoutError:
            raise ServerUnreachable(
                f"no answer from {url}/models within {read:.0f} s; is the server running and not stuck?"
            ) from None
        except _RETRYABLE as exc:
            raise ServerUnreachable(f"cannot reach {url}: {exc}; is the server running?") from None
        except (openai.NotFoundError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ServerRefused(f"{url} refused the model list ({exc}){_v1_hint(url)}") from None
        except (AttributeError, TypeError, ValueError, openai.APIResponseValidationError):
            # openai fails inside its page object when the body is not a model list (a web page)
            models = None
        if not isinstance(getattr(models, "data", None), list):
            raise BackendError(
                f"the server at {url} did not answer like an OpenAI-compatible server: "
                f"GET /models returned no model list{_v1_hint(url)}"
            )
        ids = [_field(model, "id") for model in models.data]  # type: ignore[union-attr]
        if not all(isinstance(i, str) and i for i in ids):
            raise BackendError(
                f"the server at {url} did not answer like an OpenAI-compatible server: GET /models listed "
                f"a model without a name ({_shown(ids)})"
            )
        return ids

    async def resolve_model(self) -> str:
        """Fill in `model` from the first server's model list when it was not given."""
        if not self.model:
            served = await self.served_models()
            if not served:
                raise BackendError(f"{self.base_urls[0]} serves no model")
            self.model = served[0]
        self.label = self.label or self.model
        return self.model

    def _pick(self) -> int:
        now = time.monotonic()
        up = [i for i in range(len(self._clients)) if self._down_until[i] <= now]
        if not up:
            return min(range(len(self._clients)), key=lambda i: self._down_until[i])
        return min(up, key=lambda i: self._in_flight[i])

    def _attempt_seconds(self, request: ChatRequest, left: float | None) -> tuple[float, float]:
        """(first-byte, total) seconds for one attempt; `left` is the time before giving up, if failing."""
        # The last try gets only the time left (not a whole connect timeout more), so a server that
        # never answers is given up on within unreachable_after plus one timeout, as documented.
        total = self.timeout if left is None else max(min(self.timeout, left), 0.05)
        if self.first_byte_timeout is None:
            return total, total
        first_byte = self.first_byte_timeout + self.first_byte_per_token * request.max_tokens
        return min(first_byte, total), total

    async def _create(self, index: int, request: ChatRequest, left: float | None) -> Any:
        """One attempt, within its timeouts; a managed server found dead or frozen ends it at once."""
        first_byte, total = self._attempt_seconds(request, left)
        timeout = openai.Timeout(total, connect=min(self.connect_timeout, total), read=first_byte)
        # `post` rather than `chat.completions.create`: create() first walks every argument against
        # openai's TypedDicts (27% of the client's time in a profile of a 500-prompt run), and our
        # arguments are plain JSON already. The answer is parsed into the same ChatCompletion.
        self._turn += 1
        shard = self._shards[index]
        create = shard[self._turn % len(shard)].post(
            "/chat/completions", body=self._arguments(request), cast_to=ChatCompletion,
            options={"timeout": timeout, "headers": self._auth},
        )  # fmt: skip
        try:
            async with asyncio.timeout(total):
                if self.alive is None:
                    return await create
                return await self._watched(create)
        except TimeoutError:
            raise openai.APITimeoutError(request=httpx.Request("POST", self.base_urls[index])) from None
        except json.JSONDecodeError as exc:  # openai parses a JSON content type without asking
            url = self.base_urls[index]
            raise NotChatCompletion(
                f"the server at {url} did not answer like an OpenAI-compatible server: "
                f"its JSON body does not parse ({exc.msg}){_v1_hint(url)}"
            ) from None

    async def _watched(self, create: Any) -> Any:
        """Await `create`, checking every 2 s that the managed server is still alive (not exited,
        still answering its health check): a frozen server would otherwise hold every request for
        its whole timeout."""
        task = asyncio.ensure_future(create)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=2.0)
                if done:
                    return task.result()
                if self.alive is not None and not self.alive():
                    raise _ServerDown()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def chat(self, request: ChatRequest) -> ChatResult:
        async with self._semaphore:
            failing_since: float | None = None
            first_try: float | None = None  # when the first attempt that failed was sent
            attempt = 0
            while True:
                index = self._pick()
                wait = self._down_until[index] - time.monotonic()
                left = None
                if failing_since is not None:  # the last try comes when the time is up, not after
                    left = failing_since + self.unreachable_after - time.monotonic()
                    wait = min(wait, left)
                if wait > 0:
                    await asyncio.sleep(wait)
                    left = None if left is None else left - wait
                self._in_flight[index] += 1
                self.peak_in_flight = max(self.peak_in_flight, sum(self._in_flight))
                sent = time.monotonic()
                try:
                    response = await self._create(index, request, left)
                    result = _result(response, self.base_urls[index], n=request.n)
                except (*_RETRYABLE, NotChatCompletion, _ServerDown) as exc:
                    now = time.monotonic()
                    failing_since = failing_since or now
                    first_try = first_try or sent
                    waited = now - first_try
                    # Attempts that were already in flight when the replica last failed fail with it
                    # (64 connections reset at once are one incident, not 64): only an attempt sent
                    # after that escalates the backoff, else one burst would hold the replica for 30 s.
                    if sent >= self._failed_at[index]:
                        self._failures[index] += 1
                        self._failed_at[index] = now
                    # Backoff per replica, so one dead server is skipped while the others carry on.
                    self._down_until[index] = now + min(30.0, 0.5 * 2 ** min(self._failures[index], 6))
                    if self.alive is not None and not self.alive():
                        raise ServerUnreachable(
                            f"the managed server at {self.base_urls[index]} has exited or stopped "
                            f"answering its health check ({type(exc).__name__}: {exc})"
                        ) from None
                    if now - failing_since >= self.unreachable_after and isinstance(exc, NotChatCompletion):
                        raise BackendError(f"{exc} (for {waited:.0f} s)") from None
                    if now - failing_since >= self.unreachable_after:
                        raise ServerUnreachable(
                            f"no answer from {', '.join(self.base_urls)} for {waited:.0f} s "
                            f"({type(exc).__name__}: {exc}); check the server is running, "
                            "then rerun to resume"
                        ) from None
                    attempt += 1
                    pause = min(5.0, 0.2 * attempt) * random.uniform(0.5, 1.5)
                    await asyncio.sleep(min(pause, failing_since + self.unreachable_after - now))
                    continue
                except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                    # The request itself is at fault (too long a prompt, say): record it, go on.
                    return ChatResult(error=f"{type(exc).__name__}: {exc}")
                except (
                    openai.AuthenticationError,
                    openai.PermissionDeniedError,
                    openai.NotFoundError,
                ) as exc:
                    raise ServerRefused(
                        f"{self.base_urls[index]} refused the request ({type(exc).__name__}: {exc}); "
                        f"check model.served_name and the API key{_v1_hint(self.base_urls[index])}"
                    ) from None
                finally:
                    self._in_flight[index] -= 1
                self._failures[index] = 0
                self.served[index] += 1
                self.malformed += result.error is not None or result.malformed is not None
                return result

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        """The request body, as vLLM's OpenAI-compatible server reads it."""
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
            "n": request.n,
        }
        if request.top_logprobs:
            arguments["logprobs"] = True
            arguments["top_logprobs"] = request.top_logprobs
        if request.choices:
            arguments["structured_outputs"] = {"choice": list(request.choices)}
        elif request.json_schema is not None:
            arguments["structured_outputs"] = {"json": request.json_schema}
        if request.tools:  # vLLM answers these with --enable-auto-tool-choice and a --tool-call-parser
            arguments["tools"] = list(request.tools)
            arguments["tool_choice"] = "auto"
        return arguments

    async def aclose(self) -> None:
        for client in (c for shard in self._shards for c in shard):
            await client.close()


class _ServerDown(Exception):
    """The managed server exited or froze while a request was waiting for it."""

    def __str__(self) -> str:
        return "the request was abandoned"


class NotChatCompletion(Exception):
    """A 2xx answer that is not an OpenAI chat completion (an HTML page, no `choices`, no message):
    retried like a server failure, then reported in one line."""


def _v1_hint(url: str) -> str:
    return "" if url.rstrip("/").endswith("/v1") else f"; is `/v1` missing from {url}?"


def _result(response: Any, url: str, *, n: int = 1) -> ChatResult:
    """The parts rlaif uses of a chat completion, each checked for type and range.

    The answer's shape (no `choices`, fewer than the `n` asked for, a choice without a message) raises
    `NotChatCompletion`, retried like a failing server. A field that is present but impossible is
    model misbehaviour, recorded rather than guessed: content that is not a string makes the result an
    `error` (never an empty response); log-probs that are not finite numbers <= 0, or `logprobs.content`
    that is not a list of tokens, are dropped with `malformed` saying why, so a judge reads `unparsed`.
    Token counts that are not whole numbers >= 0 are read as 0. The openai package builds its models
    without validating them (`construct`), so any JSON can arrive in any field here.
    """

    def wrong(what: str) -> NotChatCompletion:
        return NotChatCompletion(
            f"the server at {url} did not answer like an OpenAI-compatible server: {what}{_v1_hint(url)}"
        )

    choices = getattr(response, "choices", None)
    if not isinstance(response, openai.types.chat.ChatCompletion) and choices is None:
        shown = " ".join(str(response).split())[:80]
        raise wrong(f"got {type(response).__name__} {shown!r}")
    if not choices or not isinstance(choices, list):
        raise wrong(f"`choices` is {_shown(choices)}")
    if len(choices) < n:
        raise wrong(f"{len(choices)} choice(s) for the {n} asked for")
    result = ChatResult()
    for index, choice in enumerate(choices[:n]):
        message = _field(choice, "message")
        if message is None:
            raise wrong("a choice has no `message`")
        content = _field(message, "content")
        calls = _field(message, "tool_calls") or ()
        if not isinstance(calls, (list, tuple)):
            return ChatResult(
                error=f"malformed answer from {url}: choice {index}'s tool_calls is {_shown(calls)}, "
                "not a list"
            )
        # A turn that calls tools may have no text (OpenAI sends content null then); any other turn must.
        if content is None and calls:
            content = ""
        if not isinstance(content, str):
            return ChatResult(
                error=f"malformed answer from {url}: choice {index}'s content is {_shown(content)}, not text"
            )
        finish = _field(choice, "finish_reason")
        result.texts.append(content)
        result.finish_reasons.append(finish if isinstance(finish, str) else None)
        result.tool_calls.append(tuple(_call(c) for c in calls))
    result.first_token_logprobs, result.malformed = _first_token_logprobs(_field(choices[0], "logprobs"))
    usage = getattr(response, "usage", None)
    result.prompt_tokens = _count(_field(usage, "prompt_tokens"))
    result.completion_tokens = _count(_field(usage, "completion_tokens"))
    return result


def _field(value: Any, name: str) -> Any:
    """`value.name`, or `value[name]` where openai left a nested part as a plain dict."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _shown(value: Any) -> str:
    return " ".join(repr(value).split())[:60]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _first_token_logprobs(logprobs: Any) -> tuple[dict[str, float], str | None]:
    """(token -> log-prob for the first token's alternatives, why they were refused or None)."""
    if logprobs is None:
        return {}, None
    content = _field(logprobs, "content")
    if content is None:
        return {}, None
    if not isinstance(content, list):
        return {}, f"logprobs.content is {_shown(content)}, not a list"
    if not content:
        return {}, None
    top = _field(content[0], "top_logprobs")
    if top is None:
        return {}, None
    if not isinstance(top, list):
        return {}, f"top_logprobs is {_shown(top)}, not a list"
    found: dict[str, float] = {}
    for entry in top:
        token, logprob = _field(entry, "token"), _field(entry, "logprob")
        if not isinstance(token, str):
            return {}, f"a top_logprobs token is {_shown(token)}, not text"
        number = isinstance(logprob, (int, float)) and not isinstance(logprob, bool)
        # -inf is a real answer (probability 0); anything above 0 or NaN is impossible.
        if not number or math.isnan(logprob) or logprob > 0 or logprob == math.inf:
            return {}, f"the log-prob of {token!r} is {_shown(logprob)}, not a number <= 0"
        found[token] = float(logprob)
    return found, None


def _call(call: Any) -> dict[str, Any]:
    """A tool call of a chat completion in OpenAI's dict form."""
    function = _field(call, "function")
    return {
        "id": str(_field(call, "id") or ""),
        "type": "function",
        "function": {
            "name": str(_field(function, "name") or ""),
            "arguments": str(_field(function, "arguments") or ""),
        },
    }
