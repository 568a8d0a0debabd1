"""Client for one or more OpenAI-compatible servers (vLLM), through the `openai` package.

Requests go to the replica with the fewest in flight; a replica that fails is set aside with
backoff and tried again later. A semaphore bounds what is in flight overall: high enough to keep
vLLM's batch full, low enough not to queue work the server cannot start. Every request carries its
own seed (a batch-mate without one can void yours on vLLM).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai

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
        timeout: Seconds one request may take.
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
        self._clients = [
            openai.AsyncOpenAI(base_url=u, api_key=api_key or "EMPTY", max_retries=0, timeout=timeout)
            for u in self.base_urls
        ]
        self._in_flight = [0] * len(self._clients)
        self._down_until = [0.0] * len(self._clients)
        self._failures = [0] * len(self._clients)
        self.served = [0] * len(self._clients)
        """Requests answered per replica (for load-balance checks and reports)."""
        self.peak_in_flight = 0
        """Most requests in flight at once, over all replicas."""
        self._semaphore = asyncio.Semaphore(max_concurrency)

    async def resolve_model(self) -> str:
        """Fill in `model` from the first server's model list when it was not given."""
        if not self.model:
            url = self.base_urls[0]
            try:
                models = await self._clients[0].models.list()
            except _RETRYABLE as exc:
                raise ServerUnreachable(f"cannot reach {url}: {exc}; is the server running?") from None
            except (openai.NotFoundError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise ServerRefused(f"{url} refused the model list ({exc}){_v1_hint(url)}") from None
            except (AttributeError, TypeError, ValueError, openai.APIResponseValidationError):
                # openai fails inside its page object when the body is not a model list (a web page)
                raise BackendError(
                    f"the server at {url} did not answer like an OpenAI-compatible server: "
                    f"GET /models returned no model list{_v1_hint(url)}"
                ) from None
            if not isinstance(getattr(models, "data", None), list):
                raise BackendError(
                    f"the server at {url} did not answer like an OpenAI-compatible server: "
                    f"GET /models returned no model list{_v1_hint(url)}"
                )
            if not models.data:
                raise BackendError(f"{self.base_urls[0]} serves no model")
            self.model = models.data[0].id
        self.label = self.label or self.model
        return self.model

    def _pick(self) -> int:
        now = time.monotonic()
        up = [i for i in range(len(self._clients)) if self._down_until[i] <= now]
        if not up:
            return min(range(len(self._clients)), key=lambda i: self._down_until[i])
        return min(up, key=lambda i: self._in_flight[i])

    async def chat(self, request: ChatRequest) -> ChatResult:
        async with self._semaphore:
            failing_since: float | None = None
            attempt = 0
            while True:
                index = self._pick()
                wait = self._down_until[index] - time.monotonic()
                if failing_since is not None:  # the last try comes when the time is up, not after
                    wait = min(wait, failing_since + self.unreachable_after - time.monotonic())
                if wait > 0:
                    await asyncio.sleep(wait)
                self._in_flight[index] += 1
                self.peak_in_flight = max(self.peak_in_flight, sum(self._in_flight))
                try:
                    response = await self._clients[index].chat.completions.create(**self._arguments(request))
                    result = _result(response, self.base_urls[index])
                except (*_RETRYABLE, NotChatCompletion) as exc:
                    now = time.monotonic()
                    failing_since = failing_since or now
                    self._failures[index] += 1
                    # Backoff per replica, so one dead server is skipped while the others carry on.
                    self._down_until[index] = now + min(30.0, 0.5 * 2 ** min(self._failures[index], 6))
                    if self.alive is not None and not self.alive():
                        raise ServerUnreachable(
                            f"the managed server at {self.base_urls[index]} has exited "
                            f"({type(exc).__name__}: {exc})"
                        ) from None
                    if now - failing_since >= self.unreachable_after and isinstance(exc, NotChatCompletion):
                        raise BackendError(f"{exc} (for {self.unreachable_after:.0f} s)") from None
                    if now - failing_since >= self.unreachable_after:
                        raise ServerUnreachable(
                            f"no answer from {', '.join(self.base_urls)} for {self.unreachable_after:.0f} s "
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
                return result

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
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
            arguments["extra_body"] = {"structured_outputs": {"choice": list(request.choices)}}
        elif request.json_schema is not None:
            arguments["extra_body"] = {"structured_outputs": {"json": request.json_schema}}
        return arguments

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()


class NotChatCompletion(Exception):
    """A 2xx answer that is not an OpenAI chat completion (an HTML page, no `choices`, no message):
    retried like a server failure, then reported in one line."""


def _v1_hint(url: str) -> str:
    return "" if url.rstrip("/").endswith("/v1") else f"; is `/v1` missing from {url}?"


def _result(response: Any, url: str) -> ChatResult:
    """The parts rlaif uses of a chat completion; raises `NotChatCompletion` for anything else."""

    def wrong(what: str) -> NotChatCompletion:
        return NotChatCompletion(
            f"the server at {url} did not answer like an OpenAI-compatible server: {what}{_v1_hint(url)}"
        )

    choices = getattr(response, "choices", None)
    if not isinstance(response, openai.types.chat.ChatCompletion) and choices is None:
        shown = " ".join(str(response).split())[:80]
        raise wrong(f"got {type(response).__name__} {shown!r}")
    if not choices:
        raise wrong(f"`choices` is {choices!r}")
    result = ChatResult()
    for choice in choices:
        message = getattr(choice, "message", None)
        if message is None:
            raise wrong("a choice has no `message`")
        result.texts.append(message.content or "")
        result.finish_reasons.append(choice.finish_reason)
    first = choices[0]
    if first.logprobs is not None and first.logprobs.content:
        for top in first.logprobs.content[0].top_logprobs or []:
            result.first_token_logprobs[top.token] = top.logprob
    if response.usage is not None:
        result.prompt_tokens = response.usage.prompt_tokens
        result.completion_tokens = response.usage.completion_tokens
    return result
