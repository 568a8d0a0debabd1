"""What every trainer shares: safe CPU defaults for TRL configs, loading, results, model cards."""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rlaif.errors import ConfigError, RlaifError
from rlaif.reports import TrainResult

__all__ = [
    "StepTimer",
    "finish",
    "load_export",
    "load_pairs",
    "load_policy",
    "load_tokenizer",
    "logged",
    "quiet_libraries",
    "run_training",
    "split_by_prompt",
    "training_defaults",
    "trl_config",
    "write_model_card",
]


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
        # TRL configs default to bf16 and gradient checkpointing even on CPU, where both slow training down.
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "use_cpu": not cuda,
        "max_length": 512,
        "seed": 0,
        "disable_tqdm": False,
    }


def trl_config(
    config_class: type[Any], section: str, output_dir: Path, args: dict[str, Any] | None, **defaults: Any
) -> Any:
    """A TRL config from our defaults, then `defaults`, then the user's `args` (`train.<section>.args`).

    Defaults the class has no field for are left out (RLOO has no `max_length`); the user's names are
    passed as they are, so a misspelt one fails here with TRL's own message.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    merged = {**training_defaults(output_dir), **defaults}
    settings = {k: v for k, v in merged.items() if k in fields}
    for key, value in (args or {}).items():
        default = fields[key].default if key in fields else None
        if isinstance(value, str) and isinstance(default, int | float) and _number(value):
            # YAML 1.1 reads 2e-5 (no dot) as text: TRL would fail later with a bare TypeError.
            raise ConfigError(
                f"train.{section}.args.{key}: {value!r} is text, not a number (YAML reads exponents "
                f"without a dot as text); write it as {float(value)!r} or with a dot, e.g. 2.0e-5"
            )
    settings.update(args or {})
    try:
        return config_class(**settings)
    except TypeError as exc:
        raise ConfigError(
            f"train.{section}.args: {exc}; see TRL's {config_class.__name__} for valid names"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"train.{section}.args: {exc}") from None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def quiet_libraries() -> None:
    """Hide per-file progress bars of datasets and transformers; the trainer's own bar stays."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def load_tokenizer(model_path: str | Path) -> Any:
    """The model's tokenizer, with a pad token that is not EOS."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        # SmolLM2 pads with EOS, which is also its turn separator: a mask built from pad ids would
        # hide every turn end. Pad with <|endoftext|> instead when the vocabulary has it.
        tokenizer.pad_token = (
            "<|endoftext|>" if "<|endoftext|>" in tokenizer.get_vocab() else tokenizer.eos_token
        )
    return tokenizer


def load_policy(model_path: str | Path) -> tuple[Any, Any]:
    """Causal LM (fp32 on CPU, bf16 on CUDA) and tokenizer, with a pad token that is not EOS."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_path)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_export(path: Path) -> Any:
    """The `train` split of an exported `datasets` folder (all of an export from before the split); a
    damaged one (truncated `.arrow`, broken JSON) is one clear error.

    Held in memory: the trainers' `filter` and `map` (TRL's tokenizing too) would otherwise write their
    `cache-*.arrow` files into the export folder, which is what a person uploads or pushes.
    """
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path), keep_in_memory=True)
        if isinstance(loaded, DatasetDict):
            if "train" not in loaded:
                raise KeyError(f"no train split (splits: {', '.join(loaded)})")
            loaded = loaded["train"]
        return loaded
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # pyarrow reports a truncated file as OSError, datasets a broken state.json as ValueError
        raise RlaifError(
            f"cannot read the exported dataset at {path} ({type(exc).__name__}: {exc}); "
            "it is damaged: re-export it with `rlaif export CONFIG`"
        ) from None


def load_pairs(dataset_dir: str | Path, sources: Sequence[str] = ("judge", "revision")) -> Any:
    """The exported pairs (a `datasets` folder) from the given sources; raises when there are none."""

    path = Path(dataset_dir)
    if not path.exists():
        raise RlaifError(f"no exported pairs at {path}; run `rlaif run` (or `rlaif export`) first")
    dataset = load_export(path)
    if "source" in dataset.column_names:
        dataset = dataset.filter(lambda row: row["source"] in sources)
    if len(dataset) == 0:
        raise RlaifError(f"no pairs from sources {list(sources)} in {path}; generate more or widen sources")
    return dataset


def split_by_prompt(dataset: Any, fraction: float, *, seed: int = 0) -> tuple[Any, Any | None]:
    """(train, held-out) with every prompt's rows on one side, so no prompt is seen in both.

    The held-out side gets `ceil(fraction * prompts)` prompts, at least one, but never all of them;
    with `fraction` 0 or a single prompt there is no held-out set (None).
    """
    prompt_ids = sorted(set(dataset["prompt_id"]))
    if fraction <= 0 or len(prompt_ids) < 2:
        return dataset, None
    count = min(max(1, math.ceil(fraction * len(prompt_ids))), len(prompt_ids) - 1)
    held = set(random.Random(seed).sample(prompt_ids, count))
    flags = [pid in held for pid in dataset["prompt_id"]]
    train = dataset.select([i for i, f in enumerate(flags) if not f])
    held_out = dataset.select([i for i, f in enumerate(flags) if f])
    return train, held_out


class StepTimer(TrainerCallback):
    """Records the wall time of every optimizer step."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self._started)


def finish(trainer: Any, tokenizer: Any, output_dir: Path, seconds: float, timer: StepTimer) -> TrainResult:
    """Save model and tokenizer, and collect the trainer's history into a `TrainResult`."""
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    history = list(trainer.state.log_history)
    return TrainResult(
        output_dir=output_dir,
        steps=trainer.state.global_step,
        seconds=seconds,
        losses=[float(h["loss"]) for h in history if "loss" in h],
        log_history=history,
        step_seconds=list(timer.seconds),
    )


def run_training(trainer: Any) -> float:
    """Train and return the seconds it took."""
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def logged(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    """Every logged value of `key`, in order."""
    return [float(h[key]) for h in history if key in h and h[key] is not None]


def write_model_card(
    output_dir: Path,
    *,
    title: str,
    base_model: str | Path,
    trainer: str,
    summary: str,
    data: dict[str, Any],
    results: dict[str, Any],
    settings: dict[str, Any],
    usage: str,
    tags: Sequence[str] = (),
) -> Path:
    """A model card (README.md): what the model is, the data it saw, held-out results and settings."""
    from importlib import metadata

    from rlaif._version import __version__
    from rlaif.store import write_atomic

    versions = {"rlaif": __version__}
    for name in ("trl", "transformers", "torch", "datasets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    lines = [
        "---",
        "library_name: transformers",
        f"tags: [{', '.join(['rlaif', 'trl', *tags])}]",
        "---",
        f"# {title}",
        "",
        summary,
        "",
        f"- base model: `{base_model}`",
        f"- trainer: {trainer}",
        "",
        "## Training data",
        *[f"- {k}: {_fmt(v)}" for k, v in data.items()],
        "",
        "## Results",
        *([f"- {k}: {_fmt(v)}" for k, v in results.items()] or ["- none recorded"]),
        "",
        "## Settings",
        *[f"- `{k}`: {_fmt(v)}" for k, v in sorted(settings.items())],
        "",
        "## Use",
        "```python",
        usage.strip(),
        "```",
        "",
        "## Versions",
        *[f"- {k} {v}" for k, v in versions.items()],
        "",
    ]
    path = output_dir / "README.md"
    write_atomic(path, "\n".join(lines))
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
