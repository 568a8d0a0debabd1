"""The two pluggable halves of a PPO rollout: producing completions and scoring them.

A generator turns prompt token ids into completion token ids; a reward function turns (prompt, completion)
texts into one float each. The trainer owns neither choice: plain transformers `generate` and a trained
reward model are the defaults, a vLLM engine or a rule are drop-in replacements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import GenerationConfig, PreTrainedModel

from rlaif.errors import ConfigError
from rlaif.records import Constitution

__all__ = [
    "Combined", "HFGenerator", "RewardFn", "RolloutGenerator", "checks_scorer", "combined", "pair_prompts",
    "reward_model_scorer", "step_metrics",
]  # fmt: skip

RewardFn = Callable[[list[str], list[str]], list[float]]
"""`reward_fn(prompts, completions) -> scores`: one float per completion, higher is better."""


class RolloutGenerator(Protocol):
    """Samples one completion per prompt from the current policy.

    PPO's importance ratios assume the completion was drawn from `softmax(logits / temperature)` of the
    policy being trained, with no top-k, top-p or repetition penalty; a generator backed by another engine
    must sample that way and see the policy's latest weights before each call.
    """

    def generate(self, prompts: list[list[int]]) -> list[list[int]]:
        """Return, for each prompt's token ids, the completion's token ids.

        A completion that stopped ends with an EOS id; one cut off at the length limit does not. Nothing
        after the first EOS is returned.
        """
        ...


class HFGenerator:
    """Sampling with transformers `generate` on the policy itself (left padding, pure sampling)."""

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        max_new_tokens: int,
        temperature: float,
        eos_token_ids: Sequence[int],
        pad_token_id: int,
    ) -> None:
        self.model = model
        self.eos_token_ids = list(eos_token_ids)
        self.pad_token_id = pad_token_id
        # A fresh config, so a model's shipped defaults (top_k=50, repetition penalty...) cannot silently
        # change the distribution the completions come from.
        self.generation_config = GenerationConfig(
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            eos_token_id=self.eos_token_ids,
            pad_token_id=pad_token_id,
        )

    @torch.no_grad()
    def generate(self, prompts: list[list[int]]) -> list[list[int]]:
        """Sample one completion per prompt; see `RolloutGenerator.generate`."""
        width = max(len(p) for p in prompts)
        device = self.model.device
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long, device=device)
        attention_mask = torch.zeros_like(input_ids)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt, device=device)
            attention_mask[row, width - len(prompt) :] = 1
        output = self.model.generate(
            input_ids=input_ids, attention_mask=attention_mask, generation_config=self.generation_config
        )
        completions = []
        for row in output[:, width:].tolist():
            # Cut at the first EOS by position: the padding after it may be the EOS id too.
            end = next((i + 1 for i, token in enumerate(row) if token in self.eos_token_ids), len(row))
            completions.append(row[:end])
        return completions


def pair_prompts(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct prompts of exported preference rows, in first-seen order: each prompt's last user
    turn (PPO renders a prompt as one user turn)."""
    return list(dict.fromkeys(row["prompt"][-1]["content"] for row in rows))


def checks_scorer(constitution: Constitution) -> RewardFn:
    """The weighted share of the constitution's checks a completion passes, as PPO's reward (0.0 when
    every check errored: PPO needs a number; the checks' own errors are rare python-check failures)."""
    from rlaif.judging.checks import checkable, checks_score

    principles = checkable(constitution)
    if not principles:
        raise ConfigError(
            f"train.ppo.reward: checks needs principles with a `check:`, and constitution "
            f"{constitution.name!r} has none; add checks (see constitution/README.md) or use reward: model"
        )

    def score(prompts: list[str], completions: list[str]) -> list[float]:
        return [
            checks_score(principles, [{"role": "user", "content": prompt}], completion) or 0.0
            for prompt, completion in zip(prompts, completions, strict=True)
        ]

    return score


class Combined:
    """Several rewards added up with weights (default 1 each); `last_metrics` gathers theirs."""

    def __init__(self, scorers: Sequence[RewardFn], weights: Sequence[float] | None = None) -> None:
        self.scorers = list(scorers)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.scorers)
        self.last_metrics: dict[str, float] = {}

    def __call__(self, prompts: list[str], completions: list[str]) -> list[float]:
        columns = [scorer(prompts, completions) for scorer in self.scorers]
        self.last_metrics = {k: v for scorer in self.scorers for k, v in step_metrics(scorer).items()}
        return [
            sum(w * c[i] for w, c in zip(self.weights, columns, strict=True)) for i in range(len(completions))
        ]


def combined(scorers: Sequence[RewardFn], weights: Sequence[float] | None = None) -> RewardFn:
    """Several rewards added up with weights (default 1 each)."""
    return Combined(scorers, weights)


def step_metrics(reward_fn: RewardFn) -> dict[str, float]:
    """What a reward function reported about its last call (`last_metrics`: ensemble disagreement,
    per-head rewards), for the step's metrics; empty for a plain function."""
    return dict(getattr(reward_fn, "last_metrics", None) or {})


def reward_model_scorer(
    path: str | Path,
    *,
    batch_size: int = 8,
    max_length: int = 2048,
    device: str | None = None,
    head_weights: Mapping[str, float] | None = None,
    uncertainty_penalty: float = 0.0,
) -> RewardFn:
    """A reward function backed by a reward model folder or ensemble (`train.scoring.RewardScorer`).

    Each (prompt, completion) is rendered with the tokenizer's chat template as a user turn and an assistant
    turn, the same text TRL's RewardTrainer scores for conversational pairs; each member's heads are read at
    the last real token, combined with `head_weights` (default: their mean), and the reward is the members'
    mean minus `uncertainty_penalty` times their std. The returned `ModelReward` keeps each call's
    readings in `last_metrics`.

    Args:
        path: a folder written by the reward trainer (model and tokenizer, or an ensemble).
        batch_size: sequences per forward pass.
        max_length: longer renderings are cut from the left, keeping the completion's end.
        device: defaults to CUDA when available.
        head_weights: weight per head name; heads not named weigh 0.
        uncertainty_penalty: λ of the conservative reward `mean - λ·std`.
    """
    from rlaif.train.scoring import ModelReward, RewardScorer

    scorer = RewardScorer.load(path, batch_size=batch_size, max_length=max_length, device=device)
    return ModelReward(scorer, head_weights=head_weights, uncertainty_penalty=uncertainty_penalty)
