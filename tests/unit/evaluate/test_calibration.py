"""Calibrating the judge's soft labels: a known temperature recovered, ECE falling, too little ground truth
and a judge without signal left raw and said so, the saved file round-tripping and a bad one in one line."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from rlaif.config import config_from_dict
from rlaif.errors import ConfigError
from rlaif.evaluate.calibration import (
    MIN_ROWS,
    Truth,
    calibrator,
    fit_calibration,
    ground_truth,
    load_calibration,
    save_calibration,
    temperature_map,
)
from rlaif.records import Judgment, OrderVerdict, Provenance


def overconfident(n: int, *, temperature: float = 2.0, seed: int = 0) -> list[tuple[float, bool]]:
    """(judge's P(A better), A is better): the truth is sigmoid(z), the judge says sigmoid(T z)."""
    rng = random.Random(seed)
    points = []
    for _ in range(n):
        z = rng.gauss(0, 1.5)
        points.append((1 / (1 + math.exp(-temperature * z)), rng.random() < 1 / (1 + math.exp(-z))))
    return points


def test_a_known_temperature_is_recovered_and_ece_drops() -> None:
    fit = fit_calibration(overconfident(2000))
    assert fit.applied and fit.source == "fitted" and fit.rows == 2000
    assert fit.temperature is not None and abs(fit.temperature - 2.0) <= 0.15 * 2.0
    assert fit.temperature_ci95 is not None and fit.temperature_ci95[0] < 2.0 < fit.temperature_ci95[1]
    assert fit.ece_before is not None and fit.ece_after is not None
    assert fit.ece_after < fit.ece_before / 3  # 0.110 -> 0.011, cross-validated
    assert fit.brier_after is not None and fit.brier_before is not None and fit.brier_after < fit.brier_before
    assert fit.after_method is not None and "5-fold" in fit.after_method
    assert not fit.no_signal and not fit.warnings


def test_an_underconfident_judge_is_sharpened() -> None:
    fit = fit_calibration(overconfident(2000, temperature=0.5, seed=3))
    assert fit.applied and fit.temperature is not None and abs(fit.temperature - 0.5) <= 0.15 * 0.5


def test_ten_rows_stay_raw_and_say_so() -> None:
    fit = fit_calibration(overconfident(10))
    assert not fit.applied and fit.temperature is None and fit.ece_after is None
    assert fit.rows == 10 and fit.reason.startswith("10 decided ground-truth rows")
    assert f"needs {MIN_ROWS}" in fit.reason
    assert calibrator(fit) is None
    assert fit.ece_before is not None  # the raw labels are still scored


def test_a_judge_that_is_never_wrong_stays_raw() -> None:
    fit = fit_calibration([(0.9, True), (0.2, False)] * 20)  # no wrong pick: T would run to 0
    assert not fit.applied and "0 wrong" in fit.reason


def test_a_judge_without_signal_is_flagged_and_not_fitted() -> None:
    rng = random.Random(7)
    points = [(rng.uniform(0.05, 0.95), rng.random() < 0.5) for _ in range(80)]
    fit = fit_calibration(points)
    assert fit.accuracy is not None and fit.accuracy.ci95 is not None
    assert fit.accuracy.ci95[0] <= 0.5 <= fit.accuracy.ci95[1]
    assert fit.no_signal and not fit.applied and fit.temperature is None
    assert "not distinguishable from a coin" in fit.reason
    assert any("no calibration of them means anything" in w for w in fit.warnings)


def test_ties_are_left_out_and_counted() -> None:
    fit = fit_calibration([(0.5, True)] * 5 + overconfident(100))
    assert fit.ties == 5 and fit.rows == 100


def test_the_map_keeps_sides_and_symmetry() -> None:
    for p in (0.01, 0.3, 0.5, 0.8, 1.0):
        q = temperature_map(p, 2.0)
        assert (q > 0.5) == (p > 0.5) and math.isclose(temperature_map(1 - p, 2.0), 1 - q, abs_tol=1e-9)
    assert temperature_map(0.9, 2.0) == pytest.approx(0.75)


VERDICT_A = OrderVerdict(first_id="a", p_first=0.8, status="ok", raw="A")
VERDICT_B = OrderVerdict(first_id="b", p_first=0.4, status="ok", raw="B")


def _judgment(jid: str, **fields: object) -> Judgment:
    base: dict[str, object] = {
        "id": jid, "prompt_id": "p", "response_a_id": "a", "response_b_id": "b", "principle_ids": ("x",),
        "orders": (VERDICT_A, VERDICT_B),
        "p_a": 0.7, "consistent": True, "status": "ok",
        "provenance": Provenance(model="m", template="judge", template_hash="th"),
    }  # fmt: skip
    return Judgment.model_validate(base | fields)


def test_ground_truth_reads_known_better_checks_contrast_and_reviews() -> None:
    judgments = [
        _judgment("1", known_better="b"),  # a probe-like pair: the judge preferred A, wrongly
        _judgment("2", source="check", p_a=1.0, llm_p_a=0.8),  # a probed check pair
        _judgment("3", source="check", p_a=0.0, llm_p_a=0.6, kind="contrast"),
        _judgment("4", source="check", p_a=1.0),  # check exact: no LLM label, not a row
        _judgment("5"),  # a plain judge pair: no truth
    ]
    rows = ground_truth(judgments, reviewed=[(0.9, True), (0.7, False)])
    assert rows == [
        Truth(0.7, False, "sampled"), Truth(0.8, True, "check"), Truth(0.6, False, "contrast"),
        Truth(0.9, True, "review"), Truth(0.7, False, "review"),
    ]  # fmt: skip
    fit = fit_calibration(rows)
    assert fit.by_source == {"check": 1, "contrast": 1, "review": 2, "sampled": 1}


def test_the_saved_file_round_trips_and_a_run_uses_it(tmp_path: Path) -> None:
    fit = fit_calibration(overconfident(500, seed=2))
    fit.judge_model, fit.template_hash = "judge-1", "th"
    path = tmp_path / "cal.json"
    saved = save_calibration(fit, path, mode="logprob", data="labels.jsonl")
    assert load_calibration(path) == saved and saved.temperature == fit.temperature and saved.n == 500
    used = fit_calibration(overconfident(40, seed=9), saved=saved, file=str(path), judge_model="judge-1")
    assert used.applied and used.source == "file" and used.temperature == saved.temperature
    assert used.after_method == "the file's T, not fitted on these rows" and not used.warnings
    other = fit_calibration([], saved=saved, file=str(path), judge_model="judge-2")
    assert other.applied and any("fitted for judge 'judge-1'" in w for w in other.warnings)


def test_a_fit_that_does_not_apply_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing saved, the fit does not apply: 10 decided"):
        save_calibration(fit_calibration(overconfident(10)), tmp_path / "cal.json")


def _config(tmp_path: Path, calibration: str) -> object:
    return config_from_dict(
        {"prompts": {"path": "p.jsonl"}, "judge": {"calibration": calibration}}, base_dir=tmp_path
    )


def test_a_calibration_file_that_does_not_parse_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    for name in ("bad.json", "missing.json"):
        with pytest.raises(ConfigError) as caught:
            _config(tmp_path, name)
        message = str(caught.value)
        assert "\n" not in message and "judge.calibration" in message and "--save-calibration" in message
    fit = fit_calibration(overconfident(100))
    save_calibration(fit, tmp_path / "good.json")
    assert _config(tmp_path, "good.json").judge.calibration == "good.json"  # type: ignore[attr-defined]
    assert _config(tmp_path, "off").judge.calibration == "off"  # type: ignore[attr-defined]
