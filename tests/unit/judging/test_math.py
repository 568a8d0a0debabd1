"""The judge's arithmetic: option probabilities, one order's verdict, two orders combined, run stats."""

from __future__ import annotations

import math

import pytest

from rlaif.backends.protocol import ChatResult
from rlaif.judging.engine import judge_stats
from rlaif.judging.labels import combine_orders, option_probability
from rlaif.judging.modes import order_verdict
from rlaif.records import Judgment, OrderVerdict, Provenance

LN = math.log


def verdict(first_id: str, p_first: float | None) -> OrderVerdict:
    status = "ok" if p_first is not None else "unparsed"
    return OrderVerdict(first_id=first_id, p_first=p_first, status=status, raw="A" if p_first else "?")


def judgment(*orders: OrderVerdict) -> Judgment:
    p_a, consistent, status = combine_orders(orders, "a")
    return Judgment(
        id="jud-1",
        prompt_id="pro-1",
        response_a_id="a",
        response_b_id="b",
        principle_ids=("p",),
        orders=orders,
        p_a=p_a,
        consistent=consistent,
        status=status,  # type: ignore[arg-type]
        provenance=Provenance(model="m", template="judge", template_hash="h"),
    )


def test_option_probability_renormalises_over_a_and_b() -> None:
    assert option_probability({"A": LN(0.6), "B": LN(0.2)}) == pytest.approx(0.75)
    assert option_probability({"A": LN(0.1), "B": LN(0.3), "C": LN(0.5)}) == pytest.approx(0.25)
    assert option_probability({"A": LN(0.5)}) == pytest.approx(1.0)
    assert option_probability({"B": LN(0.5)}) == pytest.approx(0.0)


def test_option_probability_sums_spellings() -> None:
    logprobs = {"A": LN(0.3), " A": LN(0.2), "(A": LN(0.1), "B": LN(0.1), " B)": LN(0.05), "The": LN(0.2)}
    assert option_probability(logprobs) == pytest.approx(0.6 / 0.75)
    assert option_probability({"**A**": LN(0.4), "[B]": LN(0.1)}) == pytest.approx(0.8)


def test_option_probability_without_options_is_none() -> None:
    assert option_probability({}) is None
    assert option_probability({"C": LN(0.9), "The": LN(0.1)}) is None
    assert option_probability({"a": LN(0.9), "AB": LN(0.1)}) is None
    assert option_probability({"A": -math.inf, "B": -math.inf}) is None
    assert option_probability({"A": -math.inf, "B": LN(0.1)}) == 0.0


def test_order_verdict_ok() -> None:
    logprobs = {"A": LN(0.8), "B": LN(0.2)}
    result = ChatResult(texts=["A"], finish_reasons=["stop"], first_token_logprobs=logprobs)
    got = order_verdict(result, "res-1")
    assert got.status == "ok"
    assert got.first_id == "res-1"
    assert got.p_first == pytest.approx(0.8)
    assert got.raw == "A"
    assert got.logprobs == logprobs


@pytest.mark.parametrize("raw", ["C", "", "AB", "The answer is A"])
def test_order_verdict_unparsed_keeps_raw(raw: str) -> None:
    logprobs = {"A": LN(0.8), "B": LN(0.2)}
    result = ChatResult(texts=[raw], first_token_logprobs=logprobs)
    got = order_verdict(result, "res-1")
    assert got.status == "unparsed"
    assert got.p_first is None
    assert got.raw == raw
    assert got.logprobs == logprobs


def test_order_verdict_without_option_logprobs_is_unparsed() -> None:
    got = order_verdict(ChatResult(texts=["B"], first_token_logprobs={"C": LN(0.9)}), "res-1")
    assert (got.status, got.p_first, got.raw) == ("unparsed", None, "B")
    got = order_verdict(ChatResult(texts=[]), "res-1")
    assert (got.status, got.p_first, got.raw) == ("unparsed", None, "")


def test_order_verdict_error() -> None:
    got = order_verdict(ChatResult(error="HTTP 500: engine dead"), "res-1")
    assert (got.status, got.p_first, got.raw) == ("error", None, "HTTP 500: engine dead")


def test_combine_orders_undoes_the_swap() -> None:
    p_a, consistent, status = combine_orders([verdict("a", 0.8), verdict("b", 0.3)], "a")
    assert p_a == pytest.approx((0.8 + 0.7) / 2) == pytest.approx(0.75)
    assert consistent is True
    assert status == "ok"
    # Seen from b's side the same verdicts give the complement.
    p_b, _, _ = combine_orders([verdict("a", 0.8), verdict("b", 0.3)], "b")
    assert p_b == pytest.approx(0.25)


def test_combine_orders_disagreement() -> None:
    # Both orders prefer whatever is shown first: position bias, no preference left.
    p_a, consistent, status = combine_orders([verdict("a", 0.9), verdict("b", 0.9)], "a")
    assert p_a == pytest.approx(0.5)
    assert consistent is False
    assert status == "ok"
    p_a, consistent, _ = combine_orders([verdict("a", 0.6), verdict("b", 0.8)], "a")
    assert p_a == pytest.approx((0.6 + 0.2) / 2)
    assert consistent is False


def test_combine_orders_partial_uses_the_parsed_order() -> None:
    assert combine_orders([verdict("a", None), verdict("b", 0.3)], "a") == (
        pytest.approx(0.7),
        None,
        "partial",
    )
    assert combine_orders([verdict("a", 0.8), verdict("b", None)], "a") == (
        pytest.approx(0.8),
        None,
        "partial",
    )


def test_combine_orders_nothing_parsed() -> None:
    assert combine_orders([verdict("a", None), verdict("b", None)], "a") == (None, None, "unparsed")
    assert combine_orders([], "a") == (None, None, "unparsed")


def test_combine_single_order() -> None:
    assert combine_orders([verdict("a", 0.8)], "a") == (pytest.approx(0.8), None, "ok")


def test_judge_stats_rates() -> None:
    judgments = [
        judgment(verdict("a", 0.8), verdict("b", 0.3)),  # consistent
        judgment(verdict("a", 0.9), verdict("b", 0.9)),  # both prefer position 1
        judgment(verdict("a", 0.2), verdict("b", 0.1)),  # both prefer position 2
        judgment(verdict("a", 0.7), verdict("b", None)),  # partial
        judgment(verdict("a", None), verdict("b", None)),  # unparsed
    ]
    stats = judge_stats(judgments)
    assert stats.judged == 5
    assert stats.parsed_orders == 7
    assert stats.unparsed_orders == 3
    assert stats.both_orders == 3
    assert stats.consistent == 1
    assert stats.same_position == 2
    assert stats.consistency_rate == pytest.approx(1 / 3)
    assert stats.same_position_rate == pytest.approx(2 / 3)


def test_judge_stats_empty_rates_are_none() -> None:
    stats = judge_stats([])
    assert (stats.judged, stats.parsed_orders, stats.both_orders) == (0, 0, 0)
    assert stats.consistency_rate is None
    assert stats.same_position_rate is None
    only_partial = judge_stats([judgment(verdict("a", 0.7), verdict("b", None))])
    assert only_partial.consistency_rate is None
