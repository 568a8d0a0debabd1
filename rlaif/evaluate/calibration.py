"""Calibrating the judge's soft labels: a temperature fitted on ground truth, scored before and after.

The map is p' = sigmoid(logit(p) / T), one parameter fitted by maximum likelihood (Newton's method on 1/T,
whose log-likelihood is concave). One parameter because it keeps a pair's label the same whichever answer
is called A (f(1 - p) = 1 - f(p): Platt's intercept would add a side the pair's frame does not have), and
because a run's ground truth is a few dozen rows, not thousands.

Ground truth (`ground_truth`): pairs whose better answer is known without the judge (`known_better`:
universal probes, and contrast or check pairs that set it), check-decided pairs the LLM judge was also
asked about (`judge.checks: probe`: its own P(A) in `llm_p_a`), and judge pairs a person reviewed. A fit is
applied only with `MIN_ROWS` decided rows holding at least one right and one wrong pick (with no wrong pick
the likelihood has no maximum: T runs to 0), and only when the judge's accuracy there is distinguishable
from a coin (its Wilson interval excludes 0.5): a calibration of no signal is a number that misleads.

The "after" figures are cross-validated (`FOLDS` folds: each row is scored by a T fitted without its fold),
so they are not flattered by scoring the rows the fit was made on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from rlaif.errors import ConfigError
from rlaif.evaluate.reports import CalibrationFit
from rlaif.evaluate.stats import brier_score, expected_calibration_error, rate, reliability_bins
from rlaif.records import Judgment, SavedCalibration
from rlaif.reports import percent

__all__ = [
    "FOLDS",
    "MIN_ROWS",
    "Truth",
    "calibrator",
    "cross_validated",
    "fit_calibration",
    "fit_temperature",
    "ground_truth",
    "load_calibration",
    "save_calibration",
    "temperature_map",
    "top_label",
]

MIN_ROWS = 30
"""Fewest decided ground-truth rows before a fitted T is applied. Measured on a judge overconfident by
T = 2 (logits ~ N(0, 1.5), 200 seeded draws each): the middle 90% of fitted T is 0.16-19 at 10 rows (the fit
cannot even tell softening from sharpening), 0.95-4.4 at 30, 1.35-2.8 at 100 and 1.85-2.2 at 2,000. From 30
rows the fit points the right way; below it the labels would follow noise, so they stay raw."""
FOLDS = 5
"""Cross-validation folds of the "after" figures."""
_EPS = 1e-6
_BETA_MAX = 50.0  # 1/T bound (T >= 0.02) for folds with no wrong pick left, where the fit would diverge


class Truth(NamedTuple):
    """One ground-truth row: the judge's P(A better), whether A is the better one, and where that is known."""

    p_a: float
    a_better: bool
    source: str


def ground_truth(judgments: Iterable[Judgment], reviewed: Iterable[tuple[float, bool]] = ()) -> list[Truth]:
    """Every row of the run whose better answer is known without the judge, with the judge's P(A better).

    `known_better` wins where set (a probe's kind, else the judgment's kind, names the source); otherwise a
    check-decided pair the LLM judge was asked about too (`llm_p_a`), its check's verdict the truth. Each
    of `reviewed` is a judge pair's raw P(chosen) and whether the people's consensus kept the chosen answer
    (a swap is False; ties and flags are not rows). Judgments without an LLM label are not rows.
    """
    rows = []
    for judgment in judgments:
        llm = judgment.llm_p_a if judgment.source == "check" else judgment.p_a
        if llm is None:
            continue
        if judgment.known_better is not None:
            kind = getattr(judgment, "probe_kind", None) or judgment.kind
            source = f"probe:{kind}" if judgment.kind == "probe" else str(kind)
            rows.append(Truth(llm, judgment.known_better == "a", source))
        elif judgment.source == "check" and judgment.p_a is not None and judgment.p_a != 0.5:
            rows.append(
                Truth(llm, judgment.p_a > 0.5, "contrast" if judgment.kind == "contrast" else "check")
            )
    rows += [Truth(p, agreed, "review") for p, agreed in reviewed]
    return rows


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def temperature_map(p: float, temperature: float) -> float:
    """sigmoid(logit(p) / T): T > 1 softens toward 0.5, T < 1 sharpens; 0.5 stays 0.5."""
    return 0.5 if p == 0.5 else _sigmoid(_logit(p) / temperature)


def _log_likelihood(beta: float, data: Sequence[tuple[float, bool]]) -> float:
    return sum(-math.log1p(math.exp(-(z * beta if y else -z * beta))) for z, y in data)


def fit_temperature(points: Sequence[tuple[float, bool]]) -> tuple[float, float]:
    """(1/T, Fisher information in 1/T) maximising the likelihood of (P(A better), A is better) points.

    Newton's method with step halving on the concave log-likelihood; 1/T is kept within ±50 so a sample
    with no wrong pick (whose maximum is at infinity) still gives a finite, very sharp fit.
    """
    data = [(_logit(p), y) for p, y in points if p != 0.5]
    beta = 1.0
    current = _log_likelihood(beta, data)
    for _ in range(100):
        grad = sum(z * (float(y) - _sigmoid(beta * z)) for z, y in data)
        info = sum(z * z * (s := _sigmoid(beta * z)) * (1 - s) for z, _ in data)
        if info <= 1e-12:
            break
        step = grad / info
        for _ in range(40):
            candidate = min(max(beta + step, -_BETA_MAX), _BETA_MAX)
            value = _log_likelihood(candidate, data)
            if value >= current - 1e-12:
                break
            step /= 2
        done = abs(candidate - beta) < 1e-10
        beta, current = candidate, value
        if done:
            break
    info = sum(z * z * (s := _sigmoid(beta * z)) * (1 - s) for z, _ in data)
    return beta, info


def cross_validated(points: Sequence[tuple[float, bool]], *, folds: int = FOLDS) -> list[float]:
    """Each point's probability calibrated by a T fitted on the other folds (row i is in fold i % folds)."""
    out = [0.5] * len(points)
    for fold in range(folds):
        train = [pt for i, pt in enumerate(points) if i % folds != fold]
        beta, _ = fit_temperature(train)
        for i, (p, _) in enumerate(points):
            if i % folds == fold:
                out[i] = 0.5 if p == 0.5 else _sigmoid(_logit(p) * beta)
    return out


def top_label(points: Iterable[tuple[float, bool]]) -> list[tuple[float, bool]]:
    """(probability of the answer the judge prefers, whether that answer is the better one), ties left out."""
    return [(max(p, 1 - p), (p > 0.5) == y) for p, y in points if p != 0.5]


def _ece(points: Sequence[tuple[float, bool]]) -> float | None:
    return expected_calibration_error(reliability_bins(top_label(points)))


def fit_calibration(
    rows: Sequence[tuple[float, bool]] | Sequence[Truth],
    *,
    setting: str = "auto",
    saved: SavedCalibration | None = None,
    file: str | None = None,
    judge_model: str | None = None,
    template_hash: str | None = None,
    min_rows: int = MIN_ROWS,
    folds: int = FOLDS,
) -> CalibrationFit:
    """The calibration of the judge's labels on ground-truth `rows` ((P(A better), A is better) or `Truth`).

    `setting` is `judge.calibration`: `auto` fits T here and applies it when the rows allow (see the module
    docstring); `off` keeps the labels raw; with `saved` (a file's contents) its T is applied and scored on
    these rows, with a warning when the file was fitted for another judge model or template.
    """
    sources = Counter(r.source if isinstance(r, Truth) else "labelled" for r in rows)
    points = [(float(r[0]), bool(r[1])) for r in rows]
    decided = [pt for pt in points if pt[0] != 0.5]
    n, ties = len(decided), len(points) - len(decided)
    right = sum(c for _, c in top_label(decided))
    accuracy = rate(right, n) if n else None
    ci = accuracy.ci95 if accuracy is not None else None
    no_signal = ci is not None and ci[0] <= 0.5 <= ci[1]
    fit = CalibrationFit(
        source="file" if saved is not None else ("off" if setting == "off" else "fitted"),
        applied=False, reason="", rows=n, ties=ties, by_source=dict(sorted(sources.items())),
        min_rows=min_rows, accuracy=accuracy, no_signal=no_signal, file=file, judge_model=judge_model,
        template_hash=template_hash, ece_before=_ece(decided), brier_before=brier_score(decided),
    )  # fmt: skip
    shown = f"{percent(accuracy.value)} of {n} (95% CI {percent(ci[0])}-{percent(ci[1])})" if ci else "n/a"
    if no_signal:
        fit.warnings.append(
            f"the judge's accuracy on the ground truth, {shown}, is not distinguishable from a coin: its "
            "labels carry no measurable signal there, and no calibration of them means anything"
        )
    if saved is not None:
        return _from_file(fit, saved, decided)
    if setting == "off":
        fit.reason = "judge.calibration is off"
        return fit
    wrong = n - right
    if n < min_rows or not right or not wrong:
        fit.reason = (
            f"{n} decided ground-truth rows ({right} right, {wrong} wrong picks); a fit needs "
            f"{min_rows} with at least one of each"
        )
        return fit
    if no_signal:
        fit.reason = f"the judge is not distinguishable from a coin on the ground truth ({shown})"
        return fit
    if ci is not None and ci[1] < 0.5:
        fit.reason = f"the judge prefers the worse answer more often than not ({shown})"
        fit.warnings.append(f"the judge's picks run against the ground truth: accuracy {shown}")
        return fit
    beta, info = fit_temperature(decided)
    if beta <= 0:
        fit.reason = f"the likelihood's best 1/T is {beta:.3f} <= 0 (its confident picks are wrong)"
        return fit
    half = 1.959963984540054 / math.sqrt(info) if info > 0 else math.inf
    fit.temperature = 1 / beta
    fit.temperature_ci95 = (1 / (beta + half), 1 / (beta - half)) if beta - half > 0 else None
    calibrated = cross_validated(decided, folds=folds)
    after = [(q, y) for q, (_, y) in zip(calibrated, decided, strict=True)]
    fit.ece_after, fit.brier_after = _ece(after), brier_score(after)
    fit.after_method = f"{folds}-fold cross-validated: each row scored by a T fitted without its fold"
    fit.applied = True
    fit.reason = f"T = {fit.temperature:.2f} fitted on {n} ground-truth rows"
    return fit


def _from_file(
    fit: CalibrationFit, saved: SavedCalibration, decided: Sequence[tuple[float, bool]]
) -> CalibrationFit:
    temperature = saved.temperature
    fit.temperature, fit.applied = temperature, True
    fit.reason = f"T = {temperature:.2f} from {fit.file} (fitted on {saved.n} labelled rows)"
    if decided:
        after = [(temperature_map(p, temperature), y) for p, y in decided]
        fit.ece_after, fit.brier_after = _ece(after), brier_score(after)
        fit.after_method = "the file's T, not fitted on these rows"
    if fit.judge_model is not None and saved.judge_model != fit.judge_model:
        fit.warnings.append(
            f"{fit.file} was fitted for judge {saved.judge_model!r}, but this run's judge is "
            f"{fit.judge_model!r}: its T may not fit these labels"
        )
    if fit.template_hash is not None and saved.template_hash not in (None, fit.template_hash):
        fit.warnings.append(f"{fit.file} was fitted with another judge template (hash {saved.template_hash})")
    return fit


def calibrator(fit: CalibrationFit | None) -> Callable[[float], float] | None:
    """The map the export applies to judge pairs' P(chosen); None when the labels stay raw."""
    if fit is None or not fit.applied or fit.temperature is None:
        return None
    temperature = fit.temperature
    return lambda p: temperature_map(p, temperature)


def save_calibration(
    fit: CalibrationFit, path: Path, *, mode: str | None = None, data: str | None = None
) -> SavedCalibration:
    """Write a fitted T for runs to reuse (`judge.calibration: FILE`); a fit that was not applied (too few
    rows, no signal) raises `ConfigError` with its reason instead."""
    if not fit.applied or fit.temperature is None:
        raise ConfigError(f"--save-calibration {path}: nothing saved, the fit does not apply: {fit.reason}")
    saved = SavedCalibration(
        temperature=fit.temperature, n=fit.rows, ece_before=fit.ece_before, ece_after=fit.ece_after,
        brier_before=fit.brier_before, brier_after=fit.brier_after,
        accuracy=fit.accuracy.value if fit.accuracy else None, judge_model=fit.judge_model or "",
        template_hash=fit.template_hash, mode=mode, data=data,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(saved.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return saved


def load_calibration(path: Path) -> SavedCalibration:
    """A saved calibration; a file that is missing or does not parse raises `ConfigError` in one line."""
    try:
        return SavedCalibration.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(
            f"{path}: not a calibration file from `rlaif evaluate judge --save-calibration` (missing or "
            "does not parse); write one with that command, or set judge.calibration: auto"
        ) from None
