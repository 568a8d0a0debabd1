"""The arithmetic of `rlaif constitution test` and `compare`: credits, the paired bootstrap, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.authoring.trial import (
    comparison_report,
    credit,
    paired_difference,
    principle_trial,
    trial_principles,
)
from rlaif.errors import ConstitutionError
from rlaif.evaluate.judge import RowResult
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.labelled import LabelledData, LabelledPair
from rlaif.records import Message

HARMLESS = load_constitution(find_constitution("harmless"))
HELPFUL = load_constitution(find_constitution("helpful-honest"))


def test_credit_counts_a_tie_half() -> None:
    assert [credit(p) for p in (0.9, 0.5, 0.1, None)] == [1.0, 0.5, 0.0, None]


def test_paired_difference_is_the_mean_with_a_seeded_interval() -> None:
    a = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0] * 5
    b = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0] * 5
    result = paired_difference(a, b, seed=3)
    assert result.value == pytest.approx(0.25) and result.n == 40
    assert result.ci95 is not None and result.ci95[0] < 0.25 < result.ci95[1]
    assert result.ci95[0] > 0  # every row moves the same way or not at all: clearly above 0
    assert paired_difference(a, b, seed=3) == result  # seeded: the same interval every time


def test_pairing_makes_the_interval_tight_where_rows_move_together() -> None:
    """Each row's two scores are resampled together: B = A on every row is a difference of exactly 0."""
    a = [1.0, 0.0] * 20
    result = paired_difference(a, a)
    assert result.value == 0 and result.ci95 == (0.0, 0.0)


def test_paired_difference_leaves_out_rows_without_both_scores() -> None:
    assert paired_difference([1.0, None, 0.0], [0.0, 1.0, None]).n == 1
    empty = paired_difference([None], [1.0])
    assert empty.value is None and empty.n == 0 and empty.ci95 is None
    assert paired_difference([1.0], [0.0]).ci95 is None  # one row: no interval


def row(
    line: int, p: float | None, *, second: float | None = None, principle: str | None = None
) -> RowResult:
    orders = (p,) if second is None else (p, second)
    consistent = None if second is None or p is None else (p > 0.5) == (second > 0.5)
    return RowResult(line, True, orders, p if second is None or p is None else (p + second) / 2, consistent,
                     principle_id=principle)  # fmt: skip


def test_a_principle_trial_takes_the_judge_evaluation_figures() -> None:
    rows = [row(1, 0.9, second=0.8), row(2, 0.2, second=0.9), row(3, 0.5, second=0.5), row(4, None)]
    trial = principle_trial("harm-general", rows)
    assert trial.n == 4 and trial.rows_without_label == 1
    assert trial.agreement.n == 3 and trial.agreement.value == pytest.approx((1 + 1 + 0.5) / 3)
    assert trial.decisive.value == pytest.approx(2 / 3) and trial.decisive.ci95 is not None
    assert trial.order_consistency is not None and trial.order_consistency.n == 3


def test_the_principles_tried() -> None:
    assert trial_principles(HARMLESS, None) == [p.id for p in HARMLESS.for_judging()]
    assert trial_principles(HARMLESS, "privacy") == ["privacy"]
    with pytest.raises(ConstitutionError, match="did you mean 'privacy'"):
        trial_principles(HARMLESS, "privcy")


def pair(line: int) -> LabelledPair:
    return LabelledPair(line, (Message(role="user", content=f"q{line}"),), f"good {line}", f"bad {line}",
                        f"good {line}", f"bad {line}")  # fmt: skip


def test_a_comparison_report_and_its_disagreements_file(tmp_path: Path) -> None:
    pairs = [pair(i) for i in range(1, 5)]
    data = LabelledData(tmp_path / "data.jsonl", "prompt-chosen-rejected", pairs, [])
    rows_a = [row(1, 0.9), row(2, 0.9), row(3, 0.1), row(4, None)]
    rows_b = [row(1, 0.9), row(2, 0.2), row(3, 0.8), row(4, 0.7)]
    out = tmp_path / "disagree.jsonl"
    report = comparison_report(data, HARMLESS, HELPFUL, rows_a, rows_b, judge="j", seed=0, disagreements=out)
    assert report.agreement_a.value == pytest.approx(2 / 3) and report.agreement_b.value == pytest.approx(
        3 / 4
    )
    assert report.difference.n == 3 and report.difference.value == pytest.approx(0.0)
    assert report.disagreeing_rows == 2 and report.common_principles == []
    assert any("no principle id in common" in note for note in report.notes)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in written] == [3, 2, 1]  # most different first
    assert written[0]["p_chosen_a"] == 0.1 and written[0]["chosen"] == "good 3"
    same = comparison_report(data, HARMLESS, HARMLESS, rows_a, rows_a, judge="j", seed=0, disagreements=None)
    assert len(same.common_principles) == len(HARMLESS.principles) and not same.notes
