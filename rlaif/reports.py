"""Every report a stage or command produces, in one module: typed, rendered by field, dumped as JSON.

Records (`records.py`) are the data that crosses stage boundaries; reports are what a stage or a
command says about what it did. The CLI renders them from their fields, and `--json` writes their
`model_dump`. A rate that cannot be computed is None ("n/a"), never 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = [
    "CheckBenchPrinciple",
    "CheckBenchReport",
    "JudgeStats",
    "JudgeSummary",
    "Report",
    "RunCounts",
    "RunSummary",
    "StageReport",
    "TrainResult",
    "TrainSummary",
    "percent",
]


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage ("12.5%"); "n/a" when it is undefined, never 0."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


class Report(BaseModel):
    """Base of every report: field docstrings are the documentation of the JSON keys."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


# --- pipeline stages ---------------------------------------------------------------------------------


class StageReport(Report):
    """What a stage did: new records, ones reused from an earlier run, failed requests (not stored,
    so a rerun retries them), and judgments stored with a verdict that did not parse."""

    made: int = 0
    """Records made by this run."""
    reused: int = 0
    """Records found stored by an earlier run (skipped)."""
    failed: int = 0
    """Requests that failed (nothing stored; a rerun retries them)."""
    unparsed: int = 0
    """Judgments stored whose verdict did not parse."""
    errors: list[str] = Field(default_factory=list)
    """The first few failure messages, to show the user."""

    def fail(self, message: str) -> None:
        """Count a failed request and keep its message if it is among the first five."""
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(message)


class JudgeStats(Report):
    """Run-level judge metrics over a set of judgments."""

    judged: int = 0
    """Judgments."""
    parsed_orders: int = 0
    """Presentation orders whose verdict parsed."""
    unparsed_orders: int = 0
    """Presentation orders whose verdict did not parse (or whose request failed)."""
    both_orders: int = 0
    """Judgments with a parsed verdict in both presentation orders."""
    consistent: int = 0
    """Of those, judgments whose two orders preferred the same response."""
    same_position: int = 0
    """Judgments whose two orders both preferred the first (or both the second) position."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def consistency_rate(self) -> float | None:
        """consistent / both_orders; None without judgments in both orders."""
        return self.consistent / self.both_orders if self.both_orders else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def same_position_rate(self) -> float | None:
        """same_position / both_orders; None without judgments in both orders."""
        return self.same_position / self.both_orders if self.both_orders else None


# --- training ----------------------------------------------------------------------------------------


class TrainSummary(Report):
    """A trainer's entry in the run summary."""

    trainer: str
    """Registry name of the trainer (sft, reward, dpo, kto, online, ppo)."""
    steps: int
    """Optimizer steps taken."""
    seconds_per_step: float
    """Wall time per step, over the whole training."""
    loss_first: float | None = None
    """Training loss at the first logged step; None when none was logged."""
    loss_last: float | None = None
    """Training loss at the last logged step."""
    output_dir: str
    """Where the model was saved."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Trainer-specific results (held-out accuracy, pairs used, first and last reward, ...)."""


class TrainResult(Report):
    """What a trainer did; every trainer returns one."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid", arbitrary_types_allowed=True)

    trainer: str = ""
    """Registry name of the trainer."""
    output_dir: Path
    """Where the model was saved."""
    steps: int
    """Optimizer steps taken."""
    seconds: float
    """Wall time of training (not loading or saving)."""
    losses: list[float] = Field(default_factory=list)
    """Logged training losses, in order."""
    log_history: list[dict[str, Any]] = Field(default_factory=list)
    """Every logged entry (TRL's `log_history`, or our PPO's per-step metrics)."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Trainer-specific results (held-out accuracy, rows used, first and last reward, ...)."""
    step_seconds: list[float] = Field(default_factory=list)
    """Wall time of each optimizer step."""

    def summary(self) -> TrainSummary:
        """The run summary's entry for this trainer."""
        return TrainSummary(
            trainer=self.trainer,
            steps=self.steps,
            seconds_per_step=self.seconds / max(self.steps, 1),
            loss_first=self.losses[0] if self.losses else None,
            loss_last=self.losses[-1] if self.losses else None,
            output_dir=str(self.output_dir),
            metrics=self.metrics,
        )


# --- the run summary ---------------------------------------------------------------------------------


class RunCounts(Report):
    """Records of the current inputs (constitution, templates, prompts) in the run directory."""

    prompts: int
    """Prompts in the prompt set (after `prompts.limit`)."""
    responses: int
    """First answers."""
    revision_steps: int
    """Critique/revise rounds stored."""
    revisions: int
    """Finished critique/revise chains."""
    judgments: int
    """Pairwise judgments."""
    pairs: int | None = None
    """Preference pairs made by the export; None when this run did not export."""
    pairs_from_judge: int | None = None
    """Of those, from the judge."""
    pairs_from_revision: int | None = None
    """Of those, revision over original."""
    pairs_human_reviewed: int | None = None
    """Of those, pairs with a standing human decision."""


class JudgeSummary(JudgeStats):
    """Judge metrics of a run, with how its orders and judgments ended."""

    error_orders: int = 0
    """Orders whose request failed (not stored; a rerun retries them)."""
    orders_by_status: dict[str, int] = Field(default_factory=dict)
    """Orders by status (`ok`, `unparsed`, `error`)."""
    judgments_by_status: dict[str, int] = Field(default_factory=dict)
    """Judgments by status (`ok`, `partial`, `unparsed`)."""


class RunSummary(Report):
    """What `rlaif run` (or one stage command) did; printed at the end and saved as `summary.json`."""

    run_dir: str
    """The run directory."""
    constitution: str
    """The constitution's name."""
    model: str | None
    """The policy model (folder, served name, or the bundled model's name)."""
    judge_model: str | None
    """The judge model; "same as policy" when the policy judges."""
    templates: dict[str, str] = Field(default_factory=dict)
    """Template name -> hash of its source."""
    counts: RunCounts
    """Records of the current inputs."""
    stages: dict[str, StageReport] = Field(default_factory=dict)
    """What each generation stage of this invocation did."""
    judge: JudgeSummary
    """Judge metrics over the current judgments."""
    skipped: dict[str, int] = Field(default_factory=dict)
    """Pairs not made, by reason."""
    server_restarts: int | None = None
    """Restarts of a managed server that died during generation; None when nothing was generated."""
    trained: dict[str, TrainSummary] = Field(default_factory=dict)
    """Trainer name -> what it did, in training order."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time per part (generation, each trainer, total)."""
    peak_rss_gib: float | None = None
    """Peak memory of the whole process tree (the managed server included)."""
    files: dict[str, str] = Field(default_factory=dict)
    """Where the outputs are."""


# --- quality gates and filters -----------------------------------------------------------------------


# --- checks ------------------------------------------------------------------------------------------


class CheckBenchPrinciple(Report):
    """One principle's check in the check benchmark."""

    principle_id: str
    """The principle."""
    rules: list[str]
    """The rules measured (python rules are left out)."""
    pass_rate: float | None
    """Share of the mix's responses that passed; None when every one was a check error."""
    check_errors: int
    """Responses on which the check could not decide (a regular expression timed out, say)."""


class CheckBenchReport(Report):
    """How fast a constitution's declarative check rules run (`rlaif constitution bench`): a measurement
    on this machine, not a timed test."""

    constitution: str
    """The constitution's name."""
    constitution_hash: str
    """Its content hash."""
    responses: int
    """Responses in the mix; each is checked under every measured principle."""
    mix: dict[str, int]
    """Responses of each kind in the mix (plain, long, canned opener, link, list, json, unicode, ...)."""
    principles: list[CheckBenchPrinciple]
    """The principles measured."""
    left_out: list[str] = Field(default_factory=list)
    """What was not measured and why (python rules run the user's own code, at its own speed)."""
    repeats: int
    """Timed passes over the whole mix, after one untimed warm-up pass."""
    seconds: list[float]
    """Wall time of each timed pass."""
    target_per_second: float = 10_000
    """The rate the checks are meant to reach on a 2-core CPU machine."""
    machine: str = ""
    """Where it was measured (platform, CPU count, Python)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def responses_per_second(self) -> float | None:
        """Responses per second over the median pass, each checked under every measured principle."""
        median = _median(self.seconds)
        return self.responses / median if median else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checks_per_second(self) -> float | None:
        """(response, principle) checks per second over the median pass."""
        rate = self.responses_per_second
        return None if rate is None else rate * len(self.principles)


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --- judge evaluation --------------------------------------------------------------------------------


# --- attacks -----------------------------------------------------------------------------------------


# --- win rate and compliance -------------------------------------------------------------------------


# --- human review ------------------------------------------------------------------------------------


# --- benchmarks --------------------------------------------------------------------------------------
