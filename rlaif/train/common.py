"""What every trainer shares: safe CPU defaults for TRL configs, loading, saving, results.

`finish` saves what a trained model folder holds besides its card (`rlaif.train.model_card`): the weights in
the base model's dtype, the tokenizer, TRL's log history (`trainer_state.json`) and the curves
(`curves.png`, `rlaif.train.curves`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rlaif.errors import ConfigError, RlaifError
from rlaif.train.model_options import ModelOptions
from rlaif.train.reports import TrainResult

__all__ = [
    "CURVES",
    "TRACKERS",
    "StepTimer",
    "base_dtype",
    "check_liger",
    "check_report_to",
    "finish",
    "load_export",
    "load_pairs",
    "load_policy",
    "load_tokenizer",
    "logged",
    "policy_kwargs",
    "quiet_libraries",
    "run_training",
    "save_pretrained_as",
    "split_by_prompt",
    "training_defaults",
    "trl_config",
]

CURVES = "curves.png"
"""The curves PNG in every model folder."""

TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install 'rlaif-toolkit[track]' (or tensorboard)"),
    "trackio": (("trackio",), "pip install 'rlaif-toolkit[track]' (or trackio)"),
    "wandb": (("wandb",), "pip install wandb"),
    "mlflow": (("mlflow",), "pip install mlflow"),
}
"""`report_to` loggers: the modules transformers looks for (any one) and how to install one."""


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
    check_arg_types(config_class, section, args or {})
    settings.update(args or {})
    check_report_to(settings.get("report_to"), section)
    try:
        return config_class(**settings)
    except TypeError as exc:
        raise ConfigError(
            f"train.{section}.args: {exc}; see TRL's {config_class.__name__} for valid names"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"train.{section}.args: {exc}") from None


def check_arg_types(config_class: type[Any], section: str, args: dict[str, Any]) -> None:
    """Each of `train.<section>.args` whose TRL field is a plain number or flag must be one: TRL's config
    classes take `learning_rate: fast` without a word and fail only once the model is loaded and the
    optimizer made (exit 4). Fields that also take text, lists or mappings are left to TRL."""
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # noqa: BLE001 - a forward reference TRL cannot resolve: check what we can
        hints = {f.name: f.type for f in dataclasses.fields(config_class) if isinstance(f.type, type)}
    for key, value in args.items():
        kinds = _scalar_kinds(hints.get(key))
        if not kinds or (value is None and type(None) in typing.get_args(hints.get(key))):
            continue
        ok = (
            (bool in kinds and isinstance(value, bool))
            or (int in kinds and isinstance(value, int) and not isinstance(value, bool))
            or (float in kinds and isinstance(value, int | float) and not isinstance(value, bool))
        )
        if not ok:
            want = " or ".join(
                {bool: "true/false", int: "a whole number", float: "a number"}[k] for k in kinds
            )
            raise ConfigError(
                f"train.{section}.args.{key}: {value!r} is not {want} (TRL's {config_class.__name__} "
                f"takes {want} for {key}); fix the value"
            )


def _scalar_kinds(hint: Any) -> list[type]:
    """[bool], [int], [float] (or two of them) when the field takes only those (and None); else []."""
    members = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
    if typing.get_origin(hint) not in (typing.Union, types.UnionType, None):
        return []
    if members and all(m in (bool, int, float) for m in members):
        return [m for m in (bool, int, float) if m in members]
    return []


def check_liger(config: Any, section: str, *, soft_labels: str, trainer: type[Any]) -> None:
    """`use_liger_kernel` (a TRL config field, via `train.<section>.args`): refuse, before any model loads,
    what would fail later or silently train on hard labels.

    TRL 1.16 applies only Liger's layer kernels (norms, RoPE, MLP) to DPO and KTO and keeps its own loss,
    which is where rlaif's soft labels enter, so the two work together. A TRL whose loss goes through
    Liger's fused one (older TRL had `LigerFusedLinearDPOLoss`) would never see `p_chosen`: refused.
    """
    if not getattr(config, "use_liger_kernel", False):
        return
    import importlib.util
    import inspect

    if importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError(
            f"train.{section}.args.use_liger_kernel: true needs the liger-kernel package, which is not "
            "installed (`pip install liger-kernel`; its kernels need a CUDA GPU); install it or drop "
            "use_liger_kernel"
        )
    if (getattr(config, "liger_kernel_config", None) or {}).get("fused_linear_cross_entropy"):
        raise ConfigError(
            f"train.{section}.args.liger_kernel_config: fused_linear_cross_entropy: true replaces the "
            f"model's forward, which TRL's {trainer.__name__} patches with its fused LM head (TRL refuses "
            "it); leave it out, the other Liger kernels still apply"
        )
    losses = [getattr(trainer, name, None) for name in ("_compute_loss", "compute_loss", "loss_fn")]
    try:
        source = "".join(inspect.getsource(f) for f in losses if callable(f))
    except (OSError, TypeError):
        source = ""
    if soft_labels != "off" and "liger" in source.lower():
        raise ConfigError(
            f"train.{section}.soft_labels: {soft_labels} cannot enter the fused Liger loss this TRL's "
            f"{trainer.__name__} computes with use_liger_kernel: true, so the pairs would train as hard "
            f"labels; set train.{section}.soft_labels: off, or drop use_liger_kernel"
        )


def check_report_to(report_to: str | Sequence[str] | None, section: str) -> None:
    """Refuse a `report_to` logger that is not installed, before any model loads.

    transformers finds out only when the trainer is built, in a long traceback; here it is one line
    naming the logger and how to install it.
    """
    import importlib.util

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        if name not in TRACKERS:
            continue  # none, all, or a logger we do not know: transformers checks those itself
        modules, install = TRACKERS[name]
        if not any(importlib.util.find_spec(module) for module in modules):
            raise ConfigError(
                f"train.{section}.args.report_to: {name} is not installed; {install}, or set report_to: none"
            )


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


def load_policy(model_path: str | Path, init_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Causal LM and tokenizer, with a pad token that is not EOS. `init_kwargs` are `from_pretrained`'s
    (`policy_kwargs`); without them fp32 on CPU, bf16 on CUDA."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_path)
    if init_kwargs is None:
        init_kwargs = {"dtype": torch.bfloat16 if torch.cuda.is_available() else torch.float32}
    model = AutoModelForCausalLM.from_pretrained(str(model_path), **init_kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def policy_kwargs(config: Any, options: ModelOptions) -> dict[str, Any]:
    """The policy's `from_pretrained` keywords: `train.model`'s, then the user's own
    `args.model_init_kwargs`. Set on the TRL config too, so the reference TRL loads is loaded alike
    (TRL reads `model_init_kwargs` only for a model given by name, and for the reference)."""
    init = {**options.init_kwargs, **(getattr(config, "model_init_kwargs", None) or {})}
    if hasattr(config, "model_init_kwargs"):
        config.model_init_kwargs = init
    return init


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


def base_dtype(model_path: str | Path) -> Any | None:
    """The torch dtype the base model is stored in (its config's `dtype`); None when it does not say."""
    import torch
    from transformers import AutoConfig

    value = getattr(AutoConfig.from_pretrained(str(model_path)), "dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) else None


ROUNDING_LIMIT = 0.5
"""Largest share of a run's weight update that casting to the base's dtype may change before rlaif
keeps the trained dtype instead (see `save_dtype`)."""


def _base_tensors(base_model: str | Path) -> dict[str, Path]:
    """Tensor name -> the base checkpoint's safetensors file holding it; empty when none is found."""
    from safetensors import safe_open

    folder = Path(base_model).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(base_model), local_files_only=True))
        except Exception:  # not cached, not a Hub id: nothing to compare with
            return {}
    found: dict[str, Path] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            found.update({name: file for name in handle.keys()})  # noqa: SIM118 (not a dict)
    return found


def rounding_share(model: Any, base_model: str | Path, dtype: Any) -> float | None:
    """How much of the update from the base's weights casting `model` to `dtype` changes:
    ||cast(W) - W|| / ||W - W_base|| over the weights the base has; None when nothing can be compared.

    A short run at a small learning rate moves weights by less than bf16's resolution: measured on the
    bundled model, 6 DPO steps at lr 1e-5 kept only 3.3% of the changed weights through a bf16 cast and
    its implicit DPO margin fell from 1.87 to 0.15 (a share near 1 here).
    """
    import torch
    from safetensors import safe_open

    files = _base_tensors(base_model)
    if not files:
        return None
    error = update = 0.0
    handles: dict[Path, Any] = {}
    try:
        with torch.no_grad():
            for name, weight in model.state_dict().items():
                file = files.get(name)
                if file is None or not weight.is_floating_point():
                    continue
                if file not in handles:
                    handles[file] = safe_open(str(file), framework="pt", device="cpu")
                trained = weight.detach().float().cpu()
                base = handles[file].get_tensor(name).float()
                if base.shape != trained.shape:
                    continue
                update += float((trained - base).pow(2).sum())
                error += float((trained.to(dtype).float() - trained).pow(2).sum())
    finally:
        handles.clear()
    return None if update == 0.0 else (error / update) ** 0.5


def save_dtype(model: Any, base_model: str | Path) -> Any | None:
    """The dtype to save a trained model in: the base's (half the size of fp32 for a bf16 base) unless
    the cast would change more than `ROUNDING_LIMIT` of this run's update, which a short CPU run in fp32
    often is; then the trained dtype, with a warning line saying why. None: save as it is."""
    import sys

    dtype = base_dtype(base_model)
    if dtype is None or dtype == model.dtype:
        return None
    share = rounding_share(model, base_model, dtype)
    if share is not None and share > ROUNDING_LIMIT:
        name = str(dtype).removeprefix("torch.")
        print(
            f"warning: saving in the base model's {name} would change {share:.0%} of what this run changed "
            f"in the weights (the update is finer than {name} can hold); saved in "
            f"{str(model.dtype).removeprefix('torch.')} instead, twice the size",
            file=sys.stderr,
            flush=True,
        )
        return None
    return dtype


def save_pretrained_as(model: Any, path: Path, dtype: Any | None) -> None:
    """`model.save_pretrained(path)` with the weights in `dtype`, leaving the model in memory as it is.

    Training runs in fp32 on CPU (small updates vanish in bf16 weights), but a model saved in fp32 from
    a bf16 base is twice the size for precision the base never had. Tied weights stay tied.
    """
    if dtype is None or dtype == model.dtype:
        model.save_pretrained(path)
        return
    cast: dict[int, Any] = {}
    state = {}
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr()
        if key not in cast:
            cast[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
        state[name] = cast[key]
    model.save_pretrained(path, state_dict=state)
    config = copy.deepcopy(model.config)
    config.dtype = str(dtype).removeprefix("torch.")  # save_pretrained wrote the in-memory dtype
    config.save_pretrained(path)


def finish(
    trainer: Any,
    tokenizer: Any,
    output_dir: Path,
    seconds: float,
    timer: StepTimer,
    *,
    base_model: str | Path,
    title: str,
) -> TrainResult:
    """Save the model (in `base_model`'s dtype where that keeps the update: `save_dtype`) and tokenizer,
    the log history (`trainer_state.json`) and the curves (`CURVES`, titled `title`); collect the
    trainer's history into a `TrainResult`."""
    from rlaif.train.curves import plot_curves
    from rlaif.train.distributed import ranks

    main = ranks().main
    adapter = hasattr(trainer.model, "peft_config")
    if main:
        _drop_other_weights(output_dir, adapter=adapter)
    # An adapter stays in the dtype it trained in; sharded (DeepSpeed, FSDP) weights are gathered by
    # save_model itself; in DDP only rank 0 saves, so only it casts.
    sharded = getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False)
    if main and not sharded and not adapter:
        dtype = save_dtype(trainer.model, base_model)
        if dtype is not None:
            trainer.model.to(dtype)  # training is over: cast in place, so every save path TRL has applies
    trainer.save_model(str(output_dir))  # every rank: TRL writes on the main process only
    history = list(trainer.state.log_history)
    if main:
        tokenizer.save_pretrained(str(output_dir))
        trainer.state.save_to_json(str(output_dir / "trainer_state.json"))
        plot_curves(history, output_dir / CURVES, title=title)
    return TrainResult(
        output_dir=output_dir,
        steps=trainer.state.global_step,
        seconds=seconds,
        losses=[float(h["loss"]) for h in history if "loss" in h],
        log_history=history,
        step_seconds=list(timer.seconds),
        metrics={"world_size": trainer.args.world_size},
    )


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
"""What a LoRA run saves instead of full weights."""


def _drop_other_weights(folder: Path, *, adapter: bool) -> None:
    """Remove the weights an earlier run of the other kind left in `folder` (full weights before an
    adapter, or an adapter before full weights): transformers would load those instead. A folder with
    an adapter and a `config.json` reads as a full model with an adapter inside, so that goes too."""
    stale = [folder / name for name in ADAPTER_FILES] if not adapter else [
        *folder.glob("model*.safetensors"), *folder.glob("model.safetensors.index.json"),
        *folder.glob("pytorch_model*.bin"), folder / "config.json", folder / "generation_config.json",
    ]  # fmt: skip
    for path in stale:
        path.unlink(missing_ok=True)


def run_training(trainer: Any) -> float:
    """Train and return the seconds it took."""
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def logged(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    """Every logged value of `key`, in order."""
    return [float(h[key]) for h in history if key in h and h[key] is not None]
