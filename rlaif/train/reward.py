"""A reward model from the exported pairs, with TRL's RewardTrainer (Bradley-Terry loss).

With `use_margin`, each pair carries a margin from the judge's soft label: the loss becomes
`-log σ(r_chosen - r_rejected - margin)`, asking for a wider reward gap where the judge was surer.
The margin is the gap Bradley-Terry implies, `logit(score)`, with the score capped at `MARGIN_CAP`
so revision pairs (score 1.0) stay finite. Pairs of some prompts are held out (no prompt on both
sides) and pairwise accuracy on them is measured before and after training. The model is saved
with its tokenizer and a model card.

Two extensions (issue #19): `ensemble` K trains K models, each with its own seed and bootstrap resample
of the training pairs, into one ensemble folder (`train.ensemble`); `heads` gives the model one output
per principle group, trained with the masked Bradley–Terry loss (`train.head_trainer`). Either way the
held-out accuracy of each member, of the ensemble's mean score and of each head is measured by scoring
the held-out pairs with the saved model (`train.scoring`), the way RL will read it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif.errors import ConfigError, RlaifError
from rlaif.train.common import (
    StepTimer,
    finish,
    load_pairs,
    load_tokenizer,
    logged,
    policy_kwargs,
    quiet_libraries,
    run_training,
    split_by_prompt,
    trl_config,
)
from rlaif.train.distributed import ranks
from rlaif.train.ensemble import MANIFEST, MAX_MEMBERS, EnsembleManifest, member_dir, write_manifest
from rlaif.train.heads import HeadPlan, head_mask, plan_heads
from rlaif.train.model_card import constitution_of, write_model_card
from rlaif.train.model_options import ModelOptions, model_options
from rlaif.train.reports import RewardAccuracy, TrainResult
from rlaif.train.reward_math import bootstrap_indices

__all__ = ["DEFAULTS", "MARGIN_CAP", "margin_from_score", "train_reward"]

DEFAULTS = {"learning_rate": 1e-5}
"""Our defaults for `RewardConfig` (over `training_defaults`); `train.reward.args` override them."""

MARGIN_CAP = 0.95
"""Scores above this give the same margin, logit(0.95) ≈ 2.94."""


def margin_from_score(score: float, *, cap: float = MARGIN_CAP) -> float:
    """The gap Bradley-Terry implies for P(chosen better) = `score`: logit(score), in [0, logit(cap)]."""
    p = min(max(score, 0.5), cap)
    return math.log(p / (1.0 - p))


def train_reward(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("judge", "revision"),
    use_margin: bool = False,
    eval_fraction: float = 0.1,
    seed: int = 0,
    ensemble: int = 1,
    bootstrap: bool = True,
    heads: Mapping[str, frozenset[str]] | None = None,
    constitution: str | None = None,
    loading: ModelOptions | None = None,
) -> TrainResult:
    """Train a reward model on the exported pairs in `dataset_dir`; save it with tokenizer, curves and card.

    Args:
        dataset_dir: the `pairs` datasets folder of an export.
        model_path: the model the reward model starts from (a causal LM folder; a score head is added).
        output_dir: where the reward model (or the ensemble's folder) goes.
        args: TRL `RewardConfig` keyword arguments.
        sources: which pairs to use (`judge`, `revision`).
        use_margin: add the margin from each pair's soft label (see `margin_from_score`).
        eval_fraction: share of prompts whose pairs are held out for pairwise accuracy; 0 holds none out.
        seed: seed of the held-out split; member k of an ensemble trains with seed + k.
        ensemble: how many members (1: a single model).
        bootstrap: with `ensemble` > 1, each member trains on its own bootstrap resample.
        heads: head name -> principle ids (`heads.head_groups`); None: one scalar head.
        constitution: the run's constitution, for the card (default: the hashes in the data).
        loading: `train.model` (LoRA: a sequence-classification adapter with the score head; dtype,
            attention, quantisation).
    """
    if not 1 <= ensemble <= MAX_MEMBERS:
        raise ConfigError(
            f"train.reward.ensemble: {ensemble} members; choose 1 to {MAX_MEMBERS} (1 trains a single model)"
        )
    options = loading or model_options({}, kind="reward", section="reward")
    if options.lora and (ensemble > 1 or heads is not None):
        raise ConfigError(
            "train.model.use_peft: a reward ensemble or heads are scored from full model folders; LoRA "
            "trains one reward model: set train.reward.ensemble: 1 and no heads, or drop use_peft"
        )
    quiet_libraries()
    output_dir = Path(output_dir)
    main = ranks().main
    # A manifest left by an earlier ensemble would make scorers read stale members; the new one is
    # written only once every member is saved.
    if main:
        (output_dir / MANIFEST).unlink(missing_ok=True)
    pairs = load_pairs(dataset_dir, sources)
    if heads is not None and "principle_ids" not in pairs.column_names:
        raise RlaifError(
            f"{dataset_dir}: the pairs have no principle_ids column, which reward heads need; re-export them "
            "with `rlaif export CONFIG`"
        )
    columns = ["prompt", "chosen", "rejected"]
    if use_margin:
        pairs = pairs.map(lambda row: {"margin": margin_from_score(row["score"])})
        columns.append("margin")
    train, held_out = split_by_prompt(pairs, eval_fraction, seed=seed)
    plan = None
    if heads is not None:
        plan = plan_heads(heads, train["principle_ids"])
        for head, why in plan.excluded.items():
            print(f"warning: reward head {head!r} left out: {why}", file=sys.stderr, flush=True)
        kept = plan.heads
        train = train.map(lambda row: {"head_mask": head_mask(row["principle_ids"], kept)})
        if held_out is not None:
            held_out = held_out.map(lambda row: {"head_mask": head_mask(row["principle_ids"], kept)})
        columns.append("head_mask")
    fit = {"columns": columns, "model_path": model_path, "args": args, "plan": plan, "options": options}
    card = {
        "dataset_dir": dataset_dir, "model_path": model_path, "sources": sources, "plan": plan,
        "constitution": constitution_of(pairs, constitution), "loading": options.describe(),
    }  # fmt: skip
    if ensemble == 1:
        member, settings = _fit(train, held_out, output_dir=output_dir, seed=seed, **fit)
        results = [member]
    else:
        results = []
        for k in range(ensemble):
            rows = train.select(bootstrap_indices(len(train), seed=seed, member=k)) if bootstrap else train
            folder = member_dir(output_dir, k)
            member, settings = _fit(rows, held_out, output_dir=folder, seed=seed + k, **fit)
            results.append(member)
            _card(member, settings, label=f"Reward model, member {k} of {output_dir.name}", **card)
        if main:
            load_tokenizer(model_path).save_pretrained(str(output_dir))  # shared by every member
            write_manifest(output_dir, EnsembleManifest(
                members=[member_dir(output_dir, k).name for k in range(ensemble)],
                heads=list(plan.heads) if plan else ["reward"],
                seeds=[seed + k for k in range(ensemble)], bootstrap=bootstrap,
            ))  # fmt: skip
        settings = {**settings, "seed": f"{seed} to {seed + ensemble - 1} (member k: {seed} + k)"}
    accuracy = None
    if held_out is not None and (ensemble > 1 or plan is not None) and main:  # it reads what rank 0 saved
        from rlaif.train.scoring import RewardScorer, held_out_accuracy

        scorer = RewardScorer.load(output_dir)
        accuracy = held_out_accuracy(scorer, list(held_out), plan.heads if plan else None)
    result = results[0] if ensemble == 1 else _merge(results, output_dir)
    result.metrics.update(_extension_metrics(results, accuracy, plan, ensemble=ensemble, bootstrap=bootstrap))
    _card(result, settings, accuracy=accuracy,
          label=f"Reward model{' ensemble' if ensemble > 1 else ''}", **card)  # fmt: skip
    return result


def _fit(
    train: Any,
    held_out: Any,
    *,
    columns: list[str],
    model_path: str | Path,
    output_dir: Path,
    args: dict[str, Any] | None,
    seed: int,
    plan: HeadPlan | None,
    options: ModelOptions,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train and save one reward model: its result, and the TRL settings its card lists."""
    from trl import RewardConfig, RewardTrainer

    config = trl_config(RewardConfig, "reward", output_dir, args, **{**DEFAULTS, "seed": seed})
    policy_kwargs(config, options)  # TRL loads it by name, with these
    tokenizer = load_tokenizer(model_path)
    timer = StepTimer()
    # A model path (not an instance): TRL seeds before adding the random score head and loads fp32.
    common: dict[str, Any] = {
        "model": str(model_path), "args": config, "train_dataset": train.select_columns(columns),
        "eval_dataset": None if held_out is None else held_out.select_columns(columns),
        "processing_class": tokenizer, "callbacks": [timer], "peft_config": options.peft_config,
    }  # fmt: skip
    if plan is None:
        trainer = RewardTrainer(**common)
    else:
        from rlaif.train.head_trainer import HeadsRewardTrainer

        trainer = HeadsRewardTrainer(heads=list(plan.heads), **common)
    before = trainer.evaluate() if held_out is not None else {}
    seconds = run_training(trainer)
    after = trainer.evaluate() if held_out is not None else {}
    result = finish(trainer, tokenizer, output_dir, seconds, timer, base_model=model_path,
                    title="reward model")  # fmt: skip
    accuracies = logged(result.log_history, "accuracy")
    result.metrics |= {
        "train_pairs": len(trainer.train_dataset),
        "eval_pairs": 0 if held_out is None else len(trainer.eval_dataset),
        "use_margin": "margin" in columns,
        "train_accuracy_first": accuracies[0] if accuracies else None,
        "train_accuracy_last": accuracies[-1] if accuracies else None,
        "eval_accuracy_before": before.get("eval_accuracy"),
        "eval_accuracy": after.get("eval_accuracy"),
        "eval_loss_before": before.get("eval_loss"),
        "eval_loss": after.get("eval_loss"),
        "eval_margin": after.get("eval_margin"),
    }
    settings = {
        k: getattr(config, k)
        for k in ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                  "num_train_epochs",
                  "max_length", "seed", "center_rewards_coefficient")
    }  # fmt: skip
    return result, settings


def _merge(results: list[TrainResult], output_dir: Path) -> TrainResult:
    """One result for an ensemble: steps and seconds summed, the loss curve averaged over members."""
    steps = min(len(r.losses) for r in results)
    history = [{**entry, "member": k} for k, r in enumerate(results) for entry in r.log_history]
    return TrainResult(
        output_dir=output_dir,
        steps=sum(r.steps for r in results),
        seconds=sum(r.seconds for r in results),
        losses=[sum(r.losses[i] for r in results) / len(results) for i in range(steps)],
        log_history=history,
        step_seconds=[s for r in results for s in r.step_seconds],
        metrics={
            "world_size": results[0].metrics["world_size"],
            "train_pairs": [r.metrics["train_pairs"] for r in results],
            "eval_pairs": results[0].metrics["eval_pairs"],
            "use_margin": results[0].metrics["use_margin"],
        },
    )


def _extension_metrics(
    results: list[TrainResult], accuracy: RewardAccuracy | None, plan: HeadPlan | None, *, ensemble: int,
    bootstrap: bool,
) -> dict[str, Any]:  # fmt: skip
    if ensemble == 1 and plan is None:
        return {}
    befores = [b for r in results if (b := r.metrics["eval_accuracy_before"]) is not None]
    metrics: dict[str, Any] = {
        "members": ensemble,
        "bootstrap": bootstrap and ensemble > 1,
        # Before training: the members' mean (their heads are random); after: scored as RL reads it.
        "eval_accuracy_before": sum(befores) / len(befores) if befores else None,
        "eval_accuracy": None if accuracy is None else accuracy.ensemble,
        "member_eval_accuracy": None if accuracy is None else accuracy.members,
        "held_out": None if accuracy is None else accuracy.model_dump(),
    }
    if plan is not None:
        metrics.update(heads=list(plan.heads), head_train_pairs=plan.pairs, heads_excluded=plan.excluded,
                       unassigned_pairs=plan.unassigned)  # fmt: skip
    return metrics


def _card(
    result: TrainResult, settings: dict[str, Any], *, label: str, dataset_dir: str | Path,
    model_path: str | Path, sources: Sequence[str], plan: HeadPlan | None, constitution: str,
    loading: str | None, accuracy: RewardAccuracy | None = None,
) -> None:  # fmt: skip
    metrics, output_dir = result.metrics, result.output_dir
    members = metrics.get("members", 1)
    results: dict[str, Any] = {
        "held-out pairwise accuracy before training": metrics["eval_accuracy_before"],
        "held-out pairwise accuracy after training": metrics["eval_accuracy"],
        "held-out loss": None if members > 1 else metrics["eval_loss"],
    }
    if accuracy is not None:
        results["held-out pairs scored"] = accuracy.pairs
        if members > 1:
            results.update({f"held-out accuracy of member {k}": a for k, a in enumerate(accuracy.members)})
            results["held-out accuracy of the ensemble (mean score)"] = accuracy.ensemble
        results.update({f"held-out accuracy of head {h} ({a.pairs} pairs)": a.accuracy
                        for h, a in accuracy.heads.items()})  # fmt: skip
    data: dict[str, Any] = {
        "pairs": str(Path(dataset_dir)),
        "sources": ", ".join(sources),
        "training pairs": metrics["train_pairs"],
        "held-out pairs (whole prompts held out)": metrics["eval_pairs"],
    }
    if plan is not None:
        data.update({f"head {h}": f"{plan.pairs[h]} training pairs under {', '.join(sorted(p))}"
                     for h, p in plan.heads.items()})  # fmt: skip
        data.update({f"head {h} (left out)": why for h, why in plan.excluded.items()})
    if members > 1:
        data["members"] = f"{members}, each with its own seed" + (
            " and bootstrap resample of the training pairs" if metrics.get("bootstrap") else ""
        )
    trainer = (
        "TRL RewardTrainer (Bradley-Terry"
        + (", margin from the judge's soft label" if metrics["use_margin"] else "")
        + (", one masked head per principle group)" if plan is not None else ")")
    )
    write_model_card(
        result,
        label=label,
        base_model=model_path,
        trainer=trainer,
        summary="A reward model trained by rlaif on AI-feedback preference pairs: it scores a whole "
        "conversation (chat template applied); higher means preferred."
        + (f" An ensemble of {members} members: RL reads their mean and std." if members > 1 else "")
        + (f" Heads: {', '.join(plan.heads)}." if plan is not None else ""),
        data=data,
        constitution=constitution,
        results={k: v for k, v in results.items() if v is not None},
        settings=settings,
        usage=_USAGE_SCORER.format(folder=output_dir)
        if members > 1 or plan is not None
        else _USAGE.format(folder=output_dir),
        tags=["reward-model", *(["ensemble"] if members > 1 else [])],
        loading=loading,
    )


_USAGE = """
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{folder}")
model = AutoModelForSequenceClassification.from_pretrained("{folder}")
messages = [{{"role": "user", "content": "Hi"}}, {{"role": "assistant", "content": "Hello! How can I help?"}}]
ids = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)
with torch.no_grad():
    print(model(**ids).logits[0, 0].item())
"""

_USAGE_SCORER = """
from rlaif.train.scoring import RewardScorer

scorer = RewardScorer.load("{folder}")
messages = [{{"role": "user", "content": "Hi"}}, {{"role": "assistant", "content": "Hello! How can I help?"}}]
scores = scorer.score([messages])  # (members, conversations, heads)
print(scorer.heads, scores.mean(dim=0), scores.std(dim=0, correction=0))
"""
