"""The stop rules of `rlaif iterate`, read off one round's held-out figures, and the best round."""

from __future__ import annotations

from collections.abc import Sequence

from rlaif.config import StopConfig
from rlaif.reports import percent
from rlaif.rounds.reports import RoundReport, StopEvent

__all__ = ["best_round", "stop_rule"]


def stop_rule(rules: StopConfig, report: RoundReport) -> StopEvent | None:
    """The first rule this round trips (hacking alert, KL over budget, too little gain), with its figures."""
    r = report.round
    if rules.on_alert and report.alerts:
        return StopEvent(
            rule="alert", round=r, reason=f"a hacking monitor alerted: {'; '.join(report.alerts)}"
        )
    kl = report.kl_per_token
    if rules.max_kl is not None and kl is not None and kl > rules.max_kl:
        return StopEvent(
            rule="max_kl", round=r,
            reason=f"KL(round {r} ‖ base) is {kl:.4f} nats/token, over the budget of {rules.max_kl}",
        )  # fmt: skip
    if rules.min_gain is not None and report.gain is not None and report.gain < rules.min_gain:
        against = "the base" if r == 1 else f"round {r - 1}"
        interval = ""
        if report.gain_ci95 is not None:
            low, high = report.gain_ci95
            zero = "includes 0" if low <= 0 <= high else "excludes 0"
            interval = f" (95% interval [{percent(low)}, {percent(high)}], {zero})"
        return StopEvent(
            rule="min_gain", round=r,
            reason=f"held-out every-check pass rate rose {percent(report.gain)} over {against}{interval}, "
            f"below min_gain {percent(rules.min_gain)}",
        )  # fmt: skip
    return None


def best_round(rounds: Sequence[RoundReport]) -> RoundReport | None:
    """The done round with the highest held-out every-check pass rate (the earliest of equals), leaving
    out a round that tripped a hacking alert or the KL budget."""
    best: RoundReport | None = None
    for report in rounds:
        if report.status != "done" or (report.stop is not None and report.stop.rule in ("alert", "max_kl")):
            continue
        every = report.pass_rates.get("every check")
        if every is None or every.value is None:
            continue
        held = best.pass_rates["every check"].value if best is not None else None
        if held is None or every.value > held:
            best = report
    return best
