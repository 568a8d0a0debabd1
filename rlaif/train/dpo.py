"""DPO on exported pairs with TRL's DPOTrainer. Settings pass through to TRL's `DPOConfig`.

`loss_type` picks the DPO-family loss TRL 1.16 has (sigmoid, sigmoid_norm, ipo, robust, hinge,
exo_pair, nca_pair, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, or a
list of them with `loss_weights`); `beta` the strength of the pull towards the reference. KTO, which
needs no pairs, is in `rlaif.train.kto`.

Soft labels (`train.dpo.soft_labels`): each exported pair carries `p_chosen`, the judge's P(chosen is
better) (1.0 for check and revision pairs and for pairs a person decided). `smoothing` trains with
conservative DPO, label smoothing ε = 1 - p_chosen per pair: loss -(1-ε)·log σ(βΔ) - ε·log σ(-βΔ), so a
coin-flip pair (p = 0.5) pulls neither way while the policy is at the reference. `weight` scales each
pair's sigmoid loss by 2·p_chosen - 1 (0 for a coin flip, 1 for a sure pair).

TRL 1.16 computes the per-pair loss inline in `DPOTrainer._compute_loss`, with no per-pair hook, so
`SoftLabelDPOTrainer` extends it at the one call that makes the sigmoid loss: while its loss runs, the
module's `F.logsigmoid` is this batch's per-pair version. Copying the 250-line loss would drift from TRL.
`use_liger_kernel` works with soft labels: TRL 1.16 applies Liger's layer kernels and keeps this loss
(`common.check_liger` refuses, before the model loads, a TRL that would route the loss through Liger).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from rlaif.errors import ConfigError
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

__all__ = ["DEFAULTS", "SoftLabels", "soft_logsigmoid", "train_dpo"]

SoftLabels = Literal["off", "smoothing", "weight"]

DEFAULTS: dict[str, object] = {}
"""Our defaults for `DPOConfig` over `training_defaults` (none)."""


def soft_logsigmoid(x: Any, p_chosen: Any, mode: SoftLabels) -> Any:
    """log σ(x) of the sigmoid DPO loss with each pair's label `p_chosen` (x = β·Δ, one per pair).

    `smoothing`: (1-ε)·log σ(x) + ε·log σ(-x) with ε = 1 - p (conservative DPO); `weight`: (2p-1)·log σ(x);
    `off`: log σ(x). The loss is minus this, averaged over the batch.
    """
    import torch.nn.functional as F

    if mode == "off":
        return F.logsigmoid(x)
    p = p_chosen.to(dtype=x.dtype, device=x.device)
    if mode == "weight":
        return (2 * p - 1) * F.logsigmoid(x)
    return p * F.logsigmoid(x) + (1 - p) * F.logsigmoid(-x)


class _PerPairFunctional:
    """`torch.nn.functional` with `logsigmoid` taking this batch's per-pair labels; everything else as is."""

    def __init__(self, p_chosen: Any, mode: SoftLabels):
        import torch.nn.functional

        self._functional = torch.nn.functional
        self.p_chosen = p_chosen
        self.mode = mode
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._functional, name)

    def logsigmoid(self, x: Any) -> Any:
        if x.shape != self.p_chosen.shape:
            raise RuntimeError(
                f"soft labels: the loss saw {tuple(x.shape)} values for {len(self.p_chosen)} pairs"
            )
        self.calls += 1
        return soft_logsigmoid(x, self.p_chosen, self.mode)


def _soft_label_trainer(base: type) -> type:
    """DPOTrainer (or a subclass) that reads `p_chosen` per pair and uses it in the sigmoid loss."""
    from trl.trainer import dpo_trainer

    class SoftLabelDPOTrainer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, soft_labels: SoftLabels = "smoothing", **kwargs: Any):
            self.soft_labels = soft_labels
            super().__init__(*args, **kwargs)

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            if "p_chosen" not in self._signature_columns:
                self._signature_columns.append("p_chosen")

        @contextlib.contextmanager
        def _per_pair(self, inputs: dict[str, Any]) -> Iterator[None]:
            functional = _PerPairFunctional(inputs.pop("p_chosen"), self.soft_labels)
            saved, dpo_trainer.F = dpo_trainer.F, functional
            try:
                yield
            finally:
                dpo_trainer.F = saved
            if functional.calls != 1:
                raise RuntimeError(
                    f"soft labels: expected one sigmoid loss per batch, saw {functional.calls}"
                )

        def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
            with self._per_pair(inputs):
                return super()._compute_loss(model, inputs, return_outputs)

        def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
            inputs = {k: v for k, v in inputs.items() if k != "p_chosen"}
            return super().compute_ref_log_probs(model, inputs)

    return SoftLabelDPOTrainer


def _collator(trainer_args: Any, tokenizer: Any) -> Any:
    """TRL's preference collator, also batching each pair's `p_chosen`."""
    import torch
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    class SoftLabelCollator(DataCollatorForPreference):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            batch = super().torch_call(examples)
            batch["p_chosen"] = torch.tensor([float(e["p_chosen"]) for e in examples], dtype=torch.float32)
            return batch

    return SoftLabelCollator(
        pad_token_id=tokenizer.pad_token_id, max_length=trainer_args.max_length,
        truncation_mode=trainer_args.truncation_mode, pad_to_multiple_of=trainer_args.pad_to_multiple_of,
    )  # fmt: skip


def check_soft_labels(config: Any, soft_labels: SoftLabels) -> None:
    """Soft labels change the sigmoid loss of standard DPO; refuse a TRL loss they cannot enter."""
    if soft_labels == "off":
        return
    losses = list(config.loss_type) if isinstance(config.loss_type, list | tuple) else [config.loss_type]
    if losses != ["sigmoid"] or config.f_divergence_type not in ("reverse_kl", None) or config.use_weighting:
        raise ConfigError(
            f"train.dpo.soft_labels: {soft_labels} works with the standard DPO loss (loss_type: sigmoid, "
            f"f_divergence_type: reverse_kl, no use_weighting); this config has loss_type {losses}, "
            f"f_divergence_type {config.f_divergence_type}; set train.dpo.soft_labels: off to use that loss"
        )


def train_dpo(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("check", "judge", "revision"),
    soft_labels: SoftLabels = "smoothing",
    constitution: str | None = None,
    loading: ModelOptions | None = None,
    reference: str | Path | None = None,
) -> TrainResult:
    """Train with DPO on the exported pairs in `dataset_dir` (a `datasets` folder) and save the model
    with its curves and a model card (`constitution`: the run's, for the card).

    `soft_labels` uses each pair's `p_chosen` (see the module docstring); `off` is TRL's DPO as it is.
    `loading` (`train.model`: LoRA, dtype, attention, quantisation) applies to policy and reference.
    `reference`: a model folder for the frozen reference (None: a copy of `model_path`, TRL's default).
    """
    from trl import DPOConfig, DPOTrainer

    quiet_libraries()
    output_dir = Path(output_dir)
    dataset = load_pairs(dataset_dir, sources)
    config = trl_config(DPOConfig, "dpo", output_dir, args, **DEFAULTS)
    if soft_labels != "off" and "p_chosen" not in dataset.column_names:
        raise ConfigError(
            f"train.dpo.soft_labels: {soft_labels} needs the export's p_chosen column and {dataset_dir} "
            "has none; re-export (`rlaif export CONFIG`) or set train.dpo.soft_labels: off"
        )
    check_soft_labels(config, soft_labels)
    check_liger(config, "dpo", soft_labels=soft_labels, trainer=DPOTrainer)
    columns = ["prompt", "chosen", "rejected"] + (["p_chosen"] if soft_labels != "off" else [])
    if "tools" in dataset.column_names:  # trajectory pairs: TRL renders the tools into the chat template
        columns.append("tools")
    made_under = constitution_of(dataset, constitution)
    dataset = dataset.select_columns(columns)
    options = loading or model_options({}, section="dpo")
    model, tokenizer = load_policy(model_path, policy_kwargs(config, options))
    timer = StepTimer()
    common = {"model": model, "args": config, "train_dataset": dataset, "processing_class": tokenizer,
              "callbacks": [timer], "peft_config": options.peft_config}  # fmt: skip
    if reference is not None:
        if options.peft_config is not None:
            raise ConfigError(
                "train.dpo.reference names a reference model, but LoRA (train.model.use_peft) uses the "
                "adapter-free policy as its reference; drop one of them"
            )
        common["ref_model"] = load_policy(reference, policy_kwargs(config, options))[0]
    if soft_labels == "off":
        trainer = DPOTrainer(**common)
    else:
        trainer = _soft_label_trainer(DPOTrainer)(
            **common, soft_labels=soft_labels, data_collator=_collator(config, tokenizer)
        )
    seconds = run_training(trainer)
    result = finish(trainer, tokenizer, output_dir, seconds, timer, base_model=model_path, title="DPO")
    margins = logged(result.log_history, "rewards/margins")
    labels = dataset["p_chosen"] if "p_chosen" in dataset.column_names else []
    result.metrics |= {
        "pairs": len(dataset),
        "loss_type": config.loss_type,
        "beta": config.beta,
        "soft_labels": soft_labels,
        "mean_p_chosen": sum(labels) / len(labels) if labels else None,
        "margin_first": margins[0] if margins else None,
        "margin_last": margins[-1] if margins else None,
    }
    write_model_card(
        result, label="DPO", base_model=model_path,
        trainer=f"TRL DPOTrainer (loss {config.loss_type}, beta {config.beta}, soft labels {soft_labels})",
        summary="A policy trained by rlaif with DPO on AI-feedback preference pairs.",
        data={"pairs": str(Path(dataset_dir)), "sources": ", ".join(sources), "rows": len(dataset)},
        constitution=made_under, settings=card_settings(config, args), loading=options.describe(),
    )  # fmt: skip
    return result
