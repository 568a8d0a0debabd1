"""The one seam between rlaif and whatever generates text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rlaif.backends.window import window_for, windowed

__all__ = ["Backend", "ChatRequest", "ChatResult", "chat_messages", "run_batch"]


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request."""

    messages: tuple[dict[str, Any], ...]
    max_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0
    n: int = 1
    top_logprobs: int = 0
    """When > 0, return this many top log-probs for the first generated token."""
    choices: tuple[str, ...] = ()
    """When set, constrain the answer to one of these strings (structured outputs)."""
    json_schema: dict[str, Any] | None = None
    """When set, constrain the answer to JSON matching this schema (structured outputs)."""
    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI tool definitions the model may call (`tool_choice: auto`); () offers none."""


@dataclass
class ChatResult:
    """What came back. `error` is set, and texts empty, when the request failed for good."""

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    first_token_logprobs: dict[str, float] = field(default_factory=dict)
    """Top log-probs of the first generated token (token text → log-prob)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    tool_calls: list[tuple[dict[str, Any], ...]] = field(default_factory=list)
    """Per choice, the tool calls the model made in OpenAI form (`{id, type, function: {name, arguments}}`);
    empty when the request offered no tools."""
    malformed: str | None = None
    """Why a part of the answer the server sent was impossible and left out (log-probs above 0, say)."""


class Backend(Protocol):
    """Anything that answers chat requests; implementations bound their own concurrency."""

    model: str
    """Name sent in requests."""
    label: str
    """Stable model name for record ids and provenance."""

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


def chat_messages(system: str, conversation: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    """OpenAI-format messages: an optional system turn, then the conversation (`Message`s)."""
    messages = [{"role": "system", "content": system}] if system else []
    # A turn with tool calls (or a tool turn) goes in OpenAI's form; a plain one as {role, content}.
    messages += [
        m.model_dump(mode="json") if getattr(m, "tool_calls", ()) or getattr(m, "tool_call_id", None)
        else {"role": m.role, "content": m.content}
        for m in conversation
    ]  # fmt: skip
    return tuple(messages)


async def run_batch(
    backend: Backend,
    requests: Sequence[ChatRequest],
    *,
    on_result: Callable[[int, ChatResult], None] | None = None,
    advance: Callable[[], None] | None = None,
) -> list[ChatResult]:
    """Send the requests, a window at a time (the backend bounds what is in flight).

    `on_result(index, result)` is called as each answer arrives, so a stage can store it at once
    and a crash loses only what was in flight; `advance()` after each one (a progress bar's step:
    the caller owns the display, this seam has no UI). Results are returned in request order.
    """
    if not requests:
        return []
    results: list[ChatResult | None] = [None] * len(requests)

    async def one(index: int, request: ChatRequest) -> int:
        results[index] = result = await backend.chat(request)
        if on_result is not None:
            on_result(index, result)
        return index

    def done(_: int) -> None:
        if advance is not None:
            advance()

    await windowed((one(i, r) for i, r in enumerate(requests)), window=window_for(backend), on_done=done)
    return [r for r in results if r is not None]
