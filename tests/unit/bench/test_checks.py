"""The check benchmark: a seeded mix of responses, python rules left out, a stated denominator."""

from __future__ import annotations

import pytest

from rlaif.bench.checks import MIX, bench_checks, response_mix
from rlaif.errors import ConstitutionError
from rlaif.records import Check, Constitution, Principle


def constitution(*checks: Check | None) -> Constitution:
    principles = [Principle(id=f"p{i}", judge_question="Which?", check=c) for i, c in enumerate(checks)]
    return Constitution(name="bench", principles=tuple(principles))


def test_the_mix_is_seeded_and_has_every_kind() -> None:
    texts, counts = response_mix(2000, seed=3)
    assert (texts, counts) == response_mix(2000, seed=3)
    assert texts != response_mix(2000, seed=4)[0]
    assert set(counts) == set(MIX) and sum(counts.values()) == 2000
    assert any(t.strip() == "" for t in texts)
    assert any("https://" in t for t in texts)
    assert any("\n- " in t or "\n* " in t for t in texts)


def test_report_measures_declarative_rules_and_leaves_python_out() -> None:
    report = bench_checks(
        constitution(
            Check(max_words=60, must_not_match="(?i)https?://"),
            None,
            Check(python="tests.unit.judging.test_checks:short"),
            Check(not_starts_with="(?i)sure", python="tests.unit.judging.test_checks:short"),
        ),
        responses=300,
        repeats=2,
    )
    assert [p.principle_id for p in report.principles] == ["p0", "p3"]
    assert report.principles[1].rules == ["not_starts_with"]
    assert len(report.left_out) == 2 and all("python" in note for note in report.left_out)
    assert report.responses == 300 and len(report.seconds) == 2
    assert report.responses_per_second is not None and report.checks_per_second is not None
    assert report.checks_per_second == pytest.approx(2 * report.responses_per_second)
    assert all(p.pass_rate is not None and 0 < p.pass_rate < 1 for p in report.principles)
    assert sum(p.check_errors for p in report.principles) == 0
    dumped = report.model_dump(mode="json")
    assert dumped["responses_per_second"] == report.responses_per_second


def test_nothing_to_measure() -> None:
    with pytest.raises(ConstitutionError, match="no principle with a declarative check"):
        bench_checks(constitution(None, Check(python="tests.unit.judging.test_checks:short")), responses=10)
