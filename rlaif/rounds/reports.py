"""The reports of `rlaif iterate`: one per round (`rounds/R/round.json`) and the whole loop's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlaif.evaluate.reports import PassRate
from rlaif.reports import Report

__all__ = ["IterateReport", "RedTeamReport", "RoundReport", "StopEvent"]

StopRule = Literal["min_gain", "max_kl", "alert", "gate"]


class StopEvent(Report):
    """A stop rule that fired, with its figures."""

    rule: StopRule
    """Which rule: `min_gain`, `max_kl`, `alert` (a hacking monitor) or `gate` (a round refused)."""
    round: int
    """The round it fired after."""
    reason: str
    """The figures, in one line."""


class RedTeamReport(Report):
    """The red-team prompts that joined a round, and how the round's policy did on them."""

    asked: int
    """Prompts the model was asked for."""
    kept: int
    """Prompts that joined the round (new, of a fitting length)."""
    dropped: dict[str, int] = Field(default_factory=dict)
    """Reason (`duplicate`, `too_short`, `too_long`) -> answers not kept."""
    principles: list[str] = Field(default_factory=list)
    """The lowest-passing checked principles they were aimed at."""
    seeds: list[str] = Field(default_factory=list)
    """Ids of last round's failing training prompts shown as examples."""
    pass_rate: PassRate | None = None
    """Every check passed, on the round's training answers to the red-team prompts."""
    others_pass_rate: PassRate | None = None
    """Every check passed, on the round's training answers to its other prompts."""


class RoundReport(Report):
    """One round: what it generated and trained, and its policy on the held-out prompts."""

    round: int
    """1 for the first."""
    status: Literal["done", "refused"]
    """`done`: trained and evaluated; `refused`: a gate stopped its training (a rerun retries it)."""
    started_from: str
    """The model the round generated with and trained from (round 1: the base)."""
    model: str | None = None
    """The trained policy, which the next round serves."""
    prompts: int
    """Training prompts of the round, red-team ones included."""
    pairs: int = 0
    """Preference pairs the round's pipeline made."""
    train_steps: int | None = None
    """Optimizer steps of the round's training."""
    pass_rates: dict[str, PassRate] = Field(default_factory=dict)
    """Principle id (and "every check") -> the round's policy's held-out pass rate."""
    gain: float | None = None
    """"every check" pass rate minus the previous round's (the base's for round 1)."""
    gain_ci95: tuple[float, float] | None = None
    """Newcombe 95% interval of `gain`."""
    gain_vs_base: float | None = None
    """"every check" pass rate minus the base's."""
    gain_vs_base_ci95: tuple[float, float] | None = None
    """Newcombe 95% interval of `gain_vs_base`."""
    kl_per_token: float | None = None
    """KL(round's policy ‖ base) per token on its held-out samples."""
    words_mean: float | None = None
    """Mean words per held-out answer."""
    tokens_mean: float | None = None
    """Mean tokens per held-out answer."""
    base_rates: dict[str, PassRate] = Field(default_factory=dict)
    """Principle id (and "every check") -> the base's held-out pass rate in this round's evaluation."""
    base_words_mean: float | None = None
    """Mean words per held-out answer of the base."""
    alerts: list[str] = Field(default_factory=list)
    """Hacking monitors' alerts on the held-out answers."""
    warnings: list[str] = Field(default_factory=list)
    """The compliance evaluation's warnings."""
    red_team: RedTeamReport | None = None
    """The red-team prompts that joined this round; None: none asked for."""
    stop: StopEvent | None = None
    """The stop rule this round fired, if any."""
    refused: str | None = None
    """Why a gate refused the round's training."""
    compliance: str | None = None
    """The compliance report (JSON, with every answer)."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time of the round's parts (pipeline, red_team, evaluate, total)."""


class IterateReport(Report):
    """The whole loop of `rlaif iterate`."""

    run_dir: str
    """The run directory (rounds in `rounds/R/`)."""
    rounds_planned: int
    """`iterate.rounds`."""
    base: str
    """The base model."""
    heldout: str
    """The held-out prompt file."""
    heldout_prompts: int
    """Held-out prompts measured on."""
    base_rates: dict[str, PassRate] = Field(default_factory=dict)
    """Principle id (and "every check") -> the base's held-out pass rate (round 1's evaluation)."""
    rounds: list[RoundReport] = Field(default_factory=list)
    """The rounds run, in order."""
    status: Literal["done", "stopped", "refused"]
    """`done`: every planned round ran; `stopped`: a stop rule ended it; `refused`: a gate stopped a round."""
    stop: StopEvent | None = None
    """The rule that ended the loop."""
    best_round: int | None = None
    """The round with the highest held-out "every check" pass rate and no alert or KL over budget."""
    best_model: str | None = None
    """Its trained model folder."""
    plot: str | None = None
    """The rounds' curves (PNG)."""
