"""The two pluggable halves of a PPO rollout: producing completions and scoring them.

A generator turns prompt token ids into completion token ids; a reward function turns (prompt, completion)
texts into one float each. The trainer owns neither choice: plain transformers `generate` and a trained
reward model are the defaults, a vLLM engine or a rule are drop-in replacements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rlaif.errors import ConfigError
from rlaif.records import Constitution

__all__ = [
    "HFGenerator", "RewardFn", "RolloutGenerator", "checks_scorer", "combined", "pair_prompts",
    "reward_model_scorer",
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


def combined(scorers: Sequence[RewardFn], weights: Sequence[float] | None = None) -> RewardFn:
    """Several rewards added up with weights (default 1 each)."""
    weights = list(weights) if weights is not None else [1.0] * len(scorers)

    def score(prompts: list[str], completions: list[str]) -> list[float]:
        columns = [scorer(prompts, completions) for scorer in scorers]
        return [sum(w * c[i] for w, c in zip(weights, columns, strict=True)) for i in range(len(completions))]

    return score


def reward_model_scorer(
    path: str | Path, *, batch_size: int = 8, max_length: int = 2048, device: str | None = None
) -> RewardFn:
    """A reward function backed by an `AutoModelForSequenceClassification` reward model folder.

    Each (prompt, completion) is rendered with the tokenizer's chat template as a user turn and an assistant
    turn, the same text TRL's RewardTrainer scores for conversational pairs, and the model's first logit at
    the last real token is the reward.

    Args:
        path: a folder written by the reward trainer (model and tokenizer).
        batch_size: sequences per forward pass.
        max_length: longer renderings are cut from the left, keeping the completion's end.
        device: defaults to CUDA when available.
    """
    folder = Path(path)
    if not (folder / "config.json").exists():
        raise ConfigError(
            f"{folder}: no config.json; point reward_model_scorer at a saved reward model folder"
        )
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    backbone = getattr(model, model.base_model_prefix, None)
    head = getattr(model, "score", None)
    if backbone is None or not isinstance(head, torch.nn.Module):
        raise ConfigError(
            f"{folder}: {type(model).__name__} has no `score` head; use a causal-LM-based reward model"
        )

    @torch.no_grad()
    def score(prompts: list[str], completions: list[str]) -> list[float]:
        texts = [_render(tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
        rewards: list[float] = []
        for start in range(0, len(texts), batch_size):
            rows = [
                tokenizer(t, add_special_tokens=False)["input_ids"][-max_length:]
                for t in texts[start : start + batch_size]
            ]
            width = max(len(r) for r in rows)
            input_ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
            attention_mask = torch.zeros_like(input_ids)
            for i, r in enumerate(rows):
                input_ids[i, : len(r)] = torch.tensor(r, device=device)
                attention_mask[i, : len(r)] = 1
            # Pool at the last real token by attention mask, not by the model's own `input_ids != pad_id`
            # rule: with pad == EOS that rule skips a completion's closing EOS.
            hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            last = attention_mask.sum(dim=1) - 1
            pooled = hidden[torch.arange(len(rows), device=device), last]
            rewards.extend(head(pooled)[:, 0].float().tolist())
        return rewards

    return score


def _render(tokenizer: PreTrainedTokenizerBase, prompt: str, completion: str) -> str:
    if tokenizer.chat_template is None:
        return prompt + completion
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False))
