"""Every trainer, in one table: its name, label, the data it reads, its config section and its runner.

`rlaif train NAME`, the run's training order (`rlaif run`), `rlaif train bench` and the run summary
all read `TRAINERS`; adding a trainer is one entry here (plus its module and config section).
Every model starts from the configured policy (`model.path`, or the bundled model), reads the run's
export and goes to RUN_DIR/models/NAME. Each runner imports torch and TRL only when it runs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rlaif.compat import check_training
from rlaif.config import RunConfig, TrainerSection, rewards
from rlaif.errors import ConfigError
from rlaif.inputs.load import load_run_constitution
from rlaif.store import RunLayout
from rlaif.train.distributed import ranks

if TYPE_CHECKING:
    from rlaif.train.model_options import ModelOptions
    from rlaif.train.reports import TrainResult

__all__ = ["TRAINERS", "TRAIN_STAGES", "Trainer", "check_trainers", "train_stage"]

Runner = Callable[[RunConfig, RunLayout, "str | Path"], "TrainResult"]


@dataclass(frozen=True)
class Trainer:
    """One registry entry."""

    name: str
    """The command (`rlaif train NAME`), the config section (`train.NAME`) and the model folder."""
    label: str
    """How reports name it."""
    reads: Literal["pairs", "sft"]
    """Which part of the export it trains on."""
    help: str
    """What it does, for the CLI (first line: the short help)."""
    run: Runner
    """Trains it: (config, run layout, starting model) -> TrainResult."""
    plain_trl: bool = False
    """Whether `rlaif train bench` also times a plain TRL script doing the same."""

    def section(self, config: RunConfig) -> TrainerSection:
        """Its config section, `train.NAME`."""
        section: TrainerSection = getattr(config.train, self.name)
        return section


def _loading(config: RunConfig, name: str) -> ModelOptions:
    """`train.model` for trainer `name` (TRL's ModelConfig keywords)."""
    from rlaif.train.model_options import FOR_TRAINER, model_options

    section = getattr(config.train, name)
    return model_options(config.train.model, kind=FOR_TRAINER[name], args=section.args, section=name)


def check_trainers(config: RunConfig, names: Sequence[str]) -> None:
    """What can be refused before anything runs (a whole `rlaif run` generates first): a missing
    optional package for `train.model` or a trainer's args, PPO with `train.model` or several processes."""
    from rlaif.train.model_options import check_packages

    for name in names:
        section = getattr(config.train, name)
        if name == "ppo":
            if config.train.model:
                raise ConfigError(
                    f"train.model ({', '.join(config.train.model)}): rlaif's PPO loads full models in fp32 "
                    "and takes no LoRA, quantisation or attention settings; use train.online (TRL's "
                    "RLOO/GRPO) for those"
                )
            where = ranks()
            if where.distributed:
                raise ConfigError(
                    f"train ppo: rlaif's PPO runs in one process ({where}); launch it without torchrun or "
                    "accelerate launch, or use train.online (TRL's RLOO/GRPO), which runs on several"
                )
            continue
        check_packages(config.train.model, section.args, section=name)
        _check_arg_types(config, name)


_TRL_CONFIGS = {"dpo": "DPOConfig", "sft": "SFTConfig", "reward": "RewardConfig", "kto": "KTOConfig"}
"""The TRL config class each trainer's `args` go to (online: RLOOConfig or GRPOConfig, by algorithm)."""


def _check_arg_types(config: RunConfig, name: str) -> None:
    """`train.NAME.args` of the wrong type (`learning_rate: fast`), refused before any model loads."""
    import trl

    from rlaif.train.common import check_arg_types

    section = getattr(config.train, name)
    if name == "online":
        class_name = {"rloo": "RLOOConfig", "grpo": "GRPOConfig"}.get(section.algorithm)
    else:
        class_name = _TRL_CONFIGS.get(name)
    if class_name is not None and section.args:
        check_arg_types(getattr(trl, class_name), name, section.args)


def _constitution(config: RunConfig) -> str:
    """The run's constitution as a model card names it."""
    constitution = load_run_constitution(config)
    return f"{constitution.name} v{constitution.version}, hash `{constitution.hash}`"


def _sft(config: RunConfig, layout: RunLayout, model: str | Path) -> TrainResult:
    from rlaif.train import sft

    return sft.train_sft(
        layout.export_sft, model_path=model, output_dir=layout.model("sft"), args=config.train.sft.args,
        constitution=_constitution(config), loading=_loading(config, "sft"),
    )  # fmt: skip


def _reward(config: RunConfig, layout: RunLayout, model: str | Path) -> TrainResult:
    from rlaif.train import reward

    section = config.train.reward
    heads = None
    if section.heads is not None:
        from rlaif.train.heads import head_groups

        heads = head_groups(section.heads, load_run_constitution(config))
    return reward.train_reward(
        layout.export_pairs, model_path=model, output_dir=layout.model("reward"), args=section.args,
        sources=section.sources, use_margin=section.use_margin, eval_fraction=section.eval_fraction,
        seed=config.seed, ensemble=section.ensemble, bootstrap=section.bootstrap, heads=heads,
        constitution=_constitution(config), loading=_loading(config, "reward"),
    )  # fmt: skip


def _dpo(config: RunConfig, layout: RunLayout, model: str | Path) -> TrainResult:
    from rlaif.train import dpo

    section = config.train.dpo
    return dpo.train_dpo(
        layout.export_pairs, model_path=model, output_dir=layout.model("dpo"), args=section.args,
        sources=section.sources, soft_labels=section.soft_labels, constitution=_constitution(config),
        loading=_loading(config, "dpo"),
        reference=config.resolve(section.reference) if section.reference else None,
    )  # fmt: skip


def _kto(config: RunConfig, layout: RunLayout, model: str | Path) -> TrainResult:
    from rlaif.train import kto

    section = config.train.kto
    return kto.train_kto(
        layout.export_pairs, model_path=model, output_dir=layout.model("kto"), args=section.args,
        sources=section.sources, seed=config.seed, soft_labels=section.soft_labels,
        constitution=_constitution(config), loading=_loading(config, "kto"),
    )  # fmt: skip


def _reward_model_folder(config: RunConfig, layout: RunLayout, configured: str | None) -> Path:
    return config.resolve(configured) if configured else layout.model("reward")


def _online(config: RunConfig, layout: RunLayout, model: str | Path) -> TrainResult:
    from rlaif.train import online

    section = config.train.online
    common = {
        "model_path": model, "output_dir": layout.model("online"), "algorithm": section.algorithm,
        "args": section.args, "sources": section.sources, "reference": section.reference,
        "monitors": config.train.monitors, "head_weights": section.head_weights,
        "uncertainty_penalty": section.uncertainty_penalty, "constitution": _constitution(config),
        "loading": _loading(config, "online"),
    }  # fmt: skip
    names = rewards(section.reward)
    with contextlib.ExitStack() as stack:
        found: list[Any] = []
        for name in names:
            if name == "model":
                found.append(_reward_model_folder(config, layout, section.reward_model))
            elif name == "checks":
                found.append(online.checks_reward(load_run_constitution(config)))
            else:  # the judge (either way): a server of its own for the length of the training
                from rlaif.backends.serving import served_backend

                backend_args = stack.enter_context(
                    served_backend(config.judge.model or config.model, layout.logs, name="judge-online")
                )
                judged = {"constitution": load_run_constitution(config), "config": config.judge,
                          "seed": config.seed}  # fmt: skip
                if name == "rubric":
                    from rlaif.train.rubric_reward import rubric_reward

                    found.append(rubric_reward(backend_args, **judged))
                elif name == "judge_group":
                    from rlaif.train.group import judge_group_reward

                    found.append(judge_group_reward(
                        backend_args, per_completion=section.group_comparisons,
                        min_valid=section.group_min_valid, **judged,
                    ))  # fmt: skip
                else:
                    found.append(online.judge_reward(backend_args, **judged))
        return online.train_online(
            layout.export_pairs,
            reward=found if len(found) > 1 else found[0],
            **common,  # type: ignore[arg-type]
        )


def _ppo(config: RunConfig, layout: RunLayout, model: str | Path) -> TrainResult:
    from pydantic import ValidationError

    check_trainers(config, ["ppo"])
    from rlaif.train.common import load_pairs
    from rlaif.train.ppo.config import PPOConfig
    from rlaif.train.ppo.rollout import checks_scorer, combined, pair_prompts, reward_model_scorer
    from rlaif.train.ppo.trainer import train_ppo
    from rlaif.train.scoring import is_reward_model

    section = config.train.ppo
    try:
        ppo = PPOConfig(**{"seed": config.seed, **section.args, "output_dir": layout.model("ppo")})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"train.ppo.args: {problems}") from None
    scorers = []
    stack = contextlib.ExitStack()
    for name in rewards(section.reward):
        if name == "checks":
            scorers.append(checks_scorer(load_run_constitution(config)))
            continue
        if name == "rubric":  # the judge writes and scores the checklists on a server of its own
            from rlaif.backends.serving import served_backend
            from rlaif.train.rubric_reward import RubricReward

            backend_args = stack.enter_context(
                served_backend(config.judge.model or config.model, layout.logs, name="judge-ppo")
            )
            scorers.append(RubricReward(backend_args, constitution=load_run_constitution(config),
                                        config=config.judge, seed=config.seed))  # fmt: skip
            continue
        folder = _reward_model_folder(config, layout, section.reward_model)
        if not is_reward_model(folder):
            raise ConfigError(
                f"PPO's reward: model needs a reward model and {folder} has none: train one first "
                "(`rlaif train reward`), set train.ppo.reward_model, or use reward: checks"
            )
        scorers.append(reward_model_scorer(
            folder, head_weights=section.head_weights, uncertainty_penalty=section.uncertainty_penalty
        ))  # fmt: skip
    prompts = pair_prompts(load_pairs(layout.export_pairs, section.sources))
    reward_fn = scorers[0] if len(scorers) == 1 else combined(scorers, section.reward_weights)
    with stack:
        return train_ppo(
            ppo, model=model, prompts=prompts, reward_fn=reward_fn, resume=section.resume,
            monitors=config.train.monitors, constitution=_constitution(config),
        )  # fmt: skip


TRAINERS: dict[str, Trainer] = {
    trainer.name: trainer
    for trainer in (
        Trainer(
            "sft", "SFT", "sft",
            "Supervised fine-tuning on the final revisions (TRL SFTTrainer); train.sft.args go to SFTConfig.",
            _sft,
        ),
        Trainer(
            "reward", "reward model", "pairs",
            "Reward model on the pairs (TRL RewardTrainer), held-out pairwise accuracy, model card.\n\n"
            "train.reward: use_margin (margin from the judge's soft label), eval_fraction, ensemble (K "
            "members: mean and std), bootstrap, heads (one head per principle group), args (RewardConfig).",
            _reward, plain_trl=True,
        ),
        Trainer(
            "dpo", "DPO", "pairs",
            "DPO on the exported pairs (TRL DPOTrainer); train.dpo.args go to DPOConfig "
            "(loss_type, beta, ...).",
            _dpo, plain_trl=True,
        ),
        Trainer(
            "kto", "KTO", "pairs",
            "KTO on the pairs taken apart into desirable and undesirable answers (TRL KTOTrainer).",
            _kto,
        ),
        Trainer(
            "online", "online RL", "pairs",
            "Online RLAIF (TRL RLOOTrainer or GRPOTrainer) scored by the reward model or the judge.\n\n"
            "train.online: algorithm (rloo, grpo), reward (model, judge, judge_group, checks), reward_model, "
            "uncertainty_penalty, head_weights, reference, group_comparisons, group_min_valid, args.",
            _online,
        ),
        Trainer(
            "ppo", "PPO", "pairs",
            "PPO of our own: reward model score, KL penalty to the start model, GAE, clipped losses.\n\n"
            "train.ppo: reward_model (default RUN_DIR/models/reward), uncertainty_penalty, head_weights, "
            "sources, resume, args (PPOConfig: "
            "total_steps, batch_size, mini_batch_size, ppo_epochs, target_kl, ...). "
            "Writes RUN_DIR/models/ppo (metrics.jsonl, checkpoints, model/).",
            _ppo,
        ),
    )
}  # fmt: skip
"""In the order the pipeline trains them: online RL and PPO may need the reward model."""

TRAIN_STAGES = tuple(TRAINERS)


def train_stage(name: str, config: RunConfig, run_path: Path, *, model: str | Path) -> TrainResult:
    """Train `name` (a key of `TRAINERS`) on the run's export, starting from `model`."""
    if name not in TRAINERS:
        raise ConfigError(f"unknown trainer {name!r}; choose from {', '.join(TRAINERS)}")
    check_training()  # before a trainer imports torch or TRL
    where = ranks()
    if where.distributed:
        print(f"rlaif: {where}: training {name}", file=sys.stderr, flush=True)
    result = TRAINERS[name].run(config, RunLayout(Path(run_path)), model)
    result.trainer = name
    if where.distributed:
        print(
            f"rlaif: {where}: trained {name}, {result.steps} steps; the trainer's world size was "
            f"{result.metrics.get('world_size')}",
            file=sys.stderr, flush=True,
        )  # fmt: skip
    return result
