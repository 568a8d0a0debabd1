"""A judge ensemble's effective votes (Kish): identical members are one vote, independent ones about k."""

from __future__ import annotations

import random

import pytest

from rlaif.evaluate.ensemble import ensemble_votes, member_labels, votes_from_labels
from rlaif.records import Judgment, OrderVerdict, Provenance


def test_identical_members_are_one_vote() -> None:
    rng = random.Random(0)
    rows = [[p] * 5 for p in (rng.random() for _ in range(200))]
    votes = votes_from_labels(rows, 5)
    assert votes.mean_correlation == pytest.approx(1.0) and votes.effective_votes == pytest.approx(1.0)
    assert votes.note.startswith("5 judges, 1.0 effective votes")


def test_independent_members_are_about_k_votes() -> None:
    rng = random.Random(1)
    rows = [[rng.random() for _ in range(5)] for _ in range(2000)]
    votes = votes_from_labels(rows, 5)
    assert votes.mean_correlation is not None and abs(votes.mean_correlation) < 0.05
    assert votes.effective_votes is not None and 4.5 <= votes.effective_votes <= 5.0


def test_shared_signal_gives_the_kish_figure() -> None:
    rng = random.Random(2)
    rows = []
    for _ in range(4000):  # each member = item signal + own noise, equal variances: rho = 0.5
        item = rng.gauss(0, 1)
        rows.append([item + rng.gauss(0, 1) for _ in range(9)])
    votes = votes_from_labels(rows, 9)
    assert votes.mean_correlation == pytest.approx(0.5, abs=0.05)
    assert votes.effective_votes == pytest.approx(9 / (1 + 8 * 0.5), abs=0.2)  # 1.8 of 9


def test_negative_correlation_is_not_credited_beyond_k() -> None:
    rows = [[p, 1 - p] for p in (0.1, 0.4, 0.7, 0.9)]
    votes = votes_from_labels(rows, 2)
    assert votes.mean_correlation == pytest.approx(-1.0) and votes.effective_votes == 2.0


def test_constant_members_and_missing_labels() -> None:
    constant = votes_from_labels([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], 2)
    assert constant.effective_votes == 1.0  # two equal constants: identical members
    undefined = votes_from_labels([[0.5, 0.2], [0.5, 0.6], [0.5, 0.9]], 2)
    assert undefined.effective_votes is None and undefined.pairs_undefined == 1 and "n/a" in undefined.note
    few = votes_from_labels([[0.1, 0.2], [None, 0.3]], 2)
    assert few.items == 1 and few.left_out == 1 and few.effective_votes is None


def _order(first: str, p: float, principle: str) -> OrderVerdict:
    return OrderVerdict(first_id=first, p_first=p, status="ok", raw="A", principle_ids=(principle,))


def test_judgments_split_into_members_in_order() -> None:
    orders = (_order("a", 0.8, "x"), _order("b", 0.4, "x"), _order("a", 0.3, "y"), _order("b", 0.9, "y"))
    judgment = Judgment(
        id="j", prompt_id="p", response_a_id="a", response_b_id="b", principle_ids=("x", "y"), orders=orders,
        p_a=0.5, consistent=None, status="ok",
        provenance=Provenance(model="m", template="judge", template_hash="t"),
    )  # fmt: skip
    assert member_labels(judgment, 2) == [pytest.approx(0.7), pytest.approx(0.2)]
    assert member_labels(judgment, 3) is None  # two principle draws are not three members
    fixed = judgment.model_copy(
        update={"orders": tuple(o.model_copy(update={"principle_ids": ("x",)}) for o in orders)}
    )
    assert member_labels(fixed, 2) is None  # a row judged under one fixed principle: one member
    bare = judgment.model_copy(
        update={"orders": tuple(o.model_copy(update={"principle_ids": ()}) for o in orders)}
    )
    assert member_labels(bare, 2) == [pytest.approx(0.7), pytest.approx(0.2)]  # older records: in order
    assert ensemble_votes([judgment] * 4, 2).items == 4
