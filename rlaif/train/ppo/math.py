"""The arithmetic of PPO for language models, as pure tensor functions.

Shapes: per-token tensors are `(batch, response_len)`; `mask` is 1.0 on real response tokens and 0.0 on
padding. Masks always come from generation lengths, never from `input_ids == pad_id` (SmolLM2's pad
token is its EOS, which also ends every chat turn). Nothing here touches a model, so every function is
unit-tested against numbers worked out by hand.

References: Schulman et al. 2017 (PPO), Schulman et al. 2016 (GAE), Ziegler et al. 2019 (KL penalty and the
adaptive controller), Schulman's note "Approximating KL Divergence" (k1, k2, k3).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "AdaptiveKLController",
    "FixedKLController",
    "KLController",
    "entropy_from_logits",
    "gae",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "masked_mean",
    "masked_var",
    "masked_whiten",
    "policy_loss",
    "shape_rewards",
    "value_loss",
]


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` where `mask` is nonzero, over all elements or along `dim`.

    An all-zero mask gives 0 rather than NaN, so an empty minibatch cannot poison the loss.
    """
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def masked_var(values: torch.Tensor, mask: torch.Tensor, *, unbiased: bool = True) -> torch.Tensor:
    """Variance of `values` over the masked elements (Bessel-corrected unless `unbiased=False`)."""
    mask = mask.to(values.dtype)
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    if unbiased:
        count = mask.sum()
        var = var * count / (count - 1).clamp(min=1.0)
    return var


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True, eps: float = 1e-8
) -> torch.Tensor:
    """Normalise `values` to unit variance over the mask, and to zero mean if `shift_mean`.

    With `shift_mean=False` the mean is kept (only the scale changes): useful for rewards, whose sign
    carries meaning. Padding positions come back as 0.
    """
    mask = mask.to(values.dtype)
    mean = masked_mean(values, mask)
    whitened = (values - mean) * torch.rsqrt(masked_var(values, mask) + eps)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, right to left over each response.

    `delta_t = r_t + gamma * V_{t+1} - V_t` and `A_t = delta_t + gamma * lam * A_{t+1}`, with V and A taken
    as 0 past the last real token. Returns `(advantages, returns)` where `returns = advantages + values`
    (the value-function target); both are 0 on padding.
    """
    mask = mask.to(values.dtype)
    values = values * mask
    rewards = rewards * mask
    advantages = torch.zeros_like(values)
    next_value = torch.zeros_like(values[:, 0])
    next_advantage = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        # Multiplying by the mask resets the recursion on padding, so nothing leaks between responses.
        next_advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, (advantages + values) * mask


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 = log pi(x) - log ref(x): unbiased for KL(pi || ref) when x ~ pi, high variance, can be negative."""
    return logprobs - ref_logprobs


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k2 = (log pi(x) - log ref(x))^2 / 2: biased but low variance, always >= 0."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 = (r - 1) - log r with r = ref(x) / pi(x): unbiased when x ~ pi, low variance, always >= 0."""
    log_ratio = ref_logprobs - logprobs
    return torch.expm1(log_ratio) - log_ratio


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate loss (to minimise) and the fraction of tokens where clipping was active.

    Per token: `max(-A * r, -A * clamp(r, 1 - clip, 1 + clip))` with `r = exp(logprobs - old_logprobs)`,
    averaged over the mask. Clipping is "active" where the clamped term is the larger one, i.e. where the
    gradient is cut off.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
    return loss, clip_fraction


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss and the fraction of tokens where the clipped error was the larger one.

    `0.5 * max((V - R)^2, (V_clipped - R)^2)` averaged over the mask, where `V_clipped` keeps the new value
    within `clip` of the value at rollout time: the critic cannot jump far on one batch either.
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_error, clipped_error), mask)
    clip_fraction = masked_mean((clipped_error > unclipped_error).to(values.dtype), mask)
    return loss, clip_fraction


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution given by `logits`, over the last dimension.

    Uses `H = logsumexp(z) - sum(softmax(z) * z)`, which stays finite where probabilities underflow.
    """
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


def shape_rewards(
    score: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    kl_coef: float,
) -> torch.Tensor:
    """Per-token rewards: `-kl_coef * k1` on every real token, plus the sequence `score` on the last one.

    `score` has shape `(batch,)`. The KL term is k1, as in Ziegler et al.: summed over a response it is the
    sequence-level log-ratio the penalty is meant to price. A row with an empty mask gets no reward.
    """
    mask = mask.to(logprobs.dtype)
    rewards = -kl_coef * kl_k1(logprobs, ref_logprobs) * mask
    positions = torch.arange(mask.shape[1], device=mask.device, dtype=mask.dtype)
    last = (positions * mask).argmax(dim=1)
    has_tokens = mask.sum(dim=1) > 0
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards[rows, last] += torch.where(has_tokens, score.to(rewards.dtype), torch.zeros_like(rewards[:, 0]))
    return rewards


class KLController:
    """The KL coefficient `beta` of the reward penalty; `update` is called once per PPO step."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        """Adjust `value` after a step whose rollouts had mean sequence KL `current_kl`."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to restore this controller."""
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`."""
        self.value = float(state["value"])


class FixedKLController(KLController):
    """A constant KL coefficient."""

    def __init__(self, kl_coef: float) -> None:
        self.value = kl_coef


class AdaptiveKLController(KLController):
    """Ziegler et al. 2019's proportional controller, steering the observed KL towards `target`.

    `e = clip(KL / target - 1, -0.2, 0.2)` and `beta <- beta * (1 + e * n_steps / horizon)`, where `n_steps`
    counts the rollouts in the step. The clip keeps one noisy batch from moving beta by more than
    `0.2 * n_steps / horizon`.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        """Move `value` up if `current_kl > target`, down if below, proportionally to the error."""
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon
