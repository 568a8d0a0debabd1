"""KTO from unpaired rows, with TRL's KTOTrainer: each pair becomes a desirable and an undesirable answer.

KTO needs no pairs, only answers marked good or bad (`label`). The conversion keeps one row per
(conversation, answer): an answer that appears twice with the same label is kept once, and one that
is chosen in one pair and rejected in another is dropped as contradictory. Rows are shuffled with
the seed, because KTOTrainer estimates its KL term from each row's neighbour in a batch, which must
be another prompt's answer, not the same prompt's other answer. When the user sets neither
`desirable_weight` nor `undesirable_weight`, they are set so both sides weigh the same in total.

Soft labels (`train.kto.soft_labels: weight`, the default): each row's loss is scaled by its pair's
confidence 2·p_chosen - 1 (0 for a coin flip, 1 for a sure pair; an answer kept once for several
pairs takes their mean), so a judge pair the judge barely preferred pulls little. TRL 1.16 applies
`desirable_weight`/`undesirable_weight` inline in `KTOTrainer._compute_loss` as scalars times the
chosen and rejected losses, so `SoftLabelKTOTrainer` sets them, for the length of one batch, to
that batch's per-row tensors (in the same order TRL selects the rows). Copying the loss would drift.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from rlaif.errors import ConfigError, RlaifError
from rlaif.train.common import (
    StepTimer,
    check_liger,
    finish,
    load_pairs,
    load_policy,
    logged,
    policy_kwargs,
    quiet_libraries,
    run_training,
    trl_config,
)
from rlaif.train.model_card import card_settings, constitution_of, write_model_card
from rlaif.train.model_options import ModelOptions, model_options
from rlaif.train.reports import TrainResult

__all__ = ["DEFAULTS", "SoftLabels", "balanced_weights", "build_kto_trainer", "train_kto", "unpair"]

SoftLabels = Literal["off", "weight"]

DEFAULTS = {"per_device_train_batch_size": 4}
"""Our defaults for `KTOConfig`: KTO's KL estimate needs at least two rows per batch."""


def unpair(
    rows: Iterable[Mapping[str, Any]], *, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """TRL unpaired rows (`prompt`, `completion`, `label`) from preference rows, and what was done.

    Each row also has `weight`, its pair's confidence 2·p_chosen - 1 (1 when the row has no
    `p_chosen`); an answer kept once for several pairs takes their mean. The counts: `desirable`,
    `undesirable`, `duplicates` (same answer, same label, kept once) and `contradictory` (answers
    dropped because they were chosen in one pair and rejected in another).
    """
    labels: dict[tuple[str, str], set[bool]] = {}
    first: dict[tuple[str, str], dict[str, Any]] = {}
    confidences: dict[tuple[str, str], list[float]] = {}
    duplicates = 0
    for row in rows:
        p_chosen = row.get("p_chosen")
        confidence = 1.0 if p_chosen is None else 2 * float(p_chosen) - 1
        for side, label in (("chosen", True), ("rejected", False)):
            completion = list(row[side])
            key = (json.dumps(row["prompt"], sort_keys=True), json.dumps(completion, sort_keys=True))
            seen = labels.setdefault(key, set())
            duplicates += label in seen
            seen.add(label)
            confidences.setdefault(key, []).append(confidence)
            first.setdefault(key, {"prompt": list(row["prompt"]), "completion": completion, "label": label})
    contradictory = sum(len(seen) > 1 for seen in labels.values())
    kept = [
        {**first[key], "weight": sum(confidences[key]) / len(confidences[key])}
        for key, seen in labels.items()
        if len(seen) == 1
    ]
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


@contextlib.contextmanager
def row_weights(trainer: Any, labels: Any, weights: Any) -> Iterator[None]:
    """For one batch, `trainer.desirable_weight`/`undesirable_weight` as per-row tensors.

    TRL multiplies them with the chosen losses (rows whose label is true, in batch order) and the
    rejected losses (the others, in batch order), so the same selection here lines up row for row.
    """
    base = (trainer.desirable_weight, trainer.undesirable_weight)
    chosen = labels.to(device=weights.device, dtype=bool)
    trainer.desirable_weight = base[0] * weights[chosen]
    trainer.undesirable_weight = base[1] * weights[~chosen]
    try:
        yield
    finally:
        trainer.desirable_weight, trainer.undesirable_weight = base


def _soft_label_trainer(base: type) -> type:
    """KTOTrainer (or a subclass) that scales each row's loss by its `weight` column."""

    class SoftLabelKTOTrainer(base):  # type: ignore[misc, valid-type]
        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            if "weight" not in self._signature_columns:
                self._signature_columns.append("weight")

        def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
            inputs = dict(inputs)
            weights = inputs.pop("weight")
            device = inputs["input_ids"].device
            with row_weights(self, inputs["label"].to(device), weights.to(device)):
                return super()._compute_loss(model, inputs, return_outputs)

    return SoftLabelKTOTrainer


def _collator(trainer_args: Any, tokenizer: Any) -> Any:
    """TRL's unpaired collator, also batching each row's `weight`."""
    import torch
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    class SoftLabelCollator(DataCollatorForUnpairedPreference):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            batch = super().torch_call(examples)
            batch["weight"] = torch.tensor([float(e["weight"]) for e in examples], dtype=torch.float32)
            return batch

    return SoftLabelCollator(
        pad_token_id=tokenizer.pad_token_id, max_length=trainer_args.max_length,
        pad_to_multiple_of=trainer_args.pad_to_multiple_of,
    )  # fmt: skip


def build_kto_trainer(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("check", "judge", "revision"),
    seed: int = 0,
    soft_labels: SoftLabels = "weight",
    constitution: str | None = None,
    loading: ModelOptions | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The KTOTrainer for the exported pairs in `dataset_dir`, unpaired (see `unpair`), and what was done
    (with `constitution`: the given one or the data's, for the card)."""
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    if soft_labels not in ("off", "weight"):
        raise ConfigError(f"train.kto.soft_labels: {soft_labels!r} is not one of off, weight")
    pairs = load_pairs(dataset_dir, sources)
    columns = ["prompt", "chosen", "rejected"]
    if soft_labels == "weight":
        if "p_chosen" not in pairs.column_names:
            raise ConfigError(
                f"train.kto.soft_labels: weight needs the export's p_chosen column and {dataset_dir} "
                "has none; re-export (`rlaif export CONFIG`) or set train.kto.soft_labels: off"
            )
        columns.append("p_chosen")
    rows, counts = unpair(pairs.select_columns(columns), seed=seed)
    weights = balanced_weights(counts["desirable"], counts["undesirable"])
    if args and ("desirable_weight" in args or "undesirable_weight" in args):
        weights = {}
    config = trl_config(KTOConfig, "kto", output_dir, args, **DEFAULTS, **weights)
    check_liger(config, "kto", soft_labels=soft_labels, trainer=KTOTrainer)
    options = loading or model_options({}, section="kto")
    model, tokenizer = load_policy(model_path, policy_kwargs(config, options))
    if soft_labels == "off":
        rows = [{k: v for k, v in row.items() if k != "weight"} for row in rows]
    row_weight = [row["weight"] for row in rows if "weight" in row]
    common = {"model": model, "args": config, "train_dataset": Dataset.from_list(rows),
              "processing_class": tokenizer, "callbacks": [StepTimer()],
              "peft_config": options.peft_config}  # fmt: skip
    if soft_labels == "off":
        trainer = KTOTrainer(**common)
    else:
        trainer = _soft_label_trainer(KTOTrainer)(**common, data_collator=_collator(config, tokenizer))
    counts = {
        **counts,
        "soft_labels": soft_labels,
        "mean_weight": sum(row_weight) / len(row_weight) if row_weight else None,
        "desirable_weight": config.desirable_weight,
        "undesirable_weight": config.undesirable_weight,
        "constitution": constitution_of(pairs, constitution),
        "loading": options.describe(),
    }
    return trainer, counts


def train_kto(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("check", "judge", "revision"),
    seed: int = 0,
    soft_labels: SoftLabels = "weight",
    constitution: str | None = None,
    loading: ModelOptions | None = None,
) -> TrainResult:
    """Train with KTO on the exported pairs in `dataset_dir` (see `build_kto_trainer`) and save the model
    with its curves and a model card (`constitution`: the run's, for the card).

    `soft_labels: weight` scales each row's loss by its pair's confidence (see the module docstring);
    `off` is TRL's KTO as it is.
    """
    quiet_libraries()
    output_dir = Path(output_dir)
    trainer, counts = build_kto_trainer(
        dataset_dir, model_path=model_path, output_dir=output_dir, args=args, sources=sources,
        seed=seed, soft_labels=soft_labels, constitution=constitution, loading=loading,
    )  # fmt: skip
    made_under = counts.pop("constitution")  # the card's, not a metric
    described = counts.pop("loading")
    timer = next(c for c in trainer.callback_handler.callbacks if isinstance(c, StepTimer))
    seconds = run_training(trainer)
    result = finish(trainer, trainer.processing_class, output_dir, seconds, timer, base_model=model_path,
                    title="KTO")  # fmt: skip
    chosen = logged(result.log_history, "rewards/chosen")
    rejected = logged(result.log_history, "rewards/rejected")
    result.metrics |= {
        **counts,
        "reward_chosen_last": chosen[-1] if chosen else None,
        "reward_rejected_last": rejected[-1] if rejected else None,
    }
    write_model_card(
        result, label="KTO", base_model=model_path, trainer=f"TRL KTOTrainer (soft labels {soft_labels})",
        summary="A policy trained by rlaif with KTO on AI-feedback preference pairs taken apart into "
        "desirable and undesirable answers.",
        data={"pairs": str(Path(dataset_dir)), "sources": ", ".join(sources),
              "desirable answers": counts["desirable"], "undesirable answers": counts["undesirable"]},
        constitution=made_under, settings=card_settings(trainer.args, args), loading=described,
    )  # fmt: skip
    return result
