"""Preference pairs from revisions and from judgments, with the skip counts the card reports."""

from __future__ import annotations

from collections import Counter

import pytest

from rlaif.config import JudgeConfig
from rlaif.pipeline.pairs import pairs_from_judgments, pairs_from_revisions
from rlaif.records import (
    CritiqueRound,
    Judgment,
    Message,
    OrderVerdict,
    PromptRecord,
    Provenance,
    Response,
    Revision,
)

PROVENANCE = Provenance(model="m", template="t", template_hash="h", constitution_hash="c")
PROMPT = PromptRecord(id="pro-1", messages=(Message(role="user", content="Help me."),))
PROMPTS = {PROMPT.id: PROMPT}


def revision(rid: str, original: str, *revisions: str) -> Revision:
    return Revision(
        id=rid,
        prompt_id=PROMPT.id,
        response_id="res-a",
        original=original,
        rounds=tuple(
            CritiqueRound(principle_id=f"p{i}", critique="c", revision=text)
            for i, text in enumerate(revisions)
        ),
        provenance=PROVENANCE,
    )


def response(rid: str, text: str) -> Response:
    return Response(id=rid, prompt_id=PROMPT.id, sample_index=0, text=text, provenance=PROVENANCE)


RESPONSES = {
    "res-a": response("res-a", "Answer A"),
    "res-b": response("res-b", "Answer B"),
    "res-c": response("res-c", " Answer A "),
}


def judgment(
    jid: str, p_a: float | None, consistent: bool | None = True, b: str = "res-b", status: str = "ok"
) -> Judgment:
    return Judgment(
        id=jid,
        prompt_id=PROMPT.id,
        response_a_id="res-a",
        response_b_id=b,
        principle_ids=("harm", "honesty"),
        orders=(OrderVerdict(first_id="res-a", p_first=p_a, status="ok", raw="A"),),
        p_a=p_a,
        consistent=consistent,
        status=status,  # type: ignore[arg-type]
        provenance=PROVENANCE,
    )


def from_judgments(*judgments: Judgment, **config: object) -> tuple[list, Counter[str]]:
    skipped: Counter[str] = Counter()
    pairs = list(pairs_from_judgments(judgments, RESPONSES, PROMPTS, JudgeConfig(**config), skipped))
    return pairs, skipped


def test_pairs_from_revisions() -> None:
    skipped: Counter[str] = Counter()
    revisions = [
        revision("rev-1", "Bad answer.", "Better.", "Best."),
        revision("rev-2", "Same.", " Same. "),  # unchanged after strip
        revision("rev-3", "Kept.", "", ""),  # every rewrite empty: final is the original
        revision("rev-4", "Fine.", "Rewritten.", ""),  # a later empty rewrite keeps the earlier one
    ]
    pairs = list(pairs_from_revisions(revisions, PROMPTS, skipped))
    assert skipped == Counter({"revision unchanged or empty": 2})
    assert [(p.source_id, p.chosen, p.rejected) for p in pairs] == [
        ("rev-1", "Best.", "Bad answer."),
        ("rev-4", "Rewritten.", "Fine."),
    ]
    first = pairs[0]
    assert first.score == 1.0
    assert first.source == "revision"
    assert first.prompt == PROMPT.messages
    assert first.prompt_id == PROMPT.id
    assert first.principle_ids == ("p0", "p1")
    assert first.consistent is None
    assert first.provenance == PROVENANCE
    assert first.id.startswith("pai-")
    assert next(pairs_from_revisions(revisions, PROMPTS, Counter())).id == first.id


def test_judge_pair_when_a_wins() -> None:
    (pair,), skipped = from_judgments(judgment("jud-1", 0.8))
    assert not skipped
    assert (pair.chosen, pair.rejected) == ("Answer A", "Answer B")
    assert pair.score == pytest.approx(0.8)
    assert pair.source == "judge"
    assert pair.source_id == "jud-1"
    assert pair.principle_ids == ("harm", "honesty")
    assert pair.consistent is True
    assert pair.prompt == PROMPT.messages


def test_judge_pair_when_b_wins() -> None:
    (pair,), _ = from_judgments(judgment("jud-1", 0.3))
    assert (pair.chosen, pair.rejected) == ("Answer B", "Answer A")
    assert pair.score == pytest.approx(0.7)


def test_judge_pair_ids_differ_by_direction() -> None:
    (a_wins,), _ = from_judgments(judgment("jud-1", 0.8))
    (b_wins,), _ = from_judgments(judgment("jud-1", 0.2))
    assert a_wins.id != b_wins.id


def test_inconsistent_pairs_are_made_for_the_filters_to_judge() -> None:
    """Dropping is the export filters' call: the candidate stays on record with its doubt."""
    for policy in ("keep", "drop"):
        (pair,), skipped = from_judgments(judgment("jud-1", 0.6, consistent=False), inconsistent=policy)
        assert pair.consistent is False and pair.score == pytest.approx(0.6) and not skipped
    pairs, skipped = from_judgments(judgment("jud-1", 0.6, consistent=False), inconsistent="tie")
    assert pairs == [] and skipped == Counter({"judge tie (orders disagree)": 1})


def test_ties_unparsed_and_identical_are_skipped_and_counted() -> None:
    pairs, skipped = from_judgments(
        judgment("jud-1", 0.5, consistent=False),
        judgment("jud-2", None, consistent=None, status="unparsed"),
        judgment("jud-3", None, consistent=None, status="unparsed"),
        judgment("jud-4", 0.9, b="res-c"),
        judgment("jud-5", 0.9),
    )
    assert [p.source_id for p in pairs] == ["jud-5"]
    assert skipped == Counter({"judge tie": 1, "judge unparsed": 2, "identical responses": 1})


def test_unsure_pairs_are_made_for_the_filters_to_judge() -> None:
    judgments = [judgment("jud-1", 0.7), judgment("jud-2", 0.25), judgment("jud-3", 0.6)]
    pairs, skipped = from_judgments(*judgments, min_confidence=0.75)
    assert [p.score for p in pairs] == [pytest.approx(0.7), pytest.approx(0.75), pytest.approx(0.6)]
    assert not skipped
