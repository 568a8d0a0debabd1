"""KTO from unpaired rows, with TRL's KTOTrainer: each pair becomes a desirable and an undesirable answer.

KTO needs no pairs, only answers marked good or bad (`label`). The conversion keeps one row per
(conversation, answer): an answer that appears twice with the same label is kept once, and one that
is chosen in one pair and rejected in another is dropped as contradictory. Rows are shuffled with
the seed, because KTOTrainer estimates its KL term from each row's neighbour in a batch, which must
be another prompt's answer, not the same prompt's other answer. When the user sets neither
`desirable_weight` nor `undesirable_weight`, they are set so both sides weigh the same in total.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif.errors import RlaifError
from rlaif.reports import TrainResult
from rlaif.train.common import (
    StepTimer,
    finish,
    load_pairs,
    load_policy,
    logged,
    quiet_libraries,
    run_training,
    trl_config,
)

__all__ = ["DEFAULTS", "balanced_weights", "train_kto", "unpair"]

DEFAULTS = {"per_device_train_batch_size": 4}
"""Our defaults for `KTOConfig`: KTO's KL estimate needs at least two rows per batch."""


def unpair(
    rows: Iterable[Mapping[str, Any]], *, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """TRL unpaired rows (`prompt`, `completion`, `label`) from preference rows, and what was done.

    The counts: `desirable`, `undesirable`, `duplicates` (same answer, same label, kept once) and
    `contradictory` (answers dropped because they were chosen in one pair and rejected in another).
    """
    labels: dict[tuple[str, str], set[bool]] = {}
    first: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates = 0
    for row in rows:
        for side, label in (("chosen", True), ("rejected", False)):
            completion = list(row[side])
            key = (json.dumps(row["prompt"], sort_keys=True), json.dumps(completion, sort_keys=True))
            seen = labels.setdefault(key, set())
            duplicates += label in seen
            seen.add(label)
            first.setdefault(key, {"prompt": list(row["prompt"]), "completion": completion, "label": label})
    contradictory = sum(len(seen) > 1 for seen in labels.values())
    kept = [first[key] for key, seen in labels.items() if len(seen) == 1]
    random.Random(seed).shuffle(kept)
    counts = {
        "desirable": sum(r["label"] for r in kept),
        "undesirable": sum(not r["label"] for r in kept),
        "duplicates": duplicates,
        "contradictory": contradictory,
    }
    return kept, counts


def balanced_weights(desirable: int, undesirable: int) -> dict[str, float]:
    """Weights with `desirable_weight * desirable == undesirable_weight * undesirable`, the smaller one 1."""
    if desirable == 0 or undesirable == 0:
        raise RlaifError(
            f"KTO needs both desirable and undesirable answers (got {desirable} and {undesirable})"
        )
    if desirable >= undesirable:
        return {"desirable_weight": 1.0, "undesirable_weight": desirable / undesirable}
    return {"desirable_weight": undesirable / desirable, "undesirable_weight": 1.0}


def train_kto(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("judge", "revision"),
    seed: int = 0,
) -> TrainResult:
    """Train with KTO on the exported pairs in `dataset_dir`, unpaired (see `unpair`), and save the model."""
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    quiet_libraries()
    output_dir = Path(output_dir)
    pairs = load_pairs(dataset_dir, sources)
    rows, counts = unpair(pairs.select_columns(["prompt", "chosen", "rejected"]), seed=seed)
    weights = balanced_weights(counts["desirable"], counts["undesirable"])
    if args and ("desirable_weight" in args or "undesirable_weight" in args):
        weights = {}
    config = trl_config(KTOConfig, "kto", output_dir, args, **DEFAULTS, **weights)
    model, tokenizer = load_policy(model_path)
    timer = StepTimer()
    trainer = KTOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    seconds = run_training(trainer)
    result = finish(trainer, tokenizer, output_dir, seconds, timer)
    chosen = logged(result.log_history, "rewards/chosen")
    rejected = logged(result.log_history, "rewards/rejected")
    result.metrics = {
        **counts,
        "desirable_weight": config.desirable_weight,
        "undesirable_weight": config.undesirable_weight,
        "reward_chosen_last": chosen[-1] if chosen else None,
        "reward_rejected_last": rejected[-1] if rejected else None,
    }
    return result
