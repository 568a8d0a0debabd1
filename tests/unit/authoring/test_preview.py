"""`rlaif constitution preview` renders what the pipeline sends: the same messages, split into parts."""

from __future__ import annotations

from rlaif.authoring.preview import SAMPLE_ANSWERS, SAMPLE_CONVERSATION, load_counter, preview_principle
from rlaif.config import JudgeConfig, ReviseConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.judging.modes import Asker, judge_nonce, judge_prompt
from rlaif.pipeline.revise import critique_conversation, revision_turns
from rlaif.records import PromptRecord

CONCISE = load_constitution(find_constitution("concise-plain"))


def test_the_preview_is_the_pipeline_s_own_messages() -> None:
    principle = CONCISE.principle("concise")
    report = preview_principle(
        CONCISE, "concise", revise=ReviseConfig(), judge=JudgeConfig(), seed=5,
        counter=load_counter("estimate"), max_context=2048,
    )  # fmt: skip
    critique, revision, first, second = report.requests
    prompt = PromptRecord(id="preview", messages=SAMPLE_CONVERSATION)
    expected = critique_conversation(prompt, SAMPLE_ANSWERS[0], principle, CONCISE, ReviseConfig().few_shot)
    assert critique.messages == expected
    assert revision.messages == expected + revision_turns("[the critique the model writes]", principle)
    text = judge_prompt(SAMPLE_CONVERSATION, (principle,), *SAMPLE_ANSWERS, judge_nonce(5)).text
    assert first.messages == list(Asker.ask(text))
    assert [p.label for p in critique.parts] == [
        "system prompt", "few-shot example 1", "conversation", "answer", "critique request"
    ]  # fmt: skip
    assert sum(len(p.text) > 0 for p in critique.parts) == len(critique.parts)
    assert first.cached_prefix_tokens is None and second.cached_prefix_tokens is not None
    assert 0 < second.cached_share < 1  # type: ignore[operator]
    assert any("estimated" in note for note in report.notes)


def test_a_judge_only_principle_has_only_judge_requests() -> None:
    harmless = load_constitution(find_constitution("harmless"))
    judge_only = harmless.model_copy(
        update={"principles": (harmless.principles[0].model_copy(update={"critique_request": None,
                                                                         "revision_request": None}),)}
    )  # fmt: skip
    report = preview_principle(
        judge_only, harmless.principles[0].id, revise=ReviseConfig(), judge=JudgeConfig(), seed=0,
        counter=load_counter("estimate"), max_context=2048,
    )  # fmt: skip
    assert [r.name for r in report.requests] == ["judge (A first)", "judge (B first)"]


def test_the_rubric_preview_renders_the_stage_s_requests_and_asks_a_server_for_items() -> None:
    import json

    from rlaif.authoring.preview import ITEM_PLACEHOLDER, write_rubric
    from rlaif.backends.fake import FakeBackend
    from rlaif.judging.rubric import RubricAsker

    principle = CONCISE.for_judging()[0]
    judge = JudgeConfig(rubric_items=2)
    report = preview_principle(
        CONCISE, principle.id, revise=ReviseConfig(), judge=judge, seed=3, counter=load_counter("estimate"),
        max_context=2048, rubric=True,
    )  # fmt: skip
    names = [r.name for r in report.requests]
    assert names[-2:] == ["rubric items", "rubric score (answer A, one item)"]
    asker = RubricAsker(FakeBackend(), 2, 3, judge_nonce(3))
    assert report.requests[-2].messages == list(
        asker.write_request(SAMPLE_CONVERSATION, principle, "x").messages
    )
    scored = asker.score_request(SAMPLE_CONVERSATION, ITEM_PLACEHOLDER, SAMPLE_ANSWERS[0], "x")
    assert report.requests[-1].messages == list(scored.messages)

    import asyncio

    backend = FakeBackend(lambda request: json.dumps(["Is calm.", "is calm", "Names a next step."]))
    written = asyncio.run(
        write_rubric(backend, CONCISE, principle, judge=JudgeConfig(rubric_items=3), seed=3)
    )
    assert (written.status, written.items, written.duplicates) == (
        "ok",
        ["Is calm.", "Names a next step."],
        1,
    )
    prose = asyncio.run(
        write_rubric(FakeBackend(lambda r: "Be calm."), CONCISE, principle, judge=judge, seed=3)
    )
    assert (prose.status, prose.items, prose.raw) == ("unparsed", [], "Be calm.")
