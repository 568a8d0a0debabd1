"""How the trainers load a large model: `train.model`, passed through to TRL's `ModelConfig`.

Its keys are `trl.ModelConfig`'s, the flags of TRL's own scripts (`trl dpo --use_peft --lora_r 16`):
`dtype`, `attn_implementation`, `use_peft`, `lora_r`, `lora_alpha`, `lora_dropout`,
`lora_target_modules`, `lora_modules_to_save`, `use_rslora`, `use_dora`, `load_in_4bit`,
`load_in_8bit`, `bnb_4bit_quant_type`, `use_bnb_nested_quant`. TRL's `get_peft_config` and
`get_quantization_config` turn them into the objects its trainers take:

- the policy and the reference are loaded with the same `dtype`, `attn_implementation` and
  quantisation (`init_kwargs`; TRL's `model_init_kwargs`, which TRL ignores for a policy given as a
  model, so the policy is loaded with them here);
- with `use_peft`, the trainer gets a `peft_config` (LoRA) and, with no reference model given, TRL
  uses the policy with its adapter disabled as the reference: one copy of the base weights, so a 7B
  policy fits one GPU. The model folder then holds the adapter (`adapter_config.json`,
  `adapter_model.safetensors`), not full weights.

A package a setting needs (peft, bitsandbytes, liger-kernel, flash-attn) is checked here, before any
model loads: one line naming it and what installs it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rlaif.errors import ConfigError

__all__ = ["FOR_TRAINER", "ModelOptions", "check_packages", "model_options"]

PACKAGES: dict[str, tuple[str, str]] = {
    "peft": ("peft", "pip install 'rlaif-toolkit[lora]' (or peft)"),
    "bitsandbytes": ("bitsandbytes", "pip install 'rlaif-toolkit[quant]' (or bitsandbytes)"),
    "liger-kernel": ("liger_kernel", "pip install 'rlaif-toolkit[liger]' (or liger-kernel)"),
    "flash-attn": ("flash_attn", "pip install flash-attn --no-build-isolation (it builds against torch)"),
    "flash-attn 3": ("flash_attn_interface", "build FlashAttention 3 from its hopper/ folder"),
    "kernels": ("kernels", "pip install kernels"),
}
"""Optional package -> (the module it installs, how to install it)."""

REFUSED = {
    "model_name_or_path": "the model is model.path (or the bundled one)",
    "model_revision": "give model.path a local folder or a Hub id at the revision you want",
    "trust_remote_code": "set it in train.NAME.args.trust_remote_code",
}
"""ModelConfig keys rlaif sets elsewhere, and where."""

DTYPES = ("auto", "bfloat16", "float16", "float32")
"""The dtypes TRL loads a model in (`ModelConfig.dtype`)."""

FOR_TRAINER: dict[str, Literal["causal", "reward"]] = {
    "sft": "causal", "reward": "reward", "dpo": "causal", "kto": "causal", "online": "causal",
}  # fmt: skip
"""What each TRL trainer loads; our PPO loads its own models and takes none of these settings."""


@dataclass(frozen=True)
class ModelOptions:
    """`train.model` resolved for one trainer."""

    init_kwargs: dict[str, Any] = field(default_factory=dict)
    """`from_pretrained` keywords of the policy and reference (TRL's `model_init_kwargs`)."""
    peft_config: Any = None
    """peft's `LoraConfig`, or None: full fine-tuning."""
    settings: dict[str, Any] = field(default_factory=dict)
    """What `train.model` set, for the model card."""

    @property
    def lora(self) -> bool:
        return self.peft_config is not None

    def describe(self) -> str | None:
        """One line for the model card: LoRA and its settings, quantisation, attention; None: nothing set."""
        parts = []
        if self.peft_config is not None:
            p = self.peft_config
            modules = p.target_modules
            targets = modules if isinstance(modules, str) else sorted(modules or [])
            parts.append(
                f"LoRA (peft {_version('peft')}): r {p.r}, alpha {p.lora_alpha}, dropout {p.lora_dropout}, "
                f"target modules {targets or 'the model type default'}"
                + (f", modules to save {sorted(p.modules_to_save)}" if p.modules_to_save else "")
                + (", rsLoRA" if p.use_rslora else "")
                + (", DoRA" if p.use_dora else "")
                + "; the reference is the base with the adapter disabled"
            )
        quant = self.init_kwargs.get("quantization_config")
        if quant is not None:
            parts.append("4-bit" if getattr(quant, "load_in_4bit", False) else "8-bit")
        if "attn_implementation" in self.init_kwargs:
            parts.append(f"attention {self.init_kwargs['attn_implementation']}")
        if "dtype" in self.settings:
            parts.append(f"dtype {self.settings['dtype']}")
        return "; ".join(parts) or None


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _need(package: str, why: str) -> None:
    module, install = PACKAGES[package]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{why} needs {package}, which is not installed: {install}")


def check_packages(
    options: Mapping[str, Any], args: Mapping[str, Any] | None = None, *, section: str
) -> None:
    """Refuse a setting whose optional package is missing (or, for 4/8-bit, a machine without CUDA)."""
    if options.get("use_peft"):
        _need("peft", "train.model.use_peft")
    if options.get("load_in_4bit") or options.get("load_in_8bit"):
        key = "load_in_4bit" if options.get("load_in_4bit") else "load_in_8bit"
        _need("bitsandbytes", f"train.model.{key}")
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.model.{key}: bitsandbytes 4/8-bit loading is unavailable here (no CUDA GPU); "
                f"drop {key} on this machine"
            )
    attention = str(options.get("attn_implementation") or "")
    if attention == "flash_attention_2":
        _need("flash-attn", "train.model.attn_implementation: flash_attention_2")
    elif attention == "flash_attention_3":
        _need("flash-attn 3", "train.model.attn_implementation: flash_attention_3")
    elif "/" in attention:  # a Hub kernel, e.g. kernels-community/flash-attn
        _need("kernels", f"train.model.attn_implementation: {attention}")
    if (args or {}).get("use_liger_kernel"):
        _need("liger-kernel", f"train.{section}.args.use_liger_kernel")


def model_options(
    options: Mapping[str, Any],
    *,
    kind: Literal["causal", "reward"] = "causal",
    args: Mapping[str, Any] | None = None,
    section: str = "dpo",
) -> ModelOptions:
    """`train.model` (TRL `ModelConfig` keywords) as loading keywords and a peft config for one trainer.

    Unset, the dtype is bf16 on CUDA and fp32 on CPU (short CPU runs lose their update in bf16); a
    reward model fp32, as TRL loads it. A reward model's LoRA is a sequence-classification adapter,
    which trains and saves the score head too.
    """
    import torch
    from trl import ModelConfig, get_peft_config, get_quantization_config

    for key, why in REFUSED.items():
        if key in options:
            raise ConfigError(f"train.model.{key}: rlaif sets this: {why}")
    check_packages(options, args, section=section)
    settings = dict(options)
    # TRL's own default for a reward model (loaded by name) is fp32, score head included.
    cuda = torch.cuda.is_available() and kind == "causal"
    dtype = settings.get("dtype") or ("bfloat16" if cuda else "float32")
    if dtype not in DTYPES:
        raise ConfigError(f"train.model.dtype: {dtype!r}; choose one of {', '.join(DTYPES)}")
    given = {"lora_task_type": "SEQ_CLS" if kind == "reward" else "CAUSAL_LM", **settings, "dtype": dtype}
    try:
        config = ModelConfig(**given)
    except TypeError as exc:
        names = ", ".join(f.name for f in dataclasses.fields(ModelConfig) if f.name not in REFUSED)
        raise ConfigError(f"train.model: {exc}; the keys are TRL's ModelConfig's: {names}") from None
    except ValueError as exc:
        raise ConfigError(f"train.model: {exc}") from None
    init: dict[str, Any] = {"dtype": dtype}  # a name, not a torch.dtype: TRL's config stays JSON
    if config.attn_implementation:
        init["attn_implementation"] = config.attn_implementation
    quantization = get_quantization_config(config)
    if quantization is not None:
        from rlaif.train.distributed import ranks

        init["quantization_config"] = quantization
        init["device_map"] = {"": ranks().local_rank}  # each process its own GPU
    peft = get_peft_config(config) if config.use_peft else None
    return ModelOptions(init_kwargs=init, peft_config=peft, settings=settings)
