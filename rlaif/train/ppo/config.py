"""PPO's options, validated when the config is built."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PPOConfig"]


class PPOConfig(BaseModel):
    """Everything a PPO run needs besides the model, the prompts and the reward function."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    output_dir: Path
    """Where metrics, checkpoints and the final model (`output_dir/model`) go."""
    learning_rate: float = Field(1e-5, gt=0)
    """AdamW learning rate for the policy and the value head."""
    batch_size: int = Field(16, ge=1)
    """Rollouts (prompt, completion) per PPO step."""
    mini_batch_size: int = Field(4, ge=1)
    """Rollouts per gradient update; must divide `batch_size`."""
    ppo_epochs: int = Field(4, ge=1)
    """Passes over each step's rollouts."""
    gamma: float = Field(1.0, ge=0, le=1)
    """Discount; 1.0 because a completion is short and only its end is scored."""
    lam: float = Field(0.95, ge=0, le=1)
    """GAE lambda."""
    cliprange: float = Field(0.2, gt=0)
    """Policy ratio clip."""
    cliprange_value: float = Field(0.2, gt=0)
    """Value clip around the rollout-time values."""
    vf_coef: float = Field(0.1, ge=0)
    """Weight of the value loss."""
    ent_coef: float = Field(0.0, ge=0)
    """Weight of the entropy bonus."""
    init_kl_coef: float = Field(0.05, ge=0)
    """Starting KL penalty coefficient."""
    target_kl: float | None = Field(None, gt=0)
    """Target sequence KL for the adaptive controller; None keeps the coefficient fixed."""
    kl_horizon: int = Field(10000, ge=1)
    """Adaptive controller horizon, in rollouts."""
    whiten_advantages: bool = True
    """Normalise advantages over each step's tokens."""
    max_new_tokens: int = Field(64, ge=1)
    """Completion length limit."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature; log-probs are computed at the same temperature."""
    missing_eos_penalty: float | None = Field(None, ge=0)
    """Subtracted from the score of a completion that hit the length limit without EOS."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping."""
    seed: int = 0
    """Seeds initialisation, prompt order and sampling."""
    total_steps: int = Field(100, ge=1)
    """PPO steps in the run."""
    save_every: int = Field(0, ge=0)
    """Checkpoint every N steps (0: only the final model)."""
    keep_checkpoints: int = Field(2, ge=1)
    """How many of the newest checkpoints to keep."""
    use_chat_template: bool = True
    """Render each prompt as a user turn with the tokenizer's chat template."""
    device: str | None = None
    """Torch device; defaults to CUDA when available."""

    @model_validator(mode="after")
    def _minibatches_divide_batch(self) -> PPOConfig:
        if self.batch_size % self.mini_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of mini_batch_size {self.mini_batch_size}; "
                "pick a mini_batch_size that divides it"
            )
        return self
