"""Supervised Constitutional AI: fine-tune on the final revisions with TRL's SFTTrainer.

Each exported SFT row (`messages`: the conversation, then the final revision) becomes a conversational
prompt-completion row, so the loss covers the revision only, not the red-team prompt. Settings pass
through to TRL's `SFTConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.errors import RlaifError
from rlaif.train.common import (
    StepTimer,
    finish,
    load_export,
    load_policy,
    policy_kwargs,
    quiet_libraries,
    run_training,
    trl_config,
)
from rlaif.train.model_card import card_settings, constitution_of, write_model_card
from rlaif.train.model_options import ModelOptions, model_options
from rlaif.train.reports import TrainResult

__all__ = ["DEFAULTS", "sft_example", "train_sft"]

DEFAULTS = {"learning_rate": 1e-5}
"""Our defaults for `SFTConfig` (over `training_defaults`); `train.sft.args` override them."""


def sft_example(messages: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """A `messages` row as TRL prompt-completion: everything before the last turn, and the last turn."""
    if not messages or messages[-1]["role"] != "assistant":
        raise RlaifError("an SFT row must end with the assistant's answer (the final revision)")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def train_sft(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    constitution: str | None = None,
    loading: ModelOptions | None = None,
) -> TrainResult:
    """Fine-tune on the exported revisions in `dataset_dir` (the `sft` datasets folder) and save the model
    with its curves and a model card (`constitution`: the run's, for the card; `loading`: `train.model`)."""
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()
    output_dir = Path(output_dir)
    path = Path(dataset_dir)
    if not path.exists():
        raise RlaifError(f"no exported SFT rows at {path}; run `rlaif run` (revise and export) first")
    rows = load_export(path)
    if len(rows) == 0:
        raise RlaifError(f"{path} holds no revisions; enable revise and run `rlaif run` first")
    dataset = rows.map(lambda row: sft_example(row["messages"]), remove_columns=rows.column_names)
    config = trl_config(SFTConfig, "sft", output_dir, args, **DEFAULTS)
    options = loading or model_options({}, section="sft")
    model, tokenizer = load_policy(model_path, policy_kwargs(config, options))
    timer = StepTimer()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[timer],
        peft_config=options.peft_config,
    )
    seconds = run_training(trainer)
    result = finish(trainer, tokenizer, output_dir, seconds, timer, base_model=model_path, title="SFT")
    result.metrics |= {"rows": len(dataset), "completion_only_loss": trainer.completion_only_loss}
    write_model_card(
        result, label="SFT", base_model=model_path, trainer="TRL SFTTrainer",
        summary="A policy fine-tuned by rlaif on its own critiqued-and-revised answers (supervised "
        "Constitutional AI); the loss covers the final revision only.",
        data={"revisions": str(path), "rows": len(dataset)}, constitution=constitution_of(rows, constitution),
        settings=card_settings(config, args), loading=options.describe(),
    )  # fmt: skip
    return result
