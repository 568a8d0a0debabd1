"""Scoring with a trained reward model: one model or an ensemble, one head or several, the same way.

`RewardScorer` loads a reward model folder (or an ensemble folder, see `train.ensemble`) and scores
conversations into a (members, rows, heads) tensor. `ModelReward` turns it into the reward RL uses:
heads combined with weights (`head_weights`, changeable without retraining), then the conservative
`mean - uncertainty_penalty * std` across members; it keeps the step's readings (ensemble disagreement,
per-head rewards) in `last_metrics` for PPO, and `trl_reward` logs them through TRL's `log_metric`.
`held_out_accuracy` measures each member, the ensemble and each head on held-out pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from rlaif.errors import ConfigError
from rlaif.train.ensemble import read_manifest
from rlaif.train.heads import head_mask
from rlaif.train.reports import HeadAccuracy, RewardAccuracy
from rlaif.train.reward_math import conservative, pairwise_accuracy

__all__ = ["ModelReward", "RewardScorer", "held_out_accuracy", "is_reward_model", "trl_reward"]

Conversation = Sequence[Mapping[str, str]]


def is_reward_model(folder: Path) -> bool:
    """Whether `folder` holds a saved reward model or ensemble."""
    return (folder / "config.json").exists() or (folder / "ensemble.json").exists()


class RewardScorer:
    """The members of a reward model (one, or K of an ensemble) with their shared tokenizer."""

    def __init__(
        self, models: Sequence[Any], tokenizer: Any, heads: Sequence[str], *, batch_size: int = 8,
        max_length: int = 2048, device: str | None = None,
    ) -> None:  # fmt: skip
        self.models = list(models)
        self.tokenizer = tokenizer
        self.heads = list(heads)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    @classmethod
    def load(
        cls, path: str | Path, *, batch_size: int = 8, max_length: int = 2048, device: str | None = None
    ) -> RewardScorer:
        """Load a reward model folder or an ensemble folder (fp32; CUDA when available)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        root = Path(path)
        manifest = read_manifest(root)
        folders = [root] if manifest is None else [root / m for m in manifest.members]
        for folder in folders:
            if not (folder / "config.json").exists():
                raise ConfigError(
                    f"{folder}: no config.json; point the reward model setting at a folder written by "
                    "`rlaif train reward`"
                )
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        models, heads = [], None
        for folder in folders:
            model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
            if not isinstance(getattr(model, "score", None), torch.nn.Module):
                raise ConfigError(
                    f"{folder}: {type(model).__name__} has no `score` head; use a causal-LM-based reward "
                    "model"
                )
            labels = model.config.num_labels
            names = ["reward"] if labels == 1 else [model.config.id2label[i] for i in range(labels)]
            if heads is not None and names != heads:
                raise ConfigError(
                    f"{folder}: heads {names} differ from the other members' {heads}; retrain the ensemble"
                )
            heads = names
            models.append(model.to(device).eval())
        tokenizer = AutoTokenizer.from_pretrained(root)  # an ensemble keeps its shared tokenizer at the root
        return cls(models, tokenizer, heads or ["reward"], batch_size=batch_size, max_length=max_length,
                   device=device)  # fmt: skip

    @torch.no_grad()
    def score(self, conversations: Sequence[Conversation]) -> torch.Tensor:
        """(members, rows, heads) scores of whole conversations (chat template applied, as TRL trains)."""
        texts = [_render(self.tokenizer, c) for c in conversations]
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"][-self.max_length :] for t in texts]
        out = torch.zeros((len(self.models), len(rows), len(self.heads)))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            width = max(len(r) for r in batch)
            input_ids = torch.zeros((len(batch), width), dtype=torch.long, device=self.device)
            attention_mask = torch.zeros_like(input_ids)
            for i, r in enumerate(batch):
                input_ids[i, : len(r)] = torch.tensor(r, device=self.device)
                attention_mask[i, : len(r)] = 1
            last = attention_mask.sum(dim=1) - 1
            for m, model in enumerate(self.models):
                # Pool at the last real token by attention mask, not by the model's own `input_ids != pad_id`
                # rule: with pad == EOS that rule skips a completion's closing EOS.
                backbone = getattr(model, model.base_model_prefix)
                hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                pooled = hidden[torch.arange(len(batch), device=self.device), last]
                out[m, start : start + len(batch)] = model.score(pooled).float().cpu()
        return out

    def weights(self, head_weights: Mapping[str, float] | None, *, key: str) -> torch.Tensor:
        """One weight per head from `head_weights` (missing heads weigh 0); None: the heads' mean."""
        if head_weights is None:
            return torch.full((len(self.heads),), 1.0 / len(self.heads))
        unknown = sorted(set(head_weights) - set(self.heads))
        if unknown:
            raise ConfigError(
                f"{key}: no head named {', '.join(map(repr, unknown))}; the reward model's heads are "
                f"{', '.join(self.heads)}"
            )
        return torch.tensor([float(head_weights.get(h, 0.0)) for h in self.heads])


class ModelReward:
    """A reward model as RL's reward: weighted heads, minus `uncertainty_penalty` × the members' std.

    Called as PPO's `reward_fn(prompts, completions)` (plain strings, one user turn each); `rewards`
    takes whole conversations. After each call `last_metrics` holds the batch's `reward/model_mean`
    (before the penalty), `reward/ensemble_std` (mean std across members) and `reward/head/NAME`.
    """

    def __init__(
        self, scorer: RewardScorer, *, head_weights: Mapping[str, float] | None = None,
        uncertainty_penalty: float = 0.0, key: str = "train.ppo",
    ) -> None:  # fmt: skip
        self.scorer = scorer
        self.head_weights = scorer.weights(head_weights, key=f"{key}.head_weights")
        self.penalty = uncertainty_penalty
        self.last_metrics: dict[str, float] = {}

    def rewards(self, conversations: Sequence[Conversation]) -> list[float]:
        scores = self.scorer.score(conversations)
        reward, mean, std = conservative(scores, self.head_weights, self.penalty)
        heads = scores.mean(dim=(0, 1))
        self.last_metrics = {
            "reward/model_mean": float(mean.mean()),
            "reward/ensemble_std": float(std.mean()),
            **{f"reward/head/{h}": float(v) for h, v in zip(self.scorer.heads, heads, strict=True)},
        }
        return [float(r) for r in reward]

    def __call__(self, prompts: list[str], completions: list[str]) -> list[float]:
        return self.rewards(
            [[{"role": "user", "content": p}, {"role": "assistant", "content": c}]
             for p, c in zip(prompts, completions, strict=True)]
        )  # fmt: skip


def trl_reward(reward: ModelReward) -> Any:
    """`reward` as a TRL reward function (RLOO, GRPO), logging its readings through `log_metric`."""

    def reward_model(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        conversations = []
        for prompt, completion in zip(prompts, completions, strict=True):
            turns = list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
            text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
            conversations.append([*turns, {"role": "assistant", "content": text}])
        values: list[float | None] = list(reward.rewards(conversations))
        log = kwargs.get("log_metric")
        if log is not None:
            for name, value in reward.last_metrics.items():
                log(name, value)
        return values

    return reward_model


def held_out_accuracy(
    scorer: RewardScorer, rows: Sequence[Mapping[str, Any]], groups: Mapping[str, frozenset[str]] | None
) -> RewardAccuracy:
    """Pairwise accuracy on held-out preference rows: of each member, of the ensemble's mean score and of
    each head. With heads (`groups`, in the scorer's head order) a pair is scored by the mean of the heads
    it was labelled under and counts for each of them; a pair under none of them is left out."""
    chosen = scorer.score([[*r["prompt"], *r["chosen"]] for r in rows])
    rejected = scorer.score([[*r["prompt"], *r["rejected"]] for r in rows])
    if groups is None:
        mask = torch.ones((len(rows), len(scorer.heads)))
    else:
        mask = torch.tensor([head_mask(r.get("principle_ids") or [], groups) for r in rows])
    counted = mask.sum(dim=1) > 0

    def accuracy(c: torch.Tensor, r: torch.Tensor, m: torch.Tensor) -> float | None:
        keep = m.sum(dim=1) > 0
        gap_c = ((c * m).sum(dim=1) / m.sum(dim=1).clamp(min=1))[keep]
        gap_r = ((r * m).sum(dim=1) / m.sum(dim=1).clamp(min=1))[keep]
        return pairwise_accuracy(gap_c.tolist(), gap_r.tolist())

    members = [accuracy(chosen[k], rejected[k], mask) for k in range(len(scorer.models))]
    mean_c, mean_r = chosen.mean(dim=0), rejected.mean(dim=0)
    heads = {}
    if len(scorer.heads) > 1:
        for index, name in enumerate(scorer.heads):
            only = torch.zeros_like(mask)
            only[:, index] = mask[:, index]
            heads[name] = HeadAccuracy(
                pairs=int(mask[:, index].sum()), accuracy=accuracy(mean_c, mean_r, only)
            )
    return RewardAccuracy(
        pairs=int(counted.sum()), members=members, ensemble=accuracy(mean_c, mean_r, mask), heads=heads
    )


def _render(tokenizer: Any, conversation: Conversation) -> str:
    messages = [{"role": m["role"], "content": m["content"]} for m in conversation]
    if tokenizer.chat_template is None:
        return "".join(m["content"] for m in messages)
    return str(tokenizer.apply_chat_template(messages, tokenize=False))
