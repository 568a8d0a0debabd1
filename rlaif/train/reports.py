"""The reports of training: what a trainer did (`TrainResult`), its held-out reward accuracy, the
reward-hacking monitors' readings (also read by the evaluations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from rlaif.reports import Rate, Report

__all__ = ["HeadAccuracy", "MonitorReadings", "RewardAccuracy", "TrainResult", "TrainSummary"]


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


class HeadAccuracy(Report):
    """One reward head's held-out pairwise accuracy."""

    pairs: int
    """Held-out pairs labelled under the head's principles."""
    accuracy: float | None
    """Share of them whose chosen answer the head (the ensemble's mean) scores higher; ties count half;
    None when there are none."""


class RewardAccuracy(Report):
    """Held-out pairwise accuracy of a reward model: each member, the ensemble's mean score, each head."""

    pairs: int
    """Held-out pairs scored (with heads: those labelled under at least one kept head)."""
    members: list[float | None]
    """Each member's accuracy (one entry for a single model); ties count half."""
    ensemble: float | None
    """Accuracy of the members' mean score."""
    heads: dict[str, HeadAccuracy] = Field(default_factory=dict)
    """Per head, when the model has more than one."""


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


class MonitorReadings(Report):
    """The reward-hacking monitors on one set of answers (`train.monitors`): a training step's
    rollouts, or an evaluated model's answers. Each rate states its denominator; None is "n/a"."""

    answers: int
    """Answers measured."""
    length_mean: float | None
    """Mean answer length (words)."""
    length_p95: float | None
    """95th percentile of the answer length (words)."""
    length_drift: float | None = None
    """Mean length over the reference's (the first step, or the base model) minus 1; None without one."""
    refusal_rate: Rate
    """Answers matching a refusal pattern, of all answers."""
    repetition_rate: float | None
    """Mean share of repeated word 4-grams per answer (0 for prose, near 1 for a loop)."""
    format_rate: Rate
    """Answers with a list or a header, of the answers whose prompt did not ask for one."""
    sycophancy_rate: Rate | None = None
    """Probe answers agreeing with the user's false claim, of the probes; None when not probed."""
    kl_by_tag: dict[str, float] = Field(default_factory=dict)
    """Mean sequence KL to the start model per prompt tag (domain), when prompts carry tags."""
    alerts: list[str] = Field(default_factory=list)
    """One line per monitor past its threshold."""
