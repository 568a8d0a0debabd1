"""DPO on exported pairs with TRL's DPOTrainer. Settings pass through to TRL's `DPOConfig`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.errors import ConfigError, RlaifError

__all__ = ["DPOResult", "load_policy", "quiet_libraries", "train_dpo", "training_defaults"]


@dataclass
class DPOResult:
    """What training did."""

    output_dir: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    log_history: list[dict[str, Any]] = field(default_factory=list)


def training_defaults(output_dir: Path) -> dict[str, Any]:
    """Settings TRL defaults badly for small or CPU runs; the user's `args` override each one."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 2,
        "learning_rate": 5e-6,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        # TRL configs default to bf16 and gradient checkpointing even on CPU (DESIGN.md).
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "use_cpu": not cuda,
        "max_length": 512,
        "seed": 0,
        "disable_tqdm": False,
    }


def quiet_libraries() -> None:
    """Hide per-file progress bars of datasets and transformers; the trainer's own bar stays."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def load_policy(model_path: str | Path) -> tuple[Any, Any]:
    """Model (fp32 on CPU) and tokenizer, with a pad token that is not EOS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        # SmolLM2 pads with EOS, which is also its turn separator: a mask built from pad ids would
        # hide every turn end. Pad with <|endoftext|> instead when the vocabulary has it.
        tokenizer.pad_token = (
            "<|endoftext|>" if "<|endoftext|>" in tokenizer.get_vocab() else tokenizer.eos_token
        )
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def train_dpo(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("judge", "revision"),
) -> DPOResult:
    """Train with DPO on the exported pairs in `dataset_dir` (a `datasets` folder) and save the model."""
    from datasets import load_from_disk
    from trl import DPOConfig, DPOTrainer

    quiet_libraries()

    output_dir = Path(output_dir)
    dataset_path = Path(dataset_dir)
    if not dataset_path.exists():
        raise RlaifError(f"no exported pairs at {dataset_path}; run `rlaif run` (or `rlaif export`) first")
    dataset = load_from_disk(str(dataset_path))
    dataset = dataset.filter(lambda row: row["source"] in sources)
    if len(dataset) == 0:
        raise RlaifError(
            f"no pairs from sources {list(sources)} in {dataset_path}; generate more or widen sources"
        )
    settings = {**training_defaults(output_dir), **(args or {})}
    try:
        config = DPOConfig(**settings)
    except TypeError as exc:
        raise ConfigError(f"train.dpo.args: {exc}; see TRL's DPOConfig for valid names") from None
    except ValueError as exc:
        raise ConfigError(f"train.dpo.args: {exc}") from None
    model, tokenizer = load_policy(model_path)
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    history = list(trainer.state.log_history)
    return DPOResult(
        output_dir=output_dir,
        steps=trainer.state.global_step,
        seconds=seconds,
        losses=[float(h["loss"]) for h in history if "loss" in h],
        log_history=history,
    )
