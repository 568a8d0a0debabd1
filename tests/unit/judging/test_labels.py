"""Soft-label arithmetic beyond one pair of orders: ensembles, clamping, pointwise scores, strict parsing."""

from __future__ import annotations

import pytest

from rlaif.judging.labels import (
    clamp,
    combine_orders,
    parse_score,
    parse_verdict,
    position_means,
    score_label,
)
from rlaif.records import OrderVerdict


def v(first_id: str, p_first: float | None, principles: tuple[str, ...] = ("p",)) -> OrderVerdict:
    status = "ok" if p_first is not None else "unparsed"
    return OrderVerdict(first_id=first_id, p_first=p_first, status=status, raw="A", principle_ids=principles)


def scored(response_id: str, score: float | None) -> OrderVerdict:
    status = "ok" if score is not None else "unparsed"
    return OrderVerdict(first_id=response_id, p_first=None, status=status, raw="{}", score=score)


def test_swap_turns_p_first_into_p_a() -> None:
    # Shown first, a gets P(first) = 0.9; shown second, P(first) = 0.2 is b's, so P(a) = 0.8.
    assert position_means([v("a", 0.9), v("b", 0.2)], "a") == (pytest.approx(0.9), pytest.approx(0.8))
    assert position_means([v("a", 0.9), v("b", 0.2)], "b") == (pytest.approx(0.2), pytest.approx(0.1))


def test_ensemble_average_over_members_and_orders() -> None:
    orders = [v("a", 0.9, ("kind",)), v("b", 0.3, ("kind",)), v("a", 0.6, ("safe",)), v("b", 0.5, ("safe",))]
    p_a, consistent, status = combine_orders(orders, "a")
    assert p_a == pytest.approx((0.9 + 0.7 + 0.6 + 0.5) / 4)
    # Consistency compares the positions' means: a first 0.75, a second 0.6 -> same side.
    assert consistent is True
    assert status == "ok"


def test_ensemble_consistency_is_per_position_not_per_member() -> None:
    # Every member prefers whatever is shown first: the positions disagree.
    orders = [v("a", 0.8, ("x",)), v("b", 0.8, ("x",)), v("a", 0.7, ("y",)), v("b", 0.9, ("y",))]
    p_a, consistent, _ = combine_orders(orders, "a")
    assert p_a == pytest.approx((0.8 + 0.2 + 0.7 + 0.1) / 4)
    assert consistent is False


def test_ensemble_with_an_unparsed_member_is_partial() -> None:
    orders = [v("a", 0.8, ("x",)), v("b", 0.4, ("x",)), v("a", None, ("y",)), v("b", None, ("y",))]
    p_a, consistent, status = combine_orders(orders, "a")
    assert p_a == pytest.approx(0.7)
    assert consistent is True
    assert status == "partial"


@pytest.mark.parametrize(
    ("p", "band", "expected"),
    [(0.95, (0.4, 0.6), 0.6), (0.02, (0.4, 0.6), 0.4), (0.55, (0.4, 0.6), 0.55), (0.95, None, 0.95)],
)
def test_clamp(p: float, band: tuple[float, float] | None, expected: float) -> None:
    assert clamp(p, band) == pytest.approx(expected)


def test_clamped_orders_average_inside_the_band() -> None:
    band = (0.4, 0.6)
    orders = [v("a", clamp(1.0, band)), v("b", clamp(0.0, band))]
    assert combine_orders(orders, "a")[0] == pytest.approx(0.6)


def test_score_label() -> None:
    assert score_label(10, 1) == pytest.approx(1.0)
    assert score_label(1, 10) == pytest.approx(0.0)
    assert score_label(7, 7) == pytest.approx(0.5)
    assert score_label(8, 3) == pytest.approx(0.5 + 5 / 18)


def test_pointwise_combine_uses_mean_scores() -> None:
    orders = [scored("a", 8), scored("b", 3), scored("a", 6), scored("b", 5)]
    assert combine_orders(orders, "a") == (pytest.approx(score_label(7, 4)), None, "ok")
    assert combine_orders(orders, "b")[0] == pytest.approx(score_label(4, 7))


def test_pointwise_without_both_scores_has_no_label() -> None:
    assert combine_orders([scored("a", 8), scored("b", None)], "a") == (None, None, "partial")
    assert combine_orders([scored("a", None), scored("b", None)], "a") == (None, None, "unparsed")


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("A is rude. B is polite.\nVerdict: B", "B"),
        ("Reasoning...\n**Verdict: A**", "A"),
        ("verdict: (A)", "A"),
        ("Verdict - Response B", "B"),
        ("Verdict: A\nOn reflection, still Verdict: A", "A"),
    ],
)
def test_parse_verdict_reads_one_letter(text: str, letter: str) -> None:
    assert parse_verdict(text) == letter


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Response A is better.",  # prose, no verdict line: never guessed
        "Verdict: A. Actually, Verdict: B",  # both letters
        "Verdict: neither",
        "Verdict: Absolutely the first",  # a word starting with A is not the letter A
    ],
)
def test_parse_verdict_refuses_to_guess(text: str) -> None:
    assert parse_verdict(text) is None


@pytest.mark.parametrize(
    ("text", "score"), [('{"score": 7}', 7), ('{\n  "score": 10\n}', 10), ('{"score": 1}', 1)]
)
def test_parse_score(text: str, score: int) -> None:
    assert parse_score(text) == score


@pytest.mark.parametrize(
    "text",
    [
        '{"score": 11}',
        '{"score": 0}',
        '{"score": 7.5}',
        '{"score": true}',
        '{"rating": 5}',
        "7",
        "nope",
        "[7]",
    ],
)
def test_parse_score_rejects(text: str) -> None:
    assert parse_score(text) is None
