"""Rubric arithmetic: strict parsing of item lists, P(yes), the item filter, scores, labels."""

from __future__ import annotations

import math

import pytest

from rlaif.config import JudgeConfig
from rlaif.errors import TemplateError
from rlaif.judging.rubric import (
    check_items_template,
    deciding_items,
    filter_items,
    mean_score,
    parse_items,
    rubric_label,
    rubric_principles,
    uses_rubric,
    weighted,
    yes_probability,
)
from rlaif.records import Principle
from rlaif.templates import Templates


def test_items_parse_only_from_a_json_list_of_1_to_k_strings() -> None:
    assert parse_items('["Names a colour.", "Is one sentence."]', 4) == (
        ("Names a colour.", "Is one sentence."),
        0,
    )
    # Repeats (case, spacing, a final full stop) are dropped and counted.
    assert parse_items('["Names a colour", "names  a colour.", "Is short"]', 3) == (
        ("Names a colour", "Is short"),
        1,
    )
    for bad in (
        "Names a colour.",  # prose
        '{"items": ["a"]}',  # not a list
        "[]",  # empty
        '["a", "b", "c"]',  # more than k
        '["a", 3]',  # not a string
        '["a", "  "]',  # blank
        '["a"',  # truncated
    ):
        assert parse_items(bad, 2) is None, bad


def test_yes_probability_sums_spellings_and_renormalises() -> None:
    p = yes_probability({"Yes": math.log(0.5), " yes": math.log(0.1), "No": math.log(0.2), "Maybe": 0.0})
    assert p == pytest.approx(0.6 / 0.8)
    assert yes_probability({"A": 0.0}) is None
    assert yes_probability({}) is None


def test_the_filter_drops_items_that_separate_nothing_or_rank_labelled_pairs_wrong() -> None:
    scores = {
        "r0": {"all-pass": 0.9, "all-fail": 0.1, "splits": 0.9, "backwards": 0.1, "once": 0.8},
        "r1": {"all-pass": 0.8, "all-fail": 0.2, "splits": 0.2, "backwards": 0.9, "once": None},
        "r2": {"all-pass": 0.7, "all-fail": 0.3, "splits": 0.3, "backwards": 0.8},
    }
    items = ["all-pass", "all-fail", "splits", "backwards", "once"]
    kept, dropped = filter_items(items, scores, labelled=[("r0", "r1"), ("r0", "r2")])
    assert kept == ["splits"]
    reasons = dict(dropped)
    assert reasons["all-pass"] == "every sampled answer passes (3)"
    assert reasons["all-fail"] == "every sampled answer fails (3)"
    assert reasons["backwards"] == "ranks 2 of 2 labelled pairs the wrong way"
    assert reasons["once"] == "scored on fewer than two answers"
    # Without labelled pairs the backwards item separates the answers and is kept.
    assert filter_items(items, scores)[0] == ["splits", "backwards"]


def test_scores_labels_and_the_items_that_decided() -> None:
    a = {"x": 0.9, "y": 0.6, "z": None}
    b = {"x": 0.1, "y": 0.8, "z": 0.5}
    assert mean_score(["x", "y", "z"], a) == pytest.approx(0.75)
    assert mean_score(["z"], a) is None
    assert weighted([(1.0, 3.0), (0.0, 1.0)]) == pytest.approx(0.75)
    assert weighted([]) is None
    assert rubric_label(1.0, 0.0) == 1.0 and rubric_label(0.0, 1.0) == 0.0 and rubric_label(0.4, 0.4) == 0.5
    assert rubric_label(0.75, 0.45) == pytest.approx(0.65)
    # x moved the label toward a (0.8), y against it: only x decided.
    assert deciding_items([("p", "x"), ("p", "y"), ("p", "z")], a, b) == ("p: x",)
    assert deciding_items([("p", "x")], {"x": 0.5}, {"x": 0.5}) == ()


def test_principles_opt_in_and_out_of_the_rubric() -> None:
    plain = Principle(id="plain", judge_question="Which helps?")
    always = Principle(id="always", judge_question="Which helps?", rubric=True)
    never = Principle(id="never", judge_question="Which helps?", rubric=False)
    off, on = JudgeConfig(), JudgeConfig(rubric="per_prompt")
    assert not uses_rubric(plain, off) and uses_rubric(plain, on)
    assert uses_rubric(always, off) and not uses_rubric(never, on)
    assert rubric_principles(((plain,), (always,)), on) == (plain, always)
    assert rubric_principles(((plain, never),), on) is None  # one verdict is one kind, never half of each
    # An unset `rubric` leaves a principle's dump (and the constitution's hash) as before.
    assert "rubric" not in plain.model_dump() and always.model_dump()["rubric"] is True


def test_k_out_of_range_and_a_template_that_asks_for_no_list_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="rubric_items"):
        JudgeConfig(rubric_items=0)
    with pytest.raises(ValueError, match="rubric_items"):
        JudgeConfig(rubric_items=13)
    check_items_template()  # the shipped one asks for a JSON list
    own = tmp_path / "items.jinja"
    own.write_text("Write {{ k }} requirements for {{ principle.id }} about {{ conversation }} {{ nonce }}.")
    with pytest.raises(TemplateError, match="must ask for a JSON list"):
        check_items_template(Templates(files={"rubric_items": own}))
