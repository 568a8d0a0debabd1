"""`iterate:`: rounds of the whole loop (`rlaif iterate CONFIG`): round r generates with round r-1's
trained policy on its own prompts, trains, and is measured on held-out prompts; stop rules end it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlaif.config.base import Section

__all__ = ["IterateConfig", "RedTeamConfig", "StopConfig"]

RoundTrainer = Literal["dpo", "kto", "sft", "online", "ppo"]
"""The trainers whose output is a policy the next round can serve."""


class StopConfig(Section):
    """When the loop ends before `rounds`; each rule writes its figures down when it fires."""

    min_gain: float | None = Field(default=None, ge=-1, le=1)
    """Stop when the held-out "every check" pass rate rose less than this over the previous round (the
    base for round 1), e.g. 0.02; the gain's 95% Newcombe interval is recorded with it. None: never."""
    max_kl: float | None = Field(default=None, gt=0)
    """Stop when KL(round's policy ‖ base) on the held-out samples exceeds this (nats/token). None: never."""
    on_alert: bool = True
    """Stop when a hacking monitor alerts on the held-out answers (length drift, refusals, repetition;
    `train.monitors`); such a round is never the best one."""


class RedTeamConfig(Section):
    """New prompts between rounds: the policy is asked for prompts aimed at the principles with the
    lowest held-out pass rate, seeded by last round's failing training prompts (`prompts/red_team.jinja`)."""

    prompts: int = Field(default=8, ge=1, le=1000)
    """Prompts to ask for each round (fewer join: duplicates and bad lengths are dropped)."""
    principles: int = Field(default=2, ge=1)
    """How many of the lowest-passing checked principles to aim at."""
    seeds: int = Field(default=3, ge=0, le=20)
    """Last round's failing prompts shown as examples."""
    min_chars: int = Field(default=12, ge=1)
    """Shorter answers are not kept as prompts."""
    max_chars: int = Field(default=400, ge=1)
    """Longer answers are not kept as prompts."""
    max_tokens: int = Field(default=64, ge=1, le=4096)
    """Token limit of each generated prompt."""
    temperature: float = Field(default=1.0, gt=0)
    """Sampling temperature of the generated prompts."""

    @model_validator(mode="after")
    def _lengths(self) -> RedTeamConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})")
        return self


class IterateConfig(Section):
    """Rounds of generate → label → filter → train → evaluate, each in RUN_DIR/rounds/R/."""

    rounds: int = Field(ge=1, le=100)
    """How many rounds at most (the stop rules may end it sooner)."""
    heldout: str
    """Held-out prompts (JSONL) every round is measured on; none may be a training prompt (by id or text)."""
    heldout_limit: int | None = Field(default=None, ge=1)
    """Use the first N held-out prompts."""
    samples: int = Field(default=1, ge=1, le=16)
    """Held-out answers per prompt and model."""
    prompts_per_round: int | None = Field(default=None, ge=1)
    """Training prompts each round generates on; None: all of `prompts`."""
    selection: Literal["slice", "resample"] = "slice"
    """`slice`: round r takes the r-th consecutive slice (wrapping around); `resample`: a seeded random
    sample each round."""
    trainer: RoundTrainer = "dpo"
    """The trainer whose model the next round serves; it must be enabled in `train:` (the others are off
    in the rounds)."""
    reference: Literal["base", "previous"] = "previous"
    """DPO's frozen reference: `previous`, the model the round starts from (iterative DPO), or `base`,
    the first model every round."""
    stop: StopConfig = StopConfig()
    red_team: RedTeamConfig | None = None
    """New prompts aimed at the weakest principles join the next round; None: off."""
    review_each_round: bool = False
    """Each round's pairs must pass `review.gate` before it trains (people review RUN_DIR/rounds/R between
    rounds); false: the rounds run unattended, with no review gate."""
