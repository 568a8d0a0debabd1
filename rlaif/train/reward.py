"""A reward model from the exported pairs, with TRL's RewardTrainer (Bradley-Terry loss).

With `use_margin`, each pair carries a margin from the judge's soft label: the loss becomes
`-log σ(r_chosen - r_rejected - margin)`, asking for a wider reward gap where the judge was surer.
The margin is the gap Bradley-Terry implies, `logit(score)`, with the score capped at `MARGIN_CAP`
so revision pairs (score 1.0) stay finite. Pairs of some prompts are held out (no prompt on both
sides) and pairwise accuracy on them is measured before and after training. The model is saved
with its tokenizer and a model card.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif.reports import TrainResult
from rlaif.train.card import card_settings, constitution_of, write_model_card
from rlaif.train.common import (
    StepTimer,
    finish,
    load_pairs,
    load_tokenizer,
    logged,
    quiet_libraries,
    run_training,
    split_by_prompt,
    trl_config,
)

__all__ = ["DEFAULTS", "MARGIN_CAP", "margin_from_score", "train_reward"]

DEFAULTS = {"learning_rate": 1e-5}
"""Our defaults for `RewardConfig` (over `training_defaults`); `train.reward.args` override them."""

MARGIN_CAP = 0.95
"""Scores above this give the same margin, logit(0.95) ≈ 2.94."""


def margin_from_score(score: float, *, cap: float = MARGIN_CAP) -> float:
    """The gap Bradley-Terry implies for P(chosen better) = `score`: logit(score), in [0, logit(cap)]."""
    p = min(max(score, 0.5), cap)
    return math.log(p / (1.0 - p))


def train_reward(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("judge", "revision"),
    use_margin: bool = False,
    eval_fraction: float = 0.1,
    seed: int = 0,
    constitution: str | None = None,
) -> TrainResult:
    """Train a reward model on the exported pairs in `dataset_dir`; save it with tokenizer, curves and card.

    Args:
        dataset_dir: the `pairs` datasets folder of an export.
        model_path: the model the reward model starts from (a causal LM folder; a score head is added).
        output_dir: where the reward model goes.
        args: TRL `RewardConfig` keyword arguments.
        sources: which pairs to use (`judge`, `revision`).
        use_margin: add the margin from each pair's soft label (see `margin_from_score`).
        eval_fraction: share of prompts whose pairs are held out for pairwise accuracy; 0 holds none out.
        seed: seed of the held-out split.
        constitution: the run's constitution, for the card (default: the hashes in the data).
    """
    from trl import RewardConfig, RewardTrainer

    quiet_libraries()
    output_dir = Path(output_dir)
    pairs = load_pairs(dataset_dir, sources)
    columns = ["prompt", "chosen", "rejected"]
    if use_margin:
        pairs = pairs.map(lambda row: {"margin": margin_from_score(row["score"])})
        columns.append("margin")
    train, held_out = split_by_prompt(pairs, eval_fraction, seed=seed)
    config = trl_config(RewardConfig, "reward", output_dir, args, **{**DEFAULTS, "seed": seed})
    tokenizer = load_tokenizer(model_path)
    timer = StepTimer()
    # A model path (not an instance): TRL seeds before adding the random score head and loads fp32.
    trainer = RewardTrainer(
        model=str(model_path),
        args=config,
        train_dataset=train.select_columns(columns),
        eval_dataset=None if held_out is None else held_out.select_columns(columns),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    before = trainer.evaluate() if held_out is not None else {}
    seconds = run_training(trainer)
    after = trainer.evaluate() if held_out is not None else {}
    result = finish(trainer, tokenizer, output_dir, seconds, timer, base_model=model_path,
                    title="reward model")  # fmt: skip
    accuracies = logged(result.log_history, "accuracy")
    result.metrics = {
        "train_pairs": len(trainer.train_dataset),
        "eval_pairs": 0 if held_out is None else len(trainer.eval_dataset),
        "use_margin": use_margin,
        "train_accuracy_first": accuracies[0] if accuracies else None,
        "train_accuracy_last": accuracies[-1] if accuracies else None,
        "eval_accuracy_before": before.get("eval_accuracy"),
        "eval_accuracy": after.get("eval_accuracy"),
        "eval_loss_before": before.get("eval_loss"),
        "eval_loss": after.get("eval_loss"),
        "eval_margin": after.get("eval_margin"),
    }
    write_model_card(
        result,
        label="Reward model",
        base_model=model_path,
        trainer="TRL RewardTrainer (Bradley-Terry"
        + (", margin from the judge's soft label)" if use_margin else ")"),
        summary="A reward model trained by rlaif on AI-feedback preference pairs: it scores a whole "
        "conversation (chat template applied) with one number; higher means preferred.",
        data={
            "pairs": str(Path(dataset_dir)),
            "sources": ", ".join(sources),
            "training pairs": result.metrics["train_pairs"],
            "held-out pairs (whole prompts held out)": result.metrics["eval_pairs"],
        },
        constitution=constitution_of(pairs, constitution),
        results={
            k: v
            for k, v in {
                "held-out pairwise accuracy before training": result.metrics["eval_accuracy_before"],
                "held-out pairwise accuracy after training": result.metrics["eval_accuracy"],
                "held-out loss": result.metrics["eval_loss"],
            }.items()
            if v is not None
        },
        settings=card_settings(config, args),
        usage=f"""
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{output_dir}")
model = AutoModelForSequenceClassification.from_pretrained("{output_dir}")
messages = [{{"role": "user", "content": "Hi"}}, {{"role": "assistant", "content": "Hello! How can I help?"}}]
ids = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)
with torch.no_grad():
    print(model(**ids).logits[0, 0].item())
""",
        tags=["reward-model"],
    )
    return result
