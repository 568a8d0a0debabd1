"""Kappa, bootstrap intervals and the agreement report, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rlaif.config import GateConfig
from rlaif.review.agreement import (
    agreement_report,
    ai_agreement,
    bootstrap_ci,
    cohen_kappa,
    fleiss_kappa,
    oriented,
    pair_agreement,
)
from rlaif.review.reports import AgreementReport
from tests.support.review import decision, make_pair

# Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories, kappa 0.210.
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_cohen_kappa_by_hand() -> None:
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2/0.5
    assert cohen_kappa([[20, 5], [10, 15]]) == pytest.approx(0.4)
    # p_o = 0.6; p_e = 0.6*0.7 + 0.4*0.3 = 0.54; kappa = 0.06/0.46
    assert cohen_kappa([[45, 15], [25, 15]]) == pytest.approx(0.06 / 0.46)
    assert cohen_kappa([[3, 0, 0], [0, 4, 0], [0, 0, 2]]) == pytest.approx(1.0)
    assert cohen_kappa([[0, 5], [5, 0]]) == pytest.approx(-1.0)
    assert cohen_kappa([[7, 0], [0, 0]]) is None  # both raters always say the same thing: undefined


def test_fleiss_kappa_by_hand() -> None:
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.2099, abs=1e-4)
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    # Different rater counts: P_i = 1, 0, 1 (mean 2/3); p = 6/7, 1/7; P_e = 37/49 → kappa = -13/36
    assert fleiss_kappa([[2, 0], [1, 1], [3, 0]]) == pytest.approx(-13 / 36)


def test_fleiss_equals_cohen_style_agreement_for_two_raters_in_the_limit() -> None:
    # With two raters, Fleiss' kappa uses pooled marginals (Scott's pi): check against that formula.
    table = np.array([[20, 5], [10, 15]])
    items = [[2, 0]] * 20 + [[1, 1]] * 15 + [[0, 2]] * 15
    pooled = (table.sum(0) + table.sum(1)) / (2 * table.sum())
    scott = (0.7 - (pooled**2).sum()) / (1 - (pooled**2).sum())
    assert fleiss_kappa(items) == pytest.approx(scott, abs=0.02)  # Fleiss' small-sample term


def _mean(totals: np.ndarray) -> np.ndarray:
    return totals[:, 0] / totals[:, 1]


def test_bootstrap_is_seeded_contains_the_estimate_and_has_a_sensible_width() -> None:
    features = np.column_stack([np.r_[np.ones(160), np.zeros(40)], np.ones(200)])  # p = 0.8, n = 200
    low, high = bootstrap_ci(features, _mean, n_boot=2000, seed=3)  # type: ignore[misc]
    assert (low, high) == bootstrap_ci(features, _mean, n_boot=2000, seed=3)
    continuous = np.column_stack([np.random.default_rng(0).normal(size=50), np.ones(50)])
    assert bootstrap_ci(continuous, _mean, seed=1) != bootstrap_ci(continuous, _mean, seed=2)
    assert low < 0.8 < high
    # normal approximation: 2 * 1.96 * sqrt(0.8 * 0.2 / 200) = 0.111
    assert 0.08 < high - low < 0.14
    narrow = bootstrap_ci(np.tile(features, (16, 1)), _mean, n_boot=2000, seed=3)
    assert narrow is not None and narrow[1] - narrow[0] < (high - low) / 3
    assert bootstrap_ci(features[:1], _mean) is None


def _pairs_by_orientation(count: int) -> tuple[list, list]:  # type: ignore[type-arg]
    a_pairs, b_pairs = [], []
    for i in range(200):
        pair = make_pair(i, principle="harm" if i % 2 else "honest")
        (a_pairs if oriented("chosen", pair.id) == "A" else b_pairs).append(pair)
    return a_pairs[:count], b_pairs[:count]


def test_ai_vs_human_by_hand() -> None:
    a, b = _pairs_by_orientation(5)
    verdicts_a = ["chosen", "chosen", "chosen", "rejected", "tie"]  # AI A: human A A A B tie
    verdicts_b = ["chosen", "chosen", "rejected", "rejected", "tie"]  # AI B: human B B A A tie
    decisions = [decision(p, v) for p, v in zip(a + b, verdicts_a + verdicts_b, strict=True)]
    decisions.append(decision(make_pair(999), "flag"))
    stats = ai_agreement(decisions, n_boot=500, seed=1)
    # accuracy: (3 + 2) agreeing of 8 decisive; kappa over A/B/tie: p_o = 0.5, p_e = (5*5 + 5*3)/100
    assert stats.accuracy == pytest.approx(5 / 8)
    assert stats.kappa == pytest.approx((0.5 - 0.4) / 0.6)
    assert (stats.pairs, stats.decisions, stats.ties, stats.flags) == (10, 11, 2, 1)
    assert stats.flag_rate == pytest.approx(1 / 11)
    for value, interval in ((stats.accuracy, stats.accuracy_ci), (stats.kappa, stats.kappa_ci)):
        assert interval is not None and value is not None
        low, high = interval
        assert low <= value <= high


def test_perfect_and_reversed_agreement() -> None:
    a, b = _pairs_by_orientation(10)
    assert ai_agreement([decision(p, "chosen") for p in a + b]).kappa == pytest.approx(1.0)
    reversed_ = ai_agreement([decision(p, "rejected") for p in a + b])
    assert (reversed_.accuracy, reversed_.kappa) == (0.0, pytest.approx(-1.0))
    empty = ai_agreement([])
    assert (empty.accuracy, empty.kappa, empty.pairs) == (None, None, 0)


def test_report_per_principle_between_reviewers_and_gate() -> None:
    a, b = _pairs_by_orientation(6)
    pairs = a + b
    decisions = [decision(p, "chosen") for p in pairs]
    decisions += [decision(p, "chosen" if i % 3 else "rejected", "bob") for i, p in enumerate(pairs)]
    decisions += [decision(p, "chosen" if i % 4 else "tie", "carol") for i, p in enumerate(pairs)]
    decisions.append(decision(pairs[0], "rejected", withdrawn=True))  # alice took pairs[0] back
    report = agreement_report(
        decisions, n_boot=200, seed=0, gate=GateConfig(min_agreement=0.7, min_reviewed=5)
    )
    assert report.reviewers == {"alice": 11, "bob": 12, "carol": 12}
    assert report.pairs_reviewed == 12
    assert set(report.ai_vs_human.by_principle) == {"harm", "honest"}
    by = report.ai_vs_human.by_principle
    assert by["harm"].decisions + by["honest"].decisions == report.ai_vs_human.overall.decisions
    people = report.between_reviewers
    assert people.reviewers == ["alice", "bob", "carol"]
    assert set(people.cohen) == {"alice | bob", "alice | carol", "bob | carol"}
    assert people.cohen["alice | bob"].pairs == 11
    # Fleiss by hand from the oriented labels of every pair with two or more reviewers
    standing = {}
    for d in decisions:
        standing.setdefault(d.pair_id, {})[d.reviewer] = d
    del standing[pairs[0].id]["alice"]
    counts = [
        [sum(oriented(d.verdict, pid) == c for d in by.values()) for c in ("A", "B", "tie", "flag")]
        for pid, by in standing.items()
    ]
    assert people.fleiss is not None
    assert people.fleiss.kappa == pytest.approx(fleiss_kappa(counts))
    gate, accuracy = report.gate, report.ai_vs_human.overall.accuracy
    assert gate is not None and accuracy is not None and gate.passed is (accuracy >= 0.7)
    assert report.settings.model_dump() == {"bootstrap": 200, "confidence": 0.95, "seed": 0}
    # --json and review_report.json are the model's dump: it reads back as the same report.
    assert AgreementReport.model_validate_json(report.model_dump_json()) == report


# --- between two reviewers, by hand ------------------------------------------------------------------------


def _verdict(label: str, pair_id: str) -> str:
    """The pair-frame verdict that orients to `label` (A, B, tie or flag) for this pair."""
    if label in ("tie", "flag"):
        return label
    return "chosen" if oriented("chosen", pair_id) == label else "rejected"


# (alice, bob) on ten shared pairs: 4 A-A, 2 B-B, 1 A-B, 1 B-A, 1 tie-tie, 1 A-tie.
SHARED = [("A", "A")] * 4 + [("B", "B")] * 2 + [("A", "B"), ("B", "A"), ("tie", "tie"), ("A", "tie")]


def test_two_reviewers_by_hand() -> None:
    """Same verdict 7 of 10 (two ties agree; a tie against a pick does not); both picked on 8 pairs and
    the same answer on 6; kappa by hand: p_o = 0.7, marginals alice A6 B3 tie1, bob A5 B3 tie2, so
    p_e = (30 + 9 + 2) / 100 = 0.41 and kappa = 0.29 / 0.59."""
    stats = pair_agreement(SHARED, n_boot=300, seed=2)
    assert (stats.pairs, stats.agree, stats.decisive, stats.decisive_agree) == (10, 7, 8, 6)
    assert (stats.ties, stats.flags) == (2, 0)
    assert stats.raw_agreement == pytest.approx(0.7)
    assert stats.decisive_agreement == pytest.approx(0.75)
    assert stats.kappa == pytest.approx(0.29 / 0.59)
    assert stats.kappa_ci is not None and stats.kappa_ci[0] <= stats.kappa <= stats.kappa_ci[1]
    flagged = pair_agreement([("flag", "A"), ("flag", "flag"), ("A", "A")])
    assert (flagged.agree, flagged.decisive, flagged.flags, flagged.ties) == (2, 1, 2, 0)


def test_undefined_reviewer_agreement_is_none_not_zero() -> None:
    """Two reviewers who always pick A agree fully, but kappa is undefined (chance explains it all); no
    shared pair at all leaves every rate undefined."""
    same = pair_agreement([("A", "A")] * 5)
    assert (same.raw_agreement, same.kappa, same.decisive_agreement) == (1.0, None, 1.0)
    nothing = pair_agreement([])
    assert (nothing.pairs, nothing.raw_agreement, nothing.decisive_agreement, nothing.kappa) == (
        0,
        None,
        None,
        None,
    )
    only_ties = pair_agreement([("tie", "tie"), ("tie", "A")])
    assert (only_ties.decisive, only_ties.decisive_agreement, only_ties.raw_agreement) == (0, None, 0.5)


def test_the_report_compares_reviewers_on_the_pairs_both_decided() -> None:
    pairs = [make_pair(i) for i in range(12)]
    decisions = []
    for pair, (alice, bob) in zip(pairs, SHARED, strict=False):
        decisions.append(decision(pair, _verdict(alice, pair.id), "alice"))
        decisions.append(decision(pair, _verdict(bob, pair.id), "bob"))
    decisions.append(decision(pairs[10], "chosen", "bob"))  # bob alone: not shared
    decisions.append(decision(pairs[11], "chosen", "alice"))
    decisions.append(decision(pairs[11], "rejected", "bob"))
    decisions.append(decision(pairs[11], "chosen", "alice", withdrawn=True))  # alice took it back
    report = agreement_report(decisions, n_boot=200, seed=0)
    cohen = report.between_reviewers.cohen["alice | bob"]
    assert (cohen.pairs, cohen.agree, cohen.decisive, cohen.decisive_agree, cohen.ties) == (10, 7, 8, 6, 2)
    assert cohen.kappa == pytest.approx(0.29 / 0.59)
    assert report.reviewers == {"alice": 10, "bob": 12}
    by = report.ai_vs_human.by_reviewer
    assert set(by) == {"alice", "bob"} and by["bob"].decisions == 12
    assert by["alice"].agree == sum(d.verdict == "chosen" for d in decisions[:20:2])
