"""The arithmetic of ensembles and reward heads: masked Bradley–Terry loss, bootstrap resamples, the
conservative reward (mean − λ·std across members), head weights and pairwise accuracy.

Scores are tensors shaped (members, rows, heads): one reward model of K members, each with H heads. A
single model is K = 1; a one-head model is H = 1. No model is loaded here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

__all__ = [
    "bootstrap_indices",
    "combine_heads",
    "conservative",
    "masked_pair_loss",
    "pairwise_accuracy",
]


def masked_pair_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, mask: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Bradley–Terry loss `-log σ(r_c - r_r - margin)` per (pair, head), averaged over the unmasked cells.

    `chosen`, `rejected` and `mask` are (pairs, heads); mask 1 where the pair was labelled under the
    head's principles, 0 where it was not (that head learns nothing from it). A batch with no unmasked
    cell gives a zero loss that still depends on the outputs (so backward works and moves nothing).
    """
    gap = chosen - rejected
    if margin is not None:
        gap = gap - margin.unsqueeze(-1)
    losses = -torch.nn.functional.logsigmoid(gap) * mask
    return losses.sum() / mask.sum().clamp(min=1.0)


def bootstrap_indices(size: int, *, seed: int, member: int) -> list[int]:
    """A bootstrap resample of `size` rows (drawn with replacement), sorted; seeded by (seed, member),
    so each member of an ensemble sees its own resample and a rerun sees the same one."""
    rng = random.Random(f"bootstrap:{seed}:{member}")
    return sorted(rng.randrange(size) for _ in range(size))


def combine_heads(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(members, rows, heads) scores → (members, rows): each member's weighted sum of its heads."""
    return (scores * weights.to(scores.dtype)).sum(dim=-1)


def conservative(
    scores: torch.Tensor, weights: torch.Tensor, penalty: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reward, mean, std) per row: the members' weighted head sum, its mean and standard deviation across
    members, and the reward `mean - penalty * std`.

    The std is the population one (divisor K): a single model has std 0, never NaN. The heads are
    combined within each member first, so the std is the disagreement about the reward actually used.
    """
    combined = combine_heads(scores, weights)
    mean = combined.mean(dim=0)
    std = combined.std(dim=0, correction=0)
    return mean - penalty * std, mean, std


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float | None:
    """Share of pairs whose chosen answer scores higher; a tie counts half; None when there are none."""
    if not chosen:
        return None
    won = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True))
    return won / len(chosen)
