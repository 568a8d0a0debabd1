"""The shared bases of every report: `Report`, and `Rate` with the one way a rate is printed.

Records (`records.py`) are the data that crosses stage boundaries; reports are what a stage or a
command says about what it did. Each feature folder keeps the reports it builds in its own
`reports.py` (`rlaif/pipeline/reports.py`, `rlaif/evaluate/reports.py`, ...); the CLI renders them from
their fields, and `--json` writes their `model_dump`. A rate that cannot be computed is None ("n/a"),
never 0.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Rate", "Report", "percent", "rate_text"]


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage ("12.5%"); "n/a" when it is undefined, never 0."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


class Report(BaseModel):
    """Base of every report: field docstrings are the documentation of the JSON keys."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class Rate(Report):
    """A share with its denominator: `value` of `n`, with a Wilson 95% interval (`evaluate.stats.rate`)."""

    value: float | None
    """The share; None ("n/a") when `n` is 0, never 0."""
    n: int
    """Its denominator."""
    ci95: tuple[float, float] | None = None
    """Wilson 95% interval; None when `n` is 0."""


def rate_text(rate: Rate | None) -> str:
    """The one way a rate is printed, with its denominator and interval: "44.1% of 500  [39.8%, 48.5%]";
    "n/a (of 0)" when it is undefined, "n/a" when there is none."""
    if rate is None or rate.value is None:
        return "n/a" if rate is None else f"n/a (of {rate.n})"
    tail = f"  [{percent(rate.ci95[0])}, {percent(rate.ci95[1])}]" if rate.ci95 else ""
    return f"{percent(rate.value)} of {rate.n}{tail}"
