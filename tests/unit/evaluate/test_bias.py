"""Length bias and self-preference: the share against its reference, the excess the gates read, and the
gates themselves (hand-made counts; the stub-server runs are in tests/unit/pipeline/test_judge_bias.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rlaif.config import RunConfig
from rlaif.evaluate.bias import MIN_REFERENCE, LengthTally, SelfPreferenceTally, length_warning, self_judging
from rlaif.evaluate.reports import LengthBiasReport
from rlaif.evaluate.stats import Z95
from rlaif.pipeline.quality import evaluate_gates
from rlaif.pipeline.reports import JudgeBiasReport

LONG, SHORT = "one two three four five six", "one two"


def tally(longer: int, shorter: int, equal: int = 0, *, known: tuple[int, int] = (0, 0)) -> LengthBiasReport:
    t = LengthTally()
    for chosen, rejected, count in ((LONG, SHORT, longer), (SHORT, LONG, shorter), (SHORT, SHORT, equal)):
        for _ in range(count):
            t.add(chosen, rejected, known=False)
    for chosen, rejected, count in ((LONG, SHORT, known[0]), (SHORT, LONG, known[1])):
        for _ in range(count):
            t.add(chosen, rejected, known=True)
    return t.report()


def config(**quality: Any) -> RunConfig:
    return RunConfig.model_validate({"prompts": {"path": "p.jsonl"}, "quality": quality})


def gates(run: RunConfig, sources: list[str], counts: dict[str, int], bias: JudgeBiasReport) -> Any:
    return evaluate_gates(config=run, sources=sources, candidates=counts, kept=counts, exported=counts,
                          dropped=[], judgments=[], bias=bias)  # fmt: skip


def test_forty_of_forty_longer_against_the_null_is_refused_and_a_few_pairs_are_not() -> None:
    report = tally(40, 0, 3)
    assert report.judged.value == 1.0 and report.judged.n == 40 and report.judged_equal == 3
    assert report.reference is None and report.reference_value == 0.5 and "null" in report.reference_kind
    assert report.excess_low == pytest.approx(40 / (40 + Z95**2) - 0.5)  # Wilson's lower bound: 0.912
    assert report.cohens_h == pytest.approx(3.14159 / 2, abs=1e-3)
    assert report.mean_log_ratio == pytest.approx(40 / 43 * 0.8473, abs=1e-3)  # ln(7/3), equal pairs count 0
    threshold = RunConfig.model_fields["quality"].default.max_length_bias
    assert threshold == 0.25 and report.excess_low > threshold
    assert (line := length_warning(report, threshold)) and "in 40 of 40 judge pairs (100.0%" in line
    # Eight of ten is not enough evidence; 12 of 12 already is.
    assert (low := tally(8, 2).excess_low) is not None and low < threshold
    assert (low := tally(12, 0).excess_low) is not None and low > threshold
    assert length_warning(tally(8, 2), threshold) is None


def test_gpt4_on_mt_bench_passes_at_any_size_and_a_length_blind_judge_is_near_zero() -> None:
    """68.0% longer-chosen (the public MT-Bench figure) stays under the threshold even at 10,000 pairs."""
    for n in (100, 1_000, 10_000):
        longer = round(0.68 * n)
        low = tally(longer, n - longer).excess_low
        assert low is not None and 0.0 < low < 0.18 < 0.25
    blind = tally(21, 19)
    assert blind.excess_low is not None and blind.excess_low < 0
    assert blind.judged.n == 40 and tally(0, 0).excess_low is None and tally(0, 0).judged.value is None


def test_known_labels_replace_the_null_once_there_are_enough() -> None:
    # A constitution whose checks make the longer answer better 80% of the time: a judge at 85% is fine.
    fine = tally(85, 15, known=(40, 10))
    assert fine.reference is not None and fine.reference_value == pytest.approx(0.8)
    assert (
        fine.excess_low is not None and fine.excess_low < 0.05 and "known-label pairs" in fine.reference_kind
    )
    # Where the shorter answer is right (concise principles), a judge that picks the longer one is caught.
    wrong = tally(30, 10, known=(4, 36))
    assert wrong.reference_value == pytest.approx(0.1) and wrong.excess_low is not None
    assert wrong.excess_low > 0.25
    # Too few known pairs: the null, and the count is said.
    few = tally(40, 0, known=(MIN_REFERENCE - 1, 0))
    assert (
        few.reference is None
        and few.reference_value == 0.5
        and f"{MIN_REFERENCE - 1} known" in few.reference_kind
    )


def test_the_length_gate_refuses_with_its_figures_and_only_where_judge_pairs_train() -> None:
    bias = JudgeBiasReport(length=tally(40, 0))
    judged = {"judge": 40}
    report = gates(config(), ["judge"], judged, bias)
    gate = next(g for g in report.gates if g.name == "judge length bias")
    assert gate.passed is False and not report.passed
    (line,) = report.failures()
    assert line.startswith(
        "judge length bias 41.2% is above the most allowed (25.0%) (chose the longer answer in "
    )
    assert "40 of 40 judge pairs (100.0%, 95% CI [91.2%, 100.0%]; 0 equal left out) against 50.0%" in line
    assert line.endswith("leave judge pairs out (train.*.sources)")
    # Check pairs trained instead: shown, warned, not refused.
    other = gates(config(), ["check"], {"check": 9, **judged}, bias)
    assert other.passed and any(w.startswith("judge length bias is 41.2%") for w in other.warnings)
    off = gates(config(max_length_bias=None), ["judge"], judged, bias)
    assert (
        off.passed
        and next(g for g in off.gates if g.name == "judge length bias").note == "off (threshold null)"
    )


def test_self_preference_is_measured_on_mixed_pairs_and_its_gate_is_off_by_default() -> None:
    own = SelfPreferenceTally("judge-m")
    assert own.report() is None  # nothing mixed: nothing to read
    for _ in range(30):
        own.add("judge-m", "judge-m", known=False)  # self-judging, but no other model to prefer it over
    assert own.report() is None and own.own_answers == 60
    for index in range(40):
        own.add(*(("judge-m", "other") if index < 36 else ("other", "judge-m")), known=False)
    report = own.report()
    assert report is not None and report.judged.value == pytest.approx(0.9) and report.judged.n == 40
    assert report.judge_model == "judge-m" and report.excess_low is not None and report.excess_low > 0.25
    bias = JudgeBiasReport(self_preference=report)
    judged = {"judge": 40}
    default = gates(config(), ["judge"], judged, bias)
    assert (
        default.passed
        and next(g for g in default.gates if g.name == "judge self-preference").threshold is None
    )
    on = gates(config(max_self_preference=0.1), ["judge"], judged, bias)
    (line,) = on.failures()
    assert line.startswith("judge self-preference") and "chose its own model's answer in 36 of 40" in line


def test_the_default_config_is_self_judging_and_another_model_is_not() -> None:
    said = self_judging(config())
    assert said is not None and "judge.model is not set" in said and "87.2%" in said
    same = RunConfig.model_validate({"prompts": {"path": "p.jsonl"}, "model": {"path": "m"},
                                     "judge": {"model": {"path": "m"}}})  # fmt: skip
    assert "judge.model names the policy's model" in (self_judging(same) or "")
    other = RunConfig.model_validate({"prompts": {"path": "p.jsonl"}, "judge": {"model": {"path": "big"}}})
    assert self_judging(other) is None


@pytest.mark.parametrize("value", [-0.1, 1.5, "high"])
def test_bad_thresholds_are_refused_naming_the_key(value: object) -> None:
    from rlaif.config import config_from_dict
    from rlaif.errors import ConfigError

    with pytest.raises(ConfigError, match="quality.max_length_bias"):
        config_from_dict({"prompts": {"path": "p.jsonl"}, "quality": {"max_length_bias": value}})
