"""Online RLAIF: the policy samples, a reward scores, TRL's RLOOTrainer or GRPOTrainer updates.

The reward is a trained reward model (a folder from `rlaif train reward`) or the AI judge itself,
wrapped as a pointwise reward by `judge_reward`: P(the completion is better than a reference answer
to the same prompt), the one-token A/B verdict in both orders against a vLLM server. The prompts are
those of the exported pairs; each prompt's reference answer is its pair's chosen (or rejected) one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from transformers import TrainerCallback

from rlaif.config import JudgeConfig, MonitorsConfig
from rlaif.errors import ConfigError
from rlaif.records import Constitution, Message, stable_id
from rlaif.train.common import (
    StepTimer,
    finish,
    load_pairs,
    load_policy,
    load_tokenizer,
    logged,
    policy_kwargs,
    quiet_libraries,
    run_training,
    trl_config,
)
from rlaif.train.model_card import card_settings, constitution_of, write_model_card
from rlaif.train.model_options import ModelOptions, model_options
from rlaif.train.monitors import Monitor
from rlaif.train.reports import TrainResult

__all__ = [
    "DEFAULTS",
    "MonitorCallback",
    "RewardFunc",
    "checks_reward",
    "judge_reward",
    "online_prompts",
    "train_online",
]

DEFAULTS = {
    "per_device_train_batch_size": 4,
    "num_generations": 2,
    "max_completion_length": 64,
    "learning_rate": 1e-6,
}
"""Our defaults for `RLOOConfig` / `GRPOConfig`; `train.online.args` override them."""

RewardFunc = Callable[..., list[float | None]]
"""TRL's reward function: `f(prompts, completions, **columns) -> one reward (or None) per completion`."""


def online_prompts(
    rows: Sequence[dict[str, Any]], *, reference: Literal["chosen", "rejected"] = "chosen"
) -> list[dict[str, Any]]:
    """One row per prompt (`prompt`, `prompt_id`, `reference`) from preference rows, in first-seen order.

    A prompt with a revision pair takes its reference from that pair (the revision, or the original
    with `reference="rejected"`); otherwise from its first pair.
    """
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        pid = row["prompt_id"]
        if pid not in chosen or (row.get("source") == "revision" and chosen[pid]["source"] != "revision"):
            chosen[pid] = {
                "prompt": list(row["prompt"]),
                "prompt_id": pid,
                "reference": row[reference][-1]["content"],
                "source": row.get("source"),
            }
    return [{k: v for k, v in r.items() if k != "source"} for r in chosen.values()]


def judge_reward(
    backend_args: dict[str, Any],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
) -> RewardFunc:
    """The AI judge as a pointwise reward: P(completion better than the row's `reference` answer).

    Each call judges its batch in both orders (when `config.both_orders`) on a fresh `OpenAIBackend`
    built from `backend_args` inside its own `asyncio.run`, so it is safe to call from TRL's
    synchronous training loop. A completion whose verdicts do not parse gets None (TRL: no reward).
    """
    from rlaif.backends.openai_api import OpenAIBackend
    from rlaif.judging.engine import judge_items
    from rlaif.judging.modes import Candidate, JudgeItem, draw_principles

    async def judge_batch(items: list[Any]) -> list[Any]:
        backend = OpenAIBackend(**backend_args)
        try:
            await backend.resolve_model()
            return await judge_items(
                backend, items, constitution=constitution, config=config, seed=seed, quiet=True,
                description="judge reward",
            )  # fmt: skip
        finally:
            await backend.aclose()

    def judge_vs_reference(
        prompts: list[list[dict[str, str]]],
        completions: list[list[dict[str, str]]],
        reference: list[str],
        prompt_id: list[str],
        **kwargs: Any,
    ) -> list[float | None]:
        items = []
        for prompt, completion, ref, pid in zip(prompts, completions, reference, prompt_id, strict=True):
            text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
            items.append(
                JudgeItem(
                    prompt_id=pid,
                    conversation=tuple(Message(role=m["role"], content=m["content"]) for m in prompt),
                    a=Candidate(stable_id("completion", prompt_id=pid, text=text), text),
                    b=Candidate(stable_id("reference", prompt_id=pid, text=ref), ref),
                    members=draw_principles(constitution, config, seed=seed, key=f"online:{pid}"),
                )
            )
        judgments = asyncio.run(judge_batch(items))
        return [j.p_a for j in judgments]

    return judge_vs_reference


def checks_reward(constitution: Constitution) -> RewardFunc:
    """The weighted share of the constitution's checks a completion passes (`reward: checks`); None (no
    reward) when every check errored. Exact and free: no model is asked."""
    from rlaif.judging.checks import checkable, checks_score

    principles = checkable(constitution)
    if not principles:
        raise ConfigError(
            f"train.online.reward: checks needs principles with a `check:`, and constitution "
            f"{constitution.name!r} has none; add checks (see constitution/README.md) or use reward: model "
            "or judge"
        )

    def checks_passed(
        prompts: list[list[dict[str, str]]], completions: list[list[dict[str, str]]], **kwargs: Any
    ) -> list[float | None]:
        return [
            checks_score(
                principles, prompt, completion[-1]["content"] if isinstance(completion, list) else completion
            )
            for prompt, completion in zip(prompts, completions, strict=True)
        ]

    return checks_passed


def train_online(
    dataset_dir: str | Path,
    *,
    model_path: str | Path,
    output_dir: str | Path,
    reward: str | Path | RewardFunc | Sequence[str | Path | RewardFunc],
    algorithm: Literal["rloo", "grpo"] = "rloo",
    args: dict[str, Any] | None = None,
    sources: Sequence[str] = ("judge", "revision"),
    reference: Literal["chosen", "rejected"] = "chosen",
    monitors: MonitorsConfig | None = None,
    head_weights: dict[str, float] | None = None,
    uncertainty_penalty: float = 0.0,
    constitution: str | None = None,
    loading: ModelOptions | None = None,
) -> TrainResult:
    """Online RL on the prompts of the exported pairs; saves the policy with its curves and a model card.

    Args:
        dataset_dir: the `pairs` datasets folder of an export (prompts and reference answers).
        model_path: the policy to start from.
        output_dir: where the trained policy goes.
        reward: a reward model folder, or a reward function such as `judge_reward(...)`, or a list of
            them (TRL adds them up, weighted by `args.reward_weights`).
        algorithm: `rloo` (TRL RLOOTrainer) or `grpo` (GRPOTrainer).
        args: `RLOOConfig` / `GRPOConfig` keyword arguments.
        sources: which pairs' prompts to use.
        reference: which answer of a prompt's pair a judge reward compares against.
        monitors: the reward-hacking monitors (`train.monitors`), logged each step to the history and
            `output_dir/monitors.jsonl`, drawn with the curves (`output_dir/curves.png`); None: off.
        constitution: the run's constitution, for the card (default: the hashes in the data).
        head_weights: a reward model's head weights (`train.scoring.ModelReward`).
        uncertainty_penalty: λ of an ensemble's conservative reward `mean - λ·std`.
        loading: `train.model` (LoRA, dtype, attention, quantisation) for the policy and its reference.
    """
    from datasets import Dataset

    quiet_libraries()
    output_dir = Path(output_dir)
    pairs = load_pairs(dataset_dir, sources)
    prompts = Dataset.from_list(online_prompts(list(pairs), reference=reference))
    if algorithm == "rloo":
        from trl import RLOOConfig as Config
        from trl import RLOOTrainer as Trainer
    elif algorithm == "grpo":
        from trl import GRPOConfig as Config  # type: ignore[assignment]
        from trl import GRPOTrainer as Trainer  # type: ignore[assignment]
    else:
        raise ConfigError(f"train.online.algorithm {algorithm!r}: choose rloo or grpo")
    config = trl_config(Config, "online", output_dir, args, **DEFAULTS)
    reward_funcs: list[Any] = []
    reward_tokenizers: list[Any] = []
    names = []
    for one in reward if isinstance(reward, list | tuple) else [reward]:
        if callable(one):
            reward_funcs.append(one)
            reward_tokenizers.append(None)
            names.append(getattr(one, "__name__", "reward"))
        elif _needs_scorer(Path(one), head_weights, uncertainty_penalty):
            # An ensemble or heads: our scorer as a reward function, its readings logged per step.
            from rlaif.train.scoring import ModelReward, RewardScorer, trl_reward

            scorer = ModelReward(RewardScorer.load(one), head_weights=head_weights,
                                 uncertainty_penalty=uncertainty_penalty, key="train.online")  # fmt: skip
            reward_funcs.append(trl_reward(scorer))
            reward_tokenizers.append(None)
            names.append(Path(one).name)
        else:
            model, tokenizer = _reward_model(one)
            reward_funcs.append(model)
            reward_tokenizers.append(tokenizer)
            names.append(Path(one).name)
    reward_name = " + ".join(names)
    options = loading or model_options({}, section="online")
    model, tokenizer = load_policy(model_path, policy_kwargs(config, options))
    timer = StepTimer()
    callbacks: list[Any] = [timer]
    watch = None
    if monitors is not None and monitors.enabled:
        watch = MonitorCallback(monitors, output_dir / "monitors.jsonl")
        callbacks.append(watch)
    trainer = Trainer(
        model=model,
        reward_funcs=reward_funcs if len(reward_funcs) > 1 else reward_funcs[0],
        args=config,
        train_dataset=prompts,
        processing_class=tokenizer,
        reward_processing_classes=reward_tokenizers if len(reward_funcs) > 1 else reward_tokenizers[0],
        callbacks=callbacks,
        peft_config=options.peft_config,
    )
    if watch is not None:
        watch.trainer = trainer
    seconds = run_training(trainer)
    result = finish(trainer, tokenizer, output_dir, seconds, timer, base_model=model_path,
                    title=f"online RL ({algorithm}, reward {reward_name})")  # fmt: skip
    rewards = logged(result.log_history, "reward")
    kl = logged(result.log_history, "kl")
    lengths = logged(result.log_history, "completions/mean_length")
    spread = logged(result.log_history, "reward/ensemble_std")
    result.metrics |= {
        "algorithm": algorithm,
        "reward": reward_name,
        "prompts": len(prompts),
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "kl_last": kl[-1] if kl else None,
        "ensemble_std_mean": sum(spread) / len(spread) if spread else None,
        "completion_length_first": lengths[0] if lengths else None,
        "completion_length_last": lengths[-1] if lengths else None,
        "monitor_alerts": int(sum(logged(result.log_history, "monitor/alerts"))),
        "stopped_by_monitor": bool(watch and watch.monitor.stop),
    }
    write_model_card(
        result, label=f"Online RL ({algorithm})", base_model=model_path,
        trainer=f"TRL {Trainer.__name__}, reward {reward_name}",
        summary="A policy trained by rlaif with online RL: it samples answers to the prompts of "
        "AI-feedback preference pairs and a reward (model, judge or checks) scores them.",
        data={"prompts from": str(Path(dataset_dir)), "sources": ", ".join(sources), "prompts": len(prompts)},
        constitution=constitution_of(pairs, constitution), settings=card_settings(config, args),
        loading=options.describe(),
    )  # fmt: skip
    return result


class MonitorCallback(TrainerCallback):
    """The reward-hacking monitors in TRL's RLOO/GRPO loop: at each logged step, the batch's prompts and
    completions are measured, added to that step's `log_history` entry and `path` (JSONL), a warning
    printed per alert, and training stopped when `stop_on_alert` says so.

    The completions are read from the trainer's `_logs` buffer (TRL 1.16 keeps the latest generation
    batch there for every run, whatever `log_completions` says); set `trainer` after building it.
    """

    def __init__(self, config: MonitorsConfig, path: Path) -> None:
        self.trainer: Any = None
        self.path = path
        self.monitor = Monitor(config, answer=self._answer)
        self.probe_max_tokens = config.probe_max_tokens
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def _answer(self, prompts: list[str]) -> list[str]:
        """Greedy answers of the current policy (probes: deterministic, so steps compare)."""
        import torch

        tokenizer, model = self.trainer.processing_class, self.trainer.model
        answers = []
        model.eval()
        with torch.no_grad():
            for prompt in prompts:
                ids = tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt",
                    return_dict=True,
                ).to(model.device)  # fmt: skip
                out = model.generate(**ids, max_new_tokens=self.probe_max_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)  # fmt: skip
                answers.append(
                    tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
                )
        model.train()
        return answers

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if self.trainer is None or not logs or "reward" not in logs:
            return
        buffer = self.trainer._logs
        prompts = [_text(p, role="user") for p in buffer["prompt"]]
        answers = [_text(c, role="assistant") for c in buffer["completion"]]
        if not answers:
            return
        values = self.monitor.observe(state.global_step, prompts, answers)
        state.log_history[-1].update(values)  # TRL appended a copy of `logs` before calling us
        if state.is_world_process_zero:  # every rank measures the gathered batch; one writes it down
            with self.path.open("a") as file:
                file.write(json.dumps({"step": state.global_step, **values}) + "\n")
        if self.monitor.stop:
            control.should_training_stop = True


def _text(value: Any, *, role: str) -> str:
    """A completion or prompt as text: the last `role` turn of a conversation, or the string itself."""
    if isinstance(value, str):
        return value
    turns = [m for m in value if m.get("role") == role] or list(value)
    content = turns[-1]["content"] if turns else ""
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


def _needs_scorer(folder: Path, head_weights: dict[str, float] | None, penalty: float) -> bool:
    """Whether a reward model folder needs our scorer: an ensemble, several heads, or their settings."""
    if (folder / "ensemble.json").exists() or head_weights is not None or penalty > 0:
        return True
    config = folder / "config.json"
    return config.exists() and len(json.loads(config.read_text()).get("id2label") or {0: ""}) > 1


def _reward_model(path: str | Path) -> tuple[Any, Any]:
    """A saved reward model (fp32) and its tokenizer, whose pad token the model pools by."""
    import torch
    from transformers import AutoModelForSequenceClassification

    folder = Path(path)
    if not (folder / "config.json").exists():
        raise ConfigError(
            f"train.online.reward_model {folder}: no model there; train one with `rlaif train reward` "
            "or point reward_model at a reward model folder"
        )
    tokenizer = load_tokenizer(folder)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1, dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
