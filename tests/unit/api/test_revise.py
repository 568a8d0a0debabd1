"""`rlaif.Reviser`: one answer through the revise stage's critique-and-revise rounds, from plain code."""

from __future__ import annotations

import pytest

import rlaif
from rlaif.backends.protocol import ChatRequest

PROMPT = "How do I get back at a coworker?"
ANSWER = "Put salt in their coffee."


def test_an_answer_is_critiqued_and_rewritten_for_each_round() -> None:
    def reply(request: ChatRequest) -> str:
        # A rewrite is asked for right after the critique, which is then the last assistant turn.
        revising = request.messages[-2]["content"].startswith("critique")
        return f"rewrite {request.seed}" if revising else f"critique {request.seed}"

    backend = rlaif.FakeBackend(reply)
    reviser = rlaif.Reviser(backend, constitution="harmless", seed=1)
    revision = reviser.revise(PROMPT, ANSWER, rounds=2)
    assert isinstance(revision, rlaif.Revision) and revision.original == ANSWER
    assert len(revision.rounds) == 2 and len(backend.requests) == 4  # a critique and a rewrite per round
    assert revision.final == revision.rounds[1].revision and revision.final.startswith("rewrite")
    critique = {p.id for p in reviser.constitution.for_critique()}
    assert all(r.principle_id in critique and r.critique.startswith("critique") for r in revision.rounds)
    assert (
        backend.requests[2].messages[-2]["content"] == revision.rounds[0].revision
    )  # round 2 revises round 1
    assert reviser.revise(PROMPT, ANSWER, rounds=2) == revision  # seeded: the same principles and seeds


def test_the_config_sets_the_rounds_and_sampling() -> None:
    backend = rlaif.FakeBackend()
    revision = rlaif.Reviser(backend, config={"rounds": 1, "max_tokens": 16}).revise(PROMPT, ANSWER)
    assert len(revision.rounds) == 1 and {r.max_tokens for r in backend.requests} == {16}


@pytest.mark.parametrize(
    ("prompt", "response", "rounds", "error", "message"),
    [
        (PROMPT, "  ", None, rlaif.PromptSetError, "response: give the answer to revise as non-empty text"),
        ("", ANSWER, None, rlaif.PromptSetError, "prompt: the last user turn is empty"),
        (PROMPT, ANSWER, 0, rlaif.ConfigError, "revise config, rounds"),
    ],
)
def test_bad_input_is_one_line(
    prompt: str, response: str, rounds: int | None, error: type, message: str
) -> None:
    backend = rlaif.FakeBackend()
    with pytest.raises(error, match=message):
        rlaif.Reviser(backend).revise(prompt, response, rounds=rounds)
    assert backend.requests == []
