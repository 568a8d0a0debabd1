"""The report of human spot-checks: the AI judge against people, people against each other, the gate."""

from __future__ import annotations

from pydantic import Field

from rlaif.reports import Report

__all__ = [
    "AIAgreement",
    "AIvsHuman",
    "AgreementReport",
    "BootstrapSettings",
    "CohenAgreement",
    "FleissAgreement",
    "GateStatus",
    "ReviewerAgreement",
]


class AIAgreement(Report):
    """People against the AI judge on reviewed pairs (a fixed A/B orientation per pair)."""

    pairs: int
    """Pairs with a non-flag decision."""
    decisions: int
    """Decisions, flags included."""
    agree: int
    """Decisions that pick the AI's chosen answer."""
    disagree: int
    """Decisions that pick the other answer."""
    ties: int
    """Decisions that call it a tie."""
    flags: int
    """Decisions that flag the pair as broken (left out of accuracy and kappa)."""
    accuracy: float | None
    """Share of decisive verdicts (not tie, not flag) that pick the AI's answer; None without any."""
    kappa: float | None
    """Cohen's kappa of AI (A/B) against people (A/B/tie); None when undefined."""
    tie_rate: float | None
    """ties / decisions."""
    flag_rate: float | None
    """flags / decisions."""
    accuracy_ci: tuple[float, float] | None = None
    """Bootstrap interval of `accuracy` (resampling pairs); None without a bootstrap or when undefined."""
    kappa_ci: tuple[float, float] | None = None
    """Bootstrap interval of `kappa`."""


class CohenAgreement(Report):
    """Two reviewers on the pairs they both decided (their standing decisions)."""

    pairs: int
    """Shared pairs."""
    agree: int = 0
    """Shared pairs with the same verdict (both tie, or both flag, counts as the same)."""
    raw_agreement: float | None
    """`agree` / `pairs`: a tie against a pick is a disagreement."""
    decisive: int = 0
    """Shared pairs where both picked an answer (neither said tie or flag)."""
    decisive_agree: int = 0
    """Of those, pairs where both picked the same answer."""
    decisive_agreement: float | None = None
    """`decisive_agree` / `decisive`; None when no pair was decided by both."""
    ties: int = 0
    """Shared pairs where at least one of the two said tie (left out of `decisive`)."""
    flags: int = 0
    """Shared pairs where at least one of the two flagged the pair (left out of `decisive`)."""
    kappa: float | None
    """Cohen's kappa over A/B/tie/flag; None when undefined (both always gave one same verdict)."""
    kappa_ci: tuple[float, float] | None = None
    """Bootstrap interval of `kappa`."""


class FleissAgreement(Report):
    """Three or more reviewers."""

    pairs: int
    """Pairs with two or more reviewers."""
    kappa: float | None
    """Fleiss' kappa over A/B/tie/flag."""
    kappa_ci: tuple[float, float] | None = None
    """Bootstrap interval of `kappa`."""


class ReviewerAgreement(Report):
    """Agreement between people."""

    reviewers: list[str]
    """Reviewers with a standing decision, sorted."""
    cohen: dict[str, CohenAgreement] = Field(default_factory=dict)
    """`first | second` → their agreement."""
    fleiss: FleissAgreement | None = None
    """With three or more reviewers."""


class GateStatus(Report):
    """The human-review gate (`review.gate`) before training."""

    passed: bool
    """Whether training may start."""
    metric: str
    """`accuracy` or `kappa`."""
    value: float | None
    """The metric's value; None when undefined."""
    pairs: int
    """Reviewed pairs it rests on."""
    min_agreement: float
    """Least value that passes."""
    min_reviewed: int
    """Least number of reviewed pairs."""
    reasons: list[str] = Field(default_factory=list)
    """Why it failed, one line each."""


class BootstrapSettings(Report):
    """How the intervals were computed."""

    bootstrap: int
    """Bootstrap resamples."""
    confidence: float
    """Interval level."""
    seed: int
    """Seed of the resampling."""


class AIvsHuman(Report):
    """AI-human agreement overall and per principle."""

    overall: AIAgreement
    """Over every reviewed pair."""
    by_principle: dict[str, AIAgreement] = Field(default_factory=dict)
    """Principle id → over the pairs judged under it."""
    by_reviewer: dict[str, AIAgreement] = Field(default_factory=dict)
    """Reviewer → over that reviewer's decisions (who agrees with the judge, who does not)."""


class AgreementReport(Report):
    """`rlaif review report`: AI-human and reviewer agreement, and the gate; saved as `review_report.json`."""

    generated_at: str
    """When (UTC, ISO 8601)."""
    settings: BootstrapSettings
    """How the intervals were computed."""
    reviewers: dict[str, int] = Field(default_factory=dict)
    """Reviewer → standing decisions."""
    pairs_reviewed: int
    """Pairs with at least one standing decision."""
    ai_vs_human: AIvsHuman
    """People against the AI judge."""
    between_reviewers: ReviewerAgreement
    """People against each other."""
    gate: GateStatus | None = None
    """The gate; None when none is configured."""
