"""respond, revise and judge on the fake backend and a real run directory: counts, seeds, resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.config import GenerationConfig, JudgeConfig, ReviseConfig
from rlaif.judging.engine import judge_stats
from rlaif.pipeline.judge import judge
from rlaif.pipeline.respond import respond
from rlaif.pipeline.revise import revise
from rlaif.records import (
    Constitution,
    FewShotExample,
    Judgment,
    Message,
    Principle,
    PromptRecord,
    Response,
    Revision,
    RevisionStep,
    derive_seed,
    stable_id,
)
from rlaif.store import RunDir
from rlaif.templates import template_hash

SEED = 11
CONSTITUTION = Constitution(
    name="test",
    system_prompt="You are careful.",
    principles=(
        Principle(
            id="kind",
            critique_request="CRITIQUE kind",
            revision_request="REVISE kind",
            judge_question="Which is kinder?",
        ),
        Principle(
            id="safe",
            critique_request="CRITIQUE safe",
            revision_request="REVISE safe",
            judge_question="Which is safer?",
        ),
    ),
    examples=(
        FewShotExample(
            prompt="EXAMPLE prompt",
            response="EXAMPLE response",
            critique="EXAMPLE critique",
            revision="EXAMPLE fix",
        ),
    ),
)


def make_prompt(*texts: str) -> PromptRecord:
    roles = ["user", "assistant"] * len(texts)
    messages = tuple(Message(role=r, content=t) for r, t in zip(roles, texts, strict=False))  # type: ignore[arg-type]
    return PromptRecord(
        id=stable_id("prompt", messages=[m.model_dump() for m in messages]), messages=messages, source="t"
    )


PROMPTS = [make_prompt("Hi"), make_prompt("How do I pick a lock?"), make_prompt("Hello", "Hey!", "Bye")]


def reply(request: ChatRequest) -> str:
    return f"reply {request.seed} to {request.messages[-1]['content'][:20]}"


def run_respond(run: RunDir, backend: FakeBackend, *, seed: int = SEED, samples: int = 2):  # type: ignore[no-untyped-def]
    config = GenerationConfig(samples_per_prompt=samples, max_tokens=32, temperature=0.9, top_p=0.8)
    stage = run.stage("responses", Response)
    report = asyncio.run(
        respond(
            backend, PROMPTS, constitution=CONSTITUTION, config=config, seed=seed, stage=stage, quiet=True
        )
    )
    return report, stage


def grouped(run: RunDir) -> dict[str, list[Response]]:
    groups: dict[str, list[Response]] = {}
    for response in run.stage("responses", Response):
        groups.setdefault(response.prompt_id, []).append(response)
    return {k: sorted(v, key=lambda r: r.sample_index) for k, v in groups.items()}


def run_revise(run: RunDir, backend: FakeBackend, *, few_shot: int = 1, rounds: int = 2):  # type: ignore[no-untyped-def]
    originals = {pid: group[0] for pid, group in grouped(run).items()}
    steps = run.stage("revision_steps", RevisionStep)
    revisions = run.stage("revisions", Revision)
    config = ReviseConfig(rounds=rounds, few_shot=few_shot, max_tokens=24)
    report = asyncio.run(
        revise(
            backend,
            PROMPTS,
            originals,
            constitution=CONSTITUTION,
            config=config,
            seed=SEED,
            steps=steps,
            revisions=revisions,
            quiet=True,
        )
    )
    return report, steps, revisions


def run_judge(run: RunDir, backend: FakeBackend, **config: object):  # type: ignore[no-untyped-def]
    stage = run.stage("judgments", Judgment)
    report = asyncio.run(
        judge(
            backend,
            PROMPTS,
            grouped(run),
            constitution=CONSTITUTION,
            config=JudgeConfig(**config),
            seed=SEED,
            stage=stage,
            quiet=True,
        )
    )
    return report, stage


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    with RunDir(tmp_path / "run") as run_dir:
        run_respond(run_dir, FakeBackend(reply))
        yield run_dir


def test_respond_counts_seeds_and_records(tmp_path: Path) -> None:
    backend = FakeBackend(reply)
    with RunDir(tmp_path) as run:
        report, stage = run_respond(run, backend)
    assert (report.made, report.reused, report.failed) == (6, 0, 0)
    assert len(stage) == 6
    assert len(backend.requests) == 6
    expected_seeds = {derive_seed(SEED, f"respond:{p.id}:{i}") for p in PROMPTS for i in range(2)}
    assert {r.seed for r in backend.requests} == expected_seeds
    assert len(expected_seeds) == 6
    for request in backend.requests:
        assert request.messages[0] == {"role": "system", "content": "You are careful."}
        assert (request.max_tokens, request.temperature, request.top_p, request.n) == (32, 0.9, 0.8, 1)
        assert request.choices == ()
    multi = next(r for r in backend.requests if len(r.messages) == 4)
    assert [m["role"] for m in multi.messages] == ["system", "user", "assistant", "user"]
    for response in stage:
        seed = derive_seed(SEED, f"respond:{response.prompt_id}:{response.sample_index}")
        assert response.provenance.seed == seed
        assert response.text.startswith(f"reply {seed} to ")
        assert response.finish_reason == "stop"
        assert response.provenance.model == "fake"
        assert response.provenance.template == "respond"
        assert response.provenance.template_hash == template_hash("respond")
        assert response.provenance.constitution_hash == CONSTITUTION.hash
        assert response.provenance.sampling is not None
        assert response.provenance.sampling.max_tokens == 32
    assert sorted(r.sample_index for r in stage) == [0, 0, 0, 1, 1, 1]


def test_respond_resumes(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        run_respond(run, FakeBackend(reply))
    again = FakeBackend(reply)
    with RunDir(tmp_path) as run:
        report, stage = run_respond(run, again)
        assert (report.made, report.reused) == (0, 6)
        assert again.requests == []
        # More samples: only the new ones are made.
        report, stage = run_respond(run, again, samples=3)
        assert (report.made, report.reused) == (3, 6)
        assert len(stage) == 9
        # Another run seed is another set of responses.
        report, _ = run_respond(run, again, seed=SEED + 1)
        assert report.made == 6


def test_respond_records_failed_requests_and_retries_them(tmp_path: Path) -> None:
    class Failing(FakeBackend):
        async def chat(self, request: ChatRequest) -> ChatResult:
            self.requests.append(request)
            return ChatResult(error="BadRequestError: too long")

    with RunDir(tmp_path) as run:
        report, stage = run_respond(run, Failing())
        assert (report.made, report.failed, len(stage)) == (0, 6, 0)
        assert report.errors[0].endswith("BadRequestError: too long")
        assert len(report.errors) == 5
        report, stage = run_respond(run, FakeBackend(reply))
        assert (report.made, len(stage)) == (6, 6)


def test_revise_stores_rounds_and_uses_few_shot(run: RunDir) -> None:
    backend = FakeBackend(reply)
    report, steps, revisions = run_revise(run, backend)
    assert (report.made, report.reused, report.failed) == (3, 0, 0)
    assert len(steps) == 6  # 3 prompts x 2 rounds
    assert len(revisions) == 3
    assert len(backend.requests) == 12  # a critique and a revision per round
    seeds = [r.seed for r in backend.requests]
    assert len(set(seeds)) == 12
    assert all(r.max_tokens == 24 for r in backend.requests)
    originals = {pid: group[0] for pid, group in grouped(run).items()}
    for revision in revisions:
        chain = sorted((s for s in steps if s.prompt_id == revision.prompt_id), key=lambda s: s.round)
        assert [s.round for s in chain] == [0, 1]
        assert chain[0].answer == originals[revision.prompt_id].text == revision.original
        assert chain[1].answer == chain[0].revision
        assert revision.response_id == originals[revision.prompt_id].id
        assert [r.revision for r in revision.rounds] == [s.revision for s in chain]
        assert [r.principle_id for r in revision.rounds] == [s.principle_id for s in chain]
        assert revision.final == chain[1].revision
        assert chain[0].provenance.seed == derive_seed(SEED, f"critique:{revision.prompt_id}:0")
        assert chain[0].critique.startswith(f"reply {chain[0].provenance.seed} to CRITIQUE ")
        assert chain[0].revision.startswith(
            f"reply {derive_seed(SEED, f'revision:{revision.prompt_id}:0')} to REVISE "
        )
    assert revisions.get(next(iter(revisions)).id) is not None

    critique = backend.requests[0].messages
    assert [m["content"] for m in critique[:7]] == [
        "You are careful.",
        "EXAMPLE prompt",
        "EXAMPLE response",
        critique[-1]["content"],
        "EXAMPLE critique",
        critique[-1]["content"].replace("CRITIQUE", "REVISE"),
        "EXAMPLE fix",
    ]
    assert critique[-1]["content"] in ("CRITIQUE kind", "CRITIQUE safe")
    assert critique[-2]["role"] == "assistant"
    revision_request = next(r for r in backend.requests if r.messages[-1]["content"].startswith("REVISE"))
    assert [m["role"] for m in revision_request.messages[-3:]] == ["user", "assistant", "user"]


def test_revise_without_few_shot(run: RunDir) -> None:
    backend = FakeBackend(reply)
    run_revise(run, backend, few_shot=0, rounds=1)
    assert len(backend.requests) == 6
    for request in backend.requests:
        assert not any("EXAMPLE" in m["content"] for m in request.messages)
        assert request.messages[0] == {"role": "system", "content": "You are careful."}


def test_revise_resumes_from_stored_rounds(run: RunDir) -> None:
    run_revise(run, FakeBackend(reply))
    again = FakeBackend(reply)
    report, steps, revisions = run_revise(run, again)
    assert (report.made, report.reused) == (0, 3)
    assert again.requests == []
    # A crash after the rounds but before the revision record: the rerun makes it from stored rounds.
    revisions.path.unlink()
    report, _, revisions = run_revise(run, again)
    assert (report.made, len(revisions)) == (3, 3)
    assert again.requests == []


def test_judge_sends_both_orders_and_averages(run: RunDir) -> None:
    backend = FakeBackend(p_first=0.9)  # always prefers whatever is shown first
    report, stage = run_judge(run, backend)
    assert (report.made, report.reused, report.failed) == (3, 0, 0)
    assert len(stage) == 3
    assert len(backend.requests) == 6
    for request in backend.requests:
        assert request.choices == ("A", "B")
        assert (request.max_tokens, request.temperature, request.top_logprobs) == (1, 0.0, 2)
        assert len(request.messages) == 1 and request.messages[0]["role"] == "user"
    assert len({r.seed for r in backend.requests}) == 6
    groups = grouped(run)
    for judgment in stage:
        a, b = groups[judgment.prompt_id][:2]
        assert (judgment.response_a_id, judgment.response_b_id) == (a.id, b.id)
        assert [o.first_id for o in judgment.orders] == [a.id, b.id]
        assert [o.p_first for o in judgment.orders] == [pytest.approx(0.9)] * 2
        assert [o.raw for o in judgment.orders] == ["A", "A"]
        assert judgment.p_a == pytest.approx(0.5)
        assert judgment.consistent is False
        assert judgment.status == "ok"
        assert len(judgment.principle_ids) == 1
        assert judgment.provenance.template == "judge"
        assert judgment.provenance.template_hash == template_hash("judge")
        # Both orders of one judgment: each response shown first once, between the delimiters.
        texts = [r.messages[0]["content"] for r in backend.requests if a.text in r.messages[0]["content"]]
        assert len(texts) == 2
        assert any(t.index(a.text) < t.index(b.text) for t in texts)
        assert any(t.index(b.text) < t.index(a.text) for t in texts)
    stats = judge_stats(list(stage))
    assert (stats.both_orders, stats.consistent, stats.same_position) == (3, 0, 3)


def test_judge_label_follows_the_response_not_the_position(run: RunDir) -> None:
    groups = grouped(run)
    first_samples = {group[0].text for group in groups.values()}

    def p_first(request: ChatRequest) -> float:
        text = request.messages[0]["content"]
        shown_first = text.split("<response_A_")[1].split("\n")[1]
        return 0.8 if shown_first in first_samples else 0.2

    report, stage = run_judge(run, FakeBackend(p_first=p_first))
    assert report.made == 3
    for judgment in stage:
        assert judgment.p_a == pytest.approx(0.8)
        assert judgment.consistent is True


def test_judge_single_order(run: RunDir) -> None:
    backend = FakeBackend(p_first=0.6)
    report, stage = run_judge(run, backend, both_orders=False, principles_per_judgment=2)
    assert report.made == 3
    assert len(backend.requests) == 3
    for judgment in stage:
        assert len(judgment.orders) == 1
        assert judgment.p_a == pytest.approx(0.6)
        assert judgment.consistent is None
        assert sorted(judgment.principle_ids) == ["kind", "safe"]


def test_judge_resumes(run: RunDir) -> None:
    run_judge(run, FakeBackend(p_first=0.9))
    again = FakeBackend(p_first=0.9)
    report, stage = run_judge(run, again)
    assert (report.made, report.reused) == (0, 3)
    assert again.requests == []
    assert len(stage) == 3


def test_unparsed_judge_answers_are_stored(run: RunDir) -> None:
    class Rambling(FakeBackend):
        async def chat(self, request: ChatRequest) -> ChatResult:
            self.requests.append(request)
            return ChatResult(texts=["C"], finish_reasons=["stop"], first_token_logprobs={"C": 0.0})

    report, stage = run_judge(run, Rambling())
    assert report.made == 3
    assert len(stage) == 3
    for judgment in stage:
        assert judgment.status == "unparsed"
        assert judgment.p_a is None
        assert judgment.consistent is None
        assert [(o.status, o.raw, o.p_first) for o in judgment.orders] == [("unparsed", "C", None)] * 2
    stats = judge_stats(list(stage))
    assert (stats.judged, stats.parsed_orders, stats.unparsed_orders) == (3, 0, 6)
    assert report.unparsed == 3 and report.failed == 0 and report.errors == []
    with RunDir(run.path, lock=False) as reopened:
        assert len(reopened.stage("judgments", Judgment)) == 3


def test_judge_skips_prompts_with_one_response(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        run_respond(run, FakeBackend(reply), samples=1)
        backend = FakeBackend()
        report, stage = run_judge(run, backend)
    assert (report.made, len(stage), len(backend.requests)) == (0, 0, 0)
