"""A deterministic in-process backend for unit tests of pure logic. Never the only test of a stage."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from rlaif.backends.protocol import ChatRequest, ChatResult

__all__ = ["FakeBackend"]


class FakeBackend:
    """Answers from a function of the request, or a canned echo; judge requests get fixed log-probs.

    Args:
        reply: Maps a request to the text answered (default: a short echo keyed by the seed).
        p_first: For constrained A/B requests, P("A") (or a function of the request).
    """

    def __init__(
        self,
        reply: Callable[[ChatRequest], str] | None = None,
        *,
        p_first: float | Callable[[ChatRequest], float] = 0.7,
        model: str = "fake",
    ):
        self.model = model
        self.label = model
        self.reply = reply or _echo
        self.p_first = p_first
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        if request.choices:
            p = self.p_first(request) if callable(self.p_first) else self.p_first
            logprobs = {"A": math.log(max(p, 1e-12)), "B": math.log(max(1 - p, 1e-12))}
            return ChatResult(
                texts=["A" if p >= 0.5 else "B"], finish_reasons=["stop"], first_token_logprobs=logprobs
            )
        texts = [self.reply(request) for _ in range(request.n)]
        return ChatResult(texts=texts, finish_reasons=["stop"] * request.n, completion_tokens=8 * request.n)

    async def aclose(self) -> None:
        pass


def _echo(request: ChatRequest) -> str:
    last = request.messages[-1]["content"]
    tag = hashlib.sha256(f"{request.seed}:{last}".encode()).hexdigest()[:6]
    return f"answer {tag} to: {last[:40]}"
