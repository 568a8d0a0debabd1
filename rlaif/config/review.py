"""`review:`: human spot-checks of the AI's pairs, their sample and the gate before training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rlaif.config.base import PairSource, Section

__all__ = ["GateConfig", "ReviewConfig", "ReviewSampleConfig", "reviewer_problem"]


class ReviewSampleConfig(Section):
    """Which stored pairs people are asked to review."""

    size: int | None = Field(default=50, ge=1)
    """How many pairs (all of them when fewer are stored); ignored when `fraction` is set."""
    fraction: float | None = Field(default=None, gt=0, le=1)
    """Share of the stored pairs instead of a count (rounded up)."""
    strategy: Literal["uniform", "stratified", "lowest_confidence", "inconsistent_first"] = "uniform"
    """`uniform`; `stratified` by principle (every principle at least once); `lowest_confidence` first;
    `inconsistent_first` (pairs whose two judge orders disagreed, then the rest at random)."""
    sources: list[PairSource] = ["check", "judge", "revision"]
    """Which pairs may be sampled."""

    @model_validator(mode="after")
    def _count_or_fraction(self) -> ReviewSampleConfig:
        if self.fraction is not None and "size" in self.model_fields_set and self.size is not None:
            raise ValueError("give review.sample.size or review.sample.fraction, not both")
        if self.fraction is not None:
            self.size = None  # so a dumped config (the run manifest) validates again
        return self


class GateConfig(Section):
    """Training refuses to start unless people agree with the AI often enough."""

    min_agreement: float = Field(ge=-1, le=1)
    """Least AI-human agreement (`metric`) that lets training start, e.g. 0.7."""
    min_reviewed: int = Field(default=50, ge=1)
    """Least number of reviewed pairs the agreement must rest on."""
    metric: Literal["accuracy", "kappa"] = "accuracy"
    """`accuracy`: share of decisive human verdicts that pick the AI's answer; `kappa`: Cohen's kappa."""


def reviewer_problem(name: str) -> str | None:
    """Why `name` cannot name a reviewer, or None when it can.

    A name is an identity in records, reports and file names people make from it (one batch file per
    annotator, say): path characters, control characters and `.`/`..` could point outside the folder
    it is meant for, and an empty name identifies no one.
    """
    if not name.strip():
        return "is empty; give a name such as alice"
    if name != name.strip():
        return "has spaces at an end; write the name without them"
    bad = sorted({c for c in name if c in "/\\" or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"contains {shown}; a reviewer name has no path or control characters (try alice or a.b@lab)"
    if name in (".", ".."):
        return "is a path, not a name; give a name such as alice"
    if len(name) > 100:
        return f"is {len(name)} characters long; use at most 100"
    return None


class ReviewConfig(Section):
    """Human spot-checks of the AI's pairs."""

    reviewer: str | None = None
    """Reviewer id for the terminal and web reviewers; None uses the login name."""

    @field_validator("reviewer")
    @classmethod
    def _a_name(cls, name: str | None) -> str | None:
        problem = None if name is None else reviewer_problem(name)
        if problem:
            raise ValueError(f"reviewer {name!r} {problem}")
        return name

    seed: int | None = None
    """Seed of the sample, the answer order shown and the bootstrap; None uses the run's seed."""
    sample: ReviewSampleConfig = ReviewSampleConfig()
    show_ai_verdict: bool = False
    """Show the AI's choice and probability to reviewers (hidden by default to avoid anchoring)."""
    hook: str | None = Field(default=None, pattern=r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*$")
    """A Python reviewer `module:function` (or `path/to/file.py:function`) for `rlaif review hook`."""
    hook_batch_size: int = Field(default=16, ge=1)
    """Pairs handed to the hook per call; decisions are stored after each call."""
    bootstrap: int = Field(default=1000, ge=100)
    """Bootstrap resamples for confidence intervals."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    """Confidence level of the intervals."""
    gate: GateConfig | None = None
    """Gate before training; None means no gate."""
