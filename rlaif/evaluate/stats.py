"""Statistics of the evaluations: the Wilson interval, rates, calibration bins, ECE, Brier score and the
reliability plot."""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif.evaluate.reports import CalibrationBin
from rlaif.reports import Rate, percent

__all__ = [
    "CalibrationBin",
    "bias_warnings",
    "brier_score",
    "expected_calibration_error",
    "newcombe",
    "rate",
    "reliability_bins",
    "reliability_figure",
    "reliability_plot",
    "wilson",
]

Z95 = 1.959963984540054


def wilson(successes: float, total: int, *, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for the proportion `successes / total` (95% by default); None when `total`
    is 0. `successes` may be fractional (a tie counted as half a win)."""
    if not 0 <= successes <= max(total, 0):
        raise ValueError(f"successes {successes} must be within [0, {total}]")
    if total <= 0:
        return None
    z = Z95 if confidence == 0.95 else statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    # At 0 or all successes the bound is exactly 0 or 1 (the formula leaves rounding noise).
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= total else min(1.0, centre + half)
    return low, high


def newcombe(a: Rate, b: Rate) -> tuple[float, float] | None:
    """95% interval of a.value - b.value for independent samples (Newcombe 1998, method 10: the hybrid
    score interval from the two Wilson intervals); None when either rate is undefined."""
    if a.value is None or b.value is None or a.ci95 is None or b.ci95 is None:
        return None
    (l1, u1), (l2, u2) = a.ci95, b.ci95
    delta = a.value - b.value
    low = delta - math.sqrt((a.value - l1) ** 2 + (u2 - b.value) ** 2)
    high = delta + math.sqrt((u1 - a.value) ** 2 + (b.value - l2) ** 2)
    return max(-1.0, low), min(1.0, high)


def rate(successes: float, total: int) -> Rate:
    """`successes / total` with its Wilson 95% interval; "n/a" (None) when `total` is 0."""
    return Rate(value=successes / total if total else None, n=total, ci95=wilson(successes, total))


def bias_warnings(consistency: Rate | None, same_position: Rate | None, *, unit: str) -> list[str]:
    """Warnings for a judge whose verdicts are mostly position bias: its two presentation orders
    disagree on most `unit`s (order-consistency below 50%), or it picks the same position whatever
    is shown there (same-position rate above 80%)."""
    warnings = []
    if consistency is not None and consistency.value is not None and consistency.value < 0.5:
        warnings.append(
            f"order-consistency {percent(consistency.value)} of {consistency.n} {unit}s is below 50%: "
            "the judge's two presentation orders disagree on most of them, so its verdicts are mostly "
            "position bias; use a stronger judge (judge.model)"
        )
    if same_position is not None and same_position.value is not None and same_position.value > 0.8:
        warnings.append(
            f"same-position rate {percent(same_position.value)} of {same_position.n} {unit}s is above 80%: "
            "the judge picks the same position whatever is shown there"
        )
    return warnings


def reliability_bins(points: Sequence[tuple[float, bool]], *, bins: int = 10) -> list[CalibrationBin]:
    """Calibration bins of (predicted probability, whether the predicted event happened) points.

    Every point is counted once, in the bin [low, high) its probability falls in (1.0 in the last).
    """
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for p, outcome in points:
        grouped[min(int(p * bins), bins - 1)].append((p, outcome))
    result = []
    for index, group in enumerate(grouped):
        n = len(group)
        result.append(
            CalibrationBin(
                low=index / bins,
                high=(index + 1) / bins,
                n=n,
                mean_p=sum(p for p, _ in group) / n if n else None,
                observed=sum(o for _, o in group) / n if n else None,
            )
        )
    return result


def expected_calibration_error(bins: Sequence[CalibrationBin]) -> float | None:
    """Sum over bins of (share of predictions) × |mean predicted − observed|; None without predictions."""
    total = sum(b.n for b in bins)
    if not total:
        return None
    return sum(
        b.n / total * abs(b.mean_p - b.observed)
        for b in bins
        if b.mean_p is not None and b.observed is not None
    )


def brier_score(points: Sequence[tuple[float, bool]]) -> float | None:
    """Mean squared error of the predicted probabilities; 0.25 is what a constant 0.5 scores (no signal),
    lower is better. None without predictions."""
    if not points:
        return None
    return sum((p - float(outcome)) ** 2 for p, outcome in points) / len(points)


def reliability_figure(bins: Sequence[CalibrationBin], *, title: str, xlabel: str) -> Any:
    """A reliability diagram (observed against predicted, with counts below) as a matplotlib figure.

    The title is wrapped to the figure's width, never cut off.
    """
    from rlaif.train.curves import pyplot

    plt = pyplot()

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    width = bins[0].high - bins[0].low if bins else 0.1
    full = [b for b in bins if b.n]
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.bar(
        [b.low + width / 2 for b in full],
        [b.observed or 0.0 for b in full],
        width=width * 0.9,
        alpha=0.6,
        label="observed",
    )
    top.plot(
        [b.mean_p for b in full], [b.observed for b in full], marker="o", color="black", label="bin mean"
    )
    top.set_ylabel("observed frequency")
    top.set_ylim(0, 1)
    top.set_title("\n".join(textwrap.wrap(title, width=60)), fontsize=8)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([b.low + width / 2 for b in bins], [b.n for b in bins], width=width * 0.9, color="grey")
    bottom.set_xlabel("\n".join(textwrap.wrap(xlabel, width=70)), fontsize=8)
    bottom.set_ylabel("count")
    bottom.set_xlim(0, 1)
    return fig


def reliability_plot(bins: Sequence[CalibrationBin], path: Path, *, title: str, xlabel: str) -> Path:
    """Save `reliability_figure` as a PNG."""
    from rlaif.train.curves import save_png

    fig = reliability_figure(bins, title=title, xlabel=xlabel)
    return save_png(fig, path, dpi=100)
