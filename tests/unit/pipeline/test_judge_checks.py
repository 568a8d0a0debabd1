"""The judge stage with checks: exact labels where outcomes differ, probes of the LLM, contrast pairs."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.config import JudgeConfig
from rlaif.pipeline.judge import judge
from rlaif.pipeline.pairs import pairs_from_judgments
from rlaif.records import (
    Check,
    Constitution,
    Judgment,
    Message,
    Principle,
    PromptRecord,
    Provenance,
    Response,
)
from rlaif.store import RunDir

SHORT = Principle(
    id="short", critique_request="c", revision_request="r", judge_question="Which is shorter?",
    check=Check(min_words=2, max_words=6),
)  # fmt: skip
NO_LINKS = Principle(
    id="no-links", critique_request="c", revision_request="r", judge_question="Which has no link?",
    check=Check(must_not_match=r"https?://"),
)  # fmt: skip
HELPFUL = Principle(id="helpful", critique_request="c", revision_request="r", judge_question="Which helps?")
PROMPT = PromptRecord(id="p1", messages=(Message(role="user", content="How do I boil an egg?"),))
PROVENANCE = Provenance(model="fake", template="respond", template_hash="h")
TEXTS = [
    "Boil it nine minutes.",  # short, no link
    "Boil it nine minutes, see https://eggs.example for the long and detailed reasons why.",  # long, link
    "Nine minutes, https://e.x",  # short, link
    "Put the egg in boiling water and wait nine minutes before you cool it down.",  # long, no link
]
RESPONSES = [
    Response(id=f"r{i}", prompt_id="p1", sample_index=i, text=text, provenance=PROVENANCE)
    for i, text in enumerate(TEXTS)
]


def run_judge(
    tmp_path: Path, constitution: Constitution, backend: FakeBackend, **config: object
) -> list[Judgment]:
    with RunDir(tmp_path / "run") as run:
        stage = run.stage("judgments", Judgment)
        settings = JudgeConfig(**config)  # type: ignore[arg-type]
        asyncio.run(
            judge(backend, [PROMPT], {"p1": RESPONSES}, constitution=constitution, config=settings, seed=3,
                  stage=stage, quiet=True)
        )  # fmt: skip
        return list(stage)


def shown_first(request: ChatRequest) -> str:
    found = re.search(r"<response_A_\w+>\n(.*?)\n</response_A", request.messages[0]["content"], re.S)
    assert found is not None
    return found.group(1)


def test_exact_labels_differing_outcomes_without_a_request(tmp_path: Path) -> None:
    constitution = Constitution(name="c", principles=(SHORT, NO_LINKS))
    backend = FakeBackend(p_first=0.5)
    judgments = run_judge(tmp_path, constitution, backend, checks="exact")
    assert backend.requests == []
    assert all(j.source == "check" and j.orders == () for j in judgments)
    sampled = next(j for j in judgments if j.kind == "sampled")
    assert (sampled.response_a_id, sampled.response_b_id, sampled.p_a) == ("r0", "r1", 1.0)
    # One contrast per checkable principle: a passing and a failing sample that agree on the other check.
    contrasts = {
        j.principle_ids: (j.response_a_id, j.response_b_id, j.p_a) for j in judgments if j.kind == "contrast"
    }
    assert contrasts == {("short",): ("r0", "r3", 1.0), ("no-links",): ("r0", "r2", 1.0)}
    short = next(j for j in judgments if j.principle_ids == ("short",) and j.kind == "contrast")
    assert [o.passed for o in short.checks["r0"]] == [True]
    assert [o.passed for o in short.checks["r3"]] == [False]
    responses = {r.id: r for r in RESPONSES}
    pairs = list(pairs_from_judgments(judgments, responses, {"p1": PROMPT}, JudgeConfig(), Counter()))
    assert {p.source for p in pairs} == {"check"} and all(p.score == 1.0 for p in pairs) and len(pairs) == 3


def test_probe_asks_the_llm_too_and_records_its_agreement(tmp_path: Path) -> None:
    constitution = Constitution(name="c", principles=(SHORT,))

    def prefers_shorter(request: ChatRequest) -> float:
        first = shown_first(request)
        return 0.9 if first in (TEXTS[0], TEXTS[2]) else 0.1

    backend = FakeBackend(p_first=prefers_shorter)
    (judgment,) = run_judge(tmp_path, constitution, backend, checks="probe")
    assert len(backend.requests) == 2  # both orders of the one sampled pair
    assert judgment.source == "check" and judgment.p_a == 1.0
    assert judgment.llm_agrees is True and judgment.llm_p_a is not None and judgment.llm_p_a > 0.5


def test_the_llm_judges_where_the_checks_cannot_decide(tmp_path: Path) -> None:
    constitution = Constitution(name="c", principles=(HELPFUL,))
    backend = FakeBackend(p_first=0.8)
    (judgment,) = run_judge(tmp_path, constitution, backend, checks="exact")
    assert judgment.source == "llm" and len(backend.requests) == 2 and judgment.checks == {}
    # A checkable principle on which both responses pass: no decision either.
    same = [Response(id=f"s{i}", prompt_id="p1", sample_index=i, text=t, provenance=PROVENANCE)
            for i, t in enumerate(["Boil it nine minutes.", "Nine minutes in boiling water."])]  # fmt: skip
    with RunDir(tmp_path / "run2") as run:
        stage = run.stage("judgments", Judgment)
        one = Constitution(name="c", principles=(SHORT,))
        asyncio.run(
            judge(FakeBackend(p_first=0.8), [PROMPT], {"p1": same}, constitution=one,
                  config=JudgeConfig(checks="exact"), seed=3, stage=stage, quiet=True)
        )  # fmt: skip
        (judgment,) = list(stage)
    assert judgment.source == "llm" and all(o.passed for outs in judgment.checks.values() for o in outs)


def test_checks_off_is_the_llm_everywhere(tmp_path: Path) -> None:
    constitution = Constitution(name="c", principles=(SHORT, NO_LINKS))
    backend = FakeBackend(p_first=0.8)
    judgments = run_judge(tmp_path, constitution, backend, checks="off")
    assert [j.kind for j in judgments] == ["sampled"] and judgments[0].source == "llm"


def test_a_rerun_resumes_every_kind(tmp_path: Path) -> None:
    constitution = Constitution(name="c", principles=(SHORT, NO_LINKS))
    first = run_judge(tmp_path, constitution, FakeBackend(p_first=0.5), checks="probe")
    backend = FakeBackend(p_first=0.5)
    again = run_judge(tmp_path, constitution, backend, checks="probe")
    assert backend.requests == [] and {j.id for j in again} == {j.id for j in first}
