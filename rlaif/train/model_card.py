"""Model cards (the model folder's README.md): base model, data, constitution, settings, final metrics.

Every trainer writes one after saving, with Hub metadata in the YAML front matter and the curves
(`curves.png`) shown in the card. The constitution comes from the caller (the registry knows the
run's); a caller that does not say falls back to the `constitution_hash` column of the data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif.train.common import CURVES
from rlaif.train.curves import curve_series
from rlaif.train.reports import TrainResult

__all__ = ["CARD_SETTINGS", "card_settings", "constitution_of", "final_metrics", "write_model_card"]

CARD_SETTINGS = (
    "learning_rate", "lr_scheduler_type", "per_device_train_batch_size", "gradient_accumulation_steps",
    "max_steps", "num_train_epochs", "max_length", "max_completion_length", "num_generations", "beta",
    "loss_type", "center_rewards_coefficient", "seed",
)  # fmt: skip
"""TRL config fields a card lists (those the config class has), besides every one the user set."""

CAUSAL_LM_USAGE = """
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{folder}")
model = AutoModelForCausalLM.from_pretrained("{folder}")
ids = tokenizer.apply_chat_template([{{"role": "user", "content": "Hi"}}], add_generation_prompt=True,
                                    return_tensors="pt", return_dict=True)
out = model.generate(**ids, max_new_tokens=64)
print(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
"""


def card_settings(config: Any, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `CARD_SETTINGS` the config has and every key the user set, with the values the run used."""
    names = [*CARD_SETTINGS, *(k for k in args or {} if k not in CARD_SETTINGS)]
    return {name: getattr(config, name) for name in names if hasattr(config, name)}


def constitution_of(dataset: Any, given: str | None) -> str:
    """`given` (the run's constitution), else the distinct hashes in the data's `constitution_hash`."""
    if given:
        return given
    if "constitution_hash" in getattr(dataset, "column_names", ()):
        hashes = sorted({h for h in dataset["constitution_hash"] if h})
        if hashes:
            return "hash " + ", ".join(f"`{h}`" for h in hashes)
    return "not recorded"


def final_metrics(result: TrainResult) -> dict[str, Any]:
    """Steps, the loss's first and last value, each curve's last logged value, then the trainer's metrics."""
    found: dict[str, Any] = {"steps": result.steps}
    if result.losses:
        found["training loss first → last"] = f"{result.losses[0]:.4f} → {result.losses[-1]:.4f}"
    for _, series in curve_series(result.log_history):
        for key, points in series.items():
            if key != "loss":
                found[f"{key} (last logged)"] = points[-1][1]
    # the world size has its own line above (`_processes`)
    found.update({k: v for k, v in result.metrics.items() if v is not None and k != "world_size"})
    return found


def write_model_card(
    result: TrainResult,
    *,
    label: str,
    base_model: str | Path,
    trainer: str,
    summary: str,
    data: Mapping[str, Any],
    constitution: str,
    settings: Mapping[str, Any],
    results: Mapping[str, Any] | None = None,
    usage: str | None = None,
    tags: Sequence[str] = (),
    loading: str | None = None,
) -> Path:
    """The model card of `result` (`result.output_dir/README.md`), titled `label: FOLDER`.

    `loading` says how the model was loaded (`ModelOptions.describe`: LoRA and its settings, 4/8-bit,
    attention, dtype); a run of several processes says how many and the effective batch. Only rank 0
    writes it (the path is returned on every rank).

    Results: `results` first (a trainer's own wording), then `final_metrics(result)`; the curves PNG is
    shown when the folder has one. `usage` is a Python snippet (default: load the folder as a causal LM
    and generate). The Hub's `base_model` metadata is written only for a Hub id, never a local folder.
    """
    from importlib import metadata

    from rlaif._version import DISTRIBUTION, __version__
    from rlaif.store import write_atomic
    from rlaif.train.distributed import ranks

    output_dir = Path(result.output_dir)
    path = output_dir / "README.md"
    if not ranks().main:
        return path
    results = {**(results or {}), **final_metrics(result)}
    curves = CURVES if (output_dir / CURVES).exists() else None
    versions = {DISTRIBUTION: __version__}
    for name in ("trl", "transformers", "torch", "datasets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    hub_id = not Path(base_model).expanduser().exists() and str(base_model).count("/") == 1
    lines = [
        "---",
        "library_name: transformers",
        *([f"base_model: {base_model}"] if hub_id else []),
        f"tags: [{', '.join(['rlaif', 'trl', *tags])}]",
        "---",
        f"# {label}: {output_dir.name}",
        "",
        summary,
        "",
        f"- base model: `{base_model}`",
        f"- trainer: {trainer}",
        *([f"- model loading: {loading}"] if loading else []),
        *_processes(result, settings),
        f"- constitution: {constitution}",
        "",
        "## Training data",
        *[f"- {k}: {_fmt(v)}" for k, v in data.items()],
        "",
        "## Results",
        *([f"- {k}: {_fmt(v)}" for k, v in results.items()] or ["- none recorded"]),
        *(["", f"![training curves]({curves})"] if curves else []),
        "",
        "## Settings",
        *[f"- `{k}`: {_fmt(v)}" for k, v in sorted(settings.items())],
        "",
        "## Use",
        "```python",
        (usage or CAUSAL_LM_USAGE.format(folder=output_dir)).strip(),
        "```",
        "",
        "## Versions",
        *[f"- {k} {v}" for k, v in versions.items()],
        "",
    ]
    write_atomic(path, "\n".join(lines))
    return path


def _processes(result: TrainResult, settings: Mapping[str, Any]) -> list[str]:
    """The card's line on the processes that trained (none for one), with the effective batch."""
    world = result.metrics.get("world_size") or 1
    if world == 1:
        return []
    line = f"- processes: {world} (world size)"
    batch = settings.get("per_device_train_batch_size")
    accumulation = settings.get("gradient_accumulation_steps")
    if isinstance(batch, int) and isinstance(accumulation, int):
        line += f"; effective batch {batch} × {accumulation} × {world} = {batch * accumulation * world}"
    return [line]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, enum.Enum):  # TRL's settings hold some (SchedulerType.LINEAR): show the value
        return str(value.value)
    return str(value)
