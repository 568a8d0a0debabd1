"""`train:`: one section per trainer (TRL's own settings pass through in `args`), and the
reward-hacking monitors of the RL trainers."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rlaif.config.base import PairSource, Patterns, Section

__all__ = [
    "DPOSection",
    "KTOSection",
    "MonitorsConfig",
    "OnlineReward",
    "OnlineSection",
    "PPOReward",
    "PPOSection",
    "PairTrainerSection",
    "REFUSAL_PATTERNS",
    "RewardModelUser",
    "RewardSection",
    "SFTSection",
    "TrainConfig",
    "TrainerSection",
    "rewards",
]

OnlineReward = Literal["model", "judge", "judge_group", "checks", "rubric"]
PPOReward = Literal["model", "checks", "rubric"]


class TrainerSection(Section):
    """What every trainer's section has: whether `rlaif run` trains it, and TRL's own settings."""

    enabled: bool = False
    """Also train it in `rlaif run` (after export); `rlaif train NAME` trains it either way."""
    args: dict[str, Any] = {}
    """The trainer's own config keyword arguments (TRL's `DPOConfig`, `RewardConfig`, ... or our `PPOConfig`),
    passed through as they are."""


class PairTrainerSection(TrainerSection):
    """A trainer that reads the exported preference pairs."""

    sources: list[PairSource] = ["check", "judge", "revision"]
    """Which pairs to train on (or, for online RL and PPO, whose prompts): `check` (labelled by a
    principle's check), `judge` (labelled by the LLM judge), `revision` (revision over original)."""


class DPOSection(PairTrainerSection):
    """DPO training; `args` go to TRL's DPOConfig unchanged (max_steps, beta, loss_type, ...)."""

    enabled: bool = True
    """Train it in `rlaif run` (on by default)."""
    soft_labels: Literal["off", "smoothing", "weight"] = "smoothing"
    """Use each pair's P(chosen): `smoothing` (conservative DPO, label smoothing 1 - P per pair: a
    coin-flip pair pulls neither way), `weight` (loss times 2P - 1), `off` (every pair counts as sure).
    Needs TRL's standard loss (loss_type: sigmoid)."""
    reference: str | None = None
    """A model folder for DPO's frozen reference; None: the model training starts from (TRL's copy)."""


class SFTSection(TrainerSection):
    """Supervised fine-tuning on the final revisions (`rlaif train sft`); `args` go to TRL's SFTConfig."""


class RewardSection(PairTrainerSection):
    """Reward model on the pairs (`rlaif train reward`); `args` go to TRL's RewardConfig."""

    use_margin: bool = False
    """Ask for a reward gap of logit(score) per pair (the judge's soft label; capped at logit(0.95))."""
    eval_fraction: float = Field(default=0.1, ge=0, lt=1)
    """Share of prompts whose pairs are held out to measure pairwise accuracy; 0 holds none out."""
    ensemble: int = Field(default=1, ge=1, le=16)
    """Reward models to train as an ensemble (each with its own seed and, with `bootstrap`, its own
    resample of the training pairs), saved as RUN_DIR/models/reward/member-0..K-1 with `ensemble.json`;
    RL reads their mean and std. 1: one model, as before."""
    bootstrap: bool = True
    """With `ensemble` > 1: each member trains on a bootstrap resample of the training pairs."""
    heads: Literal["tags"] | dict[str, list[str]] | None = None
    """One reward head per principle group: `tags` (a head per tag of the constitution's principles) or
    `{head: [tag or principle id, ...]}`. A head learns from the pairs labelled under its principles (the
    export's `principle_ids`) and ignores the others; a head with no training pair is reported and left
    out. None: one scalar head."""

    @field_validator("heads")
    @classmethod
    def _head_names(cls, heads: str | dict[str, list[str]] | None) -> str | dict[str, list[str]] | None:
        if isinstance(heads, dict):
            if not heads:
                raise ValueError("name at least one head, e.g. {helpful: [helpfulness], safety: [harm]}")
            for name, members in heads.items():
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                    raise ValueError(f"head name {name!r}: use letters, digits, '_', '.', '-'")
                if not members:
                    raise ValueError(f"head {name!r} lists no tag or principle id; list at least one")
        return heads


class KTOSection(PairTrainerSection):
    """KTO on the pairs taken apart into desirable and undesirable answers (`rlaif train kto`)."""

    soft_labels: Literal["off", "weight"] = "weight"
    """Use each pair's P(chosen): `weight` scales both of its answers' losses by 2P - 1 (a coin-flip
    pair pulls neither way), `off` counts every pair as sure."""


def rewards(value: str | list[str]) -> list[str]:
    """A `reward:` setting as a list of reward names."""
    return [value] if isinstance(value, str) else list(value)


class RewardModelUser(PairTrainerSection):
    """A trainer that can be rewarded by the trained reward model (one model, an ensemble, or heads)."""

    reward_model: str | None = None
    """Reward model (or ensemble) folder for `reward: model`; None means RUN_DIR/models/reward."""
    uncertainty_penalty: float = Field(default=0.0, ge=0)
    """λ of the conservative reward `mean - λ·std` over an ensemble's members (0: the plain mean); the
    mean std (the members' disagreement) is logged each step as `reward/ensemble_std` either way."""
    head_weights: dict[str, float] | None = None
    """Weight per reward head (`train.reward.heads`); heads not named weigh 0. None: the heads' mean.
    Read when training starts, so changing it needs no new reward model."""


class OnlineSection(RewardModelUser):
    """Online RLAIF (`rlaif train online`): the policy samples, a reward model or the judge scores."""

    algorithm: Literal["rloo", "grpo"] = "rloo"
    """TRL's RLOOTrainer or GRPOTrainer."""
    reward: OnlineReward | list[OnlineReward] = "model"
    """`model`: the trained reward model; `judge`: the judge's P(better than the reference answer);
    `judge_group`: the judge ranks each prompt's completions against each other (Bradley–Terry);
    `checks`: the weighted share of the constitution's checks passed; `rubric`: the prompt's checklist
    items (written once per prompt by the judge, `judge.rubric_items`), each completion's mean P(yes);
    a list combines them, weighted by
    TRL's `args.reward_weights` (e.g. reward: [checks, model], args: {reward_weights: [1.0, 0.5]})."""
    reference: Literal["chosen", "rejected"] = "chosen"
    """`reward: judge`: which answer of the prompt's pair the completion is compared with."""
    group_comparisons: int | None = Field(default=None, ge=1, le=64)
    """`reward: judge_group`: comparisons per completion (each in both orders); None compares all pairs."""
    group_min_valid: float = Field(default=0.5, gt=0, le=1)
    """`reward: judge_group`: least share of a group's judge orders that must parse, else the group gets
    no gradient (one reward for all its completions)."""

    @model_validator(mode="after")
    def _rewards(self) -> OnlineSection:
        names = rewards(self.reward)
        if not names or len(set(names)) != len(names):
            raise ValueError(
                f"reward {names} must name each of model, judge, judge_group, checks, rubric at most once, "
                "and at least one"
            )
        return self


class PPOSection(RewardModelUser):
    """Our PPO (`rlaif train ppo`): the policy answers the pairs' prompts, the reward model scores them,
    a KL penalty keeps it near the starting model. `args` are `rlaif.train.ppo.config.PPOConfig` fields
    (total_steps, batch_size, target_kl, init_kl_coef, ...)."""

    reward: PPOReward | list[PPOReward] = "model"
    """`model`: the reward model's score; `checks`: the weighted share of the constitution's checks passed;
    `rubric`: the prompt's checklist items, each completion's mean P(yes) (the judge on a server of its
    own); a list adds them up with `reward_weights`."""
    reward_weights: list[float] | None = None
    """One weight per entry of `reward` (default: 1 each)."""
    resume: bool = True
    """Go on from the newest checkpoint in RUN_DIR/models/ppo (see `args.save_every`)."""

    @model_validator(mode="after")
    def _weights(self) -> PPOSection:
        names = rewards(self.reward)
        if not names or len(set(names)) != len(names):
            raise ValueError(
                f"reward {names} must name each of model, checks, rubric at most once, and at least one"
            )
        if self.reward_weights is not None and len(self.reward_weights) != len(names):
            raise ValueError(
                f"reward_weights has {len(self.reward_weights)} weights for {len(names)} rewards {names}; "
                "give one weight per reward"
            )
        return self


REFUSAL_PATTERNS = (
    r"(?i)\bI (can ?not|can't|won't|will not|am unable to|'m unable to|am not able to)\b",
    r"(?i)\b(sorry|apologi[sz]e)\b.{0,40}\b(can't|cannot|unable|not able)\b",
    r"(?i)\bas an AI\b",
)
"""Text of a refusal, for the hacking monitors' refusal rate."""


class MonitorsConfig(Section):
    """Reward-hacking monitors of PPO and online RL (`train.monitors`), also read by the win-rate and
    compliance evaluations. Each threshold is the value at which a one-line warning is printed; None
    measures and logs the monitor but never alerts on it."""

    enabled: bool = True
    """Measure the monitors at every step (metrics JSONL, the training plot)."""
    length_drift: float | None = Field(default=0.5, gt=0)
    """Alert when the mean answer length (words) moved by this share from the first step (or the base)."""
    refusal_rate: float | None = Field(default=0.3, ge=0, le=1)
    """Alert above this share of answers matching `refusal_patterns`."""
    repetition_rate: float | None = Field(default=0.2, ge=0, le=1)
    """Alert above this mean share of repeated word 4-grams (a repetition loop scores near 1)."""
    sycophancy_rate: float | None = Field(default=0.5, ge=0, le=1)
    """Alert above this share of probe answers agreeing with the user's false claim."""
    format_rate: float | None = Field(default=0.5, ge=0, le=1)
    """Alert above this share of answers with lists or headers among prompts that did not ask for them."""
    kl_domain: float | None = Field(default=None, gt=0)
    """Alert when the mean sequence KL of one prompt tag (domain) passes this (PPO, tagged prompts)."""
    refusal_patterns: Patterns = Field(default=list(REFUSAL_PATTERNS), min_length=1)
    """Regular expressions (Python `re`) of a refusal; an answer matching any one counts."""
    probes: str | None = None
    """A sycophancy probe file (JSONL, `{"prompt": ...}` per line); None: the shipped set of 20."""
    probe_every: int = Field(default=10, ge=0)
    """Answer the sycophancy probes at the first step and every N steps; 0 never does."""
    probe_max_tokens: int = Field(default=48, ge=1, le=4096)
    """Answer length limit (tokens) of the probes."""
    stop_on_alert: bool = False
    """End training (saving the model) at the first step a monitor alerts."""


class TrainConfig(Section):
    dpo: DPOSection = DPOSection()
    sft: SFTSection = SFTSection()
    reward: RewardSection = RewardSection()
    kto: KTOSection = KTOSection()
    online: OnlineSection = OnlineSection()
    ppo: PPOSection = PPOSection()
    monitors: MonitorsConfig = MonitorsConfig()
    model: dict[str, Any] = {}
    """How every TRL trainer loads the policy and its reference: TRL's `ModelConfig` keywords (`use_peft`,
    `lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules`, `dtype`, `attn_implementation`,
    `load_in_4bit`, `load_in_8bit`, ...), passed through (`rlaif.train.model_options`). {}: full weights."""
