"""DPO on exported pairs with TRL's DPOTrainer. Settings pass through to TRL's `DPOConfig`.

`loss_type` picks the DPO-family loss TRL 1.16 has (sigmoid, sigmoid_norm, ipo, robust, hinge,
exo_pair, nca_pair, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, or a
list of them with `loss_weights`); `beta` the strength of the pull towards the reference. KTO, which
needs no pairs, is in `rlaif.train.kto`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

__all__ = ["DEFAULTS", "train_dpo"]

DEFAULTS: dict[str, object] = {}
"""Our defaults for `DPOConfig` over `training_defaults` (none)."""


def train_dpo(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("judge", "revision"),
) -> TrainResult:
    """Train with DPO on the exported pairs in `dataset_dir` (a `datasets` folder) and save the model."""
    from trl import DPOConfig, DPOTrainer

    quiet_libraries()
    output_dir = Path(output_dir)
    dataset = load_pairs(dataset_dir, sources)
    dataset = dataset.select_columns(["prompt", "chosen", "rejected"])
    config = trl_config(DPOConfig, "dpo", output_dir, args, **DEFAULTS)
    model, tokenizer = load_policy(model_path)
    timer = StepTimer()
    trainer = DPOTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer]
    )
    seconds = run_training(trainer)
    result = finish(trainer, tokenizer, output_dir, seconds, timer)
    margins = logged(result.log_history, "rewards/margins")
    result.metrics = {
        "pairs": len(dataset),
        "loss_type": config.loss_type,
        "beta": config.beta,
        "margin_first": margins[0] if margins else None,
        "margin_last": margins[-1] if margins else None,
    }
    return result
