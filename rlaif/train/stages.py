"""Each trainer as a pipeline stage: its data, starting model and output folder, read from the run config.

Every model starts from the configured policy (`model.path`, or the bundled model) and goes to
RUN_DIR/models/NAME; the data is the run's export (RUN_DIR/export/pairs and /sft).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rlaif.config import RunConfig
from rlaif.errors import ConfigError

if TYPE_CHECKING:  # the trainers import torch and TRL: only when one runs
    from rlaif.train.common import TrainResult

__all__ = ["TRAIN_STAGES", "train_stage"]

TRAIN_STAGES = ("sft", "reward", "dpo", "kto", "online", "ppo")
"""In the order the pipeline trains them: online RL and PPO may need the reward model."""


def train_stage(name: str, config: RunConfig, run_path: Path, *, model: str | Path) -> TrainResult:
    """Train `name` (one of `TRAIN_STAGES`) on the run's export, starting from `model`."""
    pairs = run_path / "export" / "pairs"
    output = run_path / "models" / name
    train = config.train
    if name == "sft":
        from rlaif.train.sft import train_sft

        return train_sft(
            run_path / "export" / "sft", model_path=model, output_dir=output, args=train.sft.args
        )
    if name == "reward":
        from rlaif.train.reward import train_reward

        section = train.reward
        return train_reward(
            pairs, model_path=model, output_dir=output, args=section.args, sources=section.sources,
            use_margin=section.use_margin, eval_fraction=section.eval_fraction, seed=config.seed,
        )  # fmt: skip
    if name == "dpo":
        from rlaif.train import dpo

        return dpo.train_dpo(
            pairs, model_path=model, output_dir=output, args=train.dpo.args, sources=train.dpo.sources
        )
    if name == "kto":
        from rlaif.train.kto import train_kto

        return train_kto(
            pairs, model_path=model, output_dir=output, args=train.kto.args, sources=train.kto.sources,
            seed=config.seed,
        )  # fmt: skip
    if name == "online":
        return _train_online(config, run_path, model=model)
    if name == "ppo":
        return _train_ppo(config, run_path, model=model)
    raise ConfigError(f"unknown trainer {name!r}; choose from {', '.join(TRAIN_STAGES)}")


def _train_online(config: RunConfig, run_path: Path, *, model: str | Path) -> TrainResult:
    from rlaif.train.online import judge_reward, train_online

    section = config.train.online
    common = {
        "model_path": model, "output_dir": run_path / "models" / "online", "algorithm": section.algorithm,
        "args": section.args, "sources": section.sources, "reference": section.reference,
    }  # fmt: skip
    pairs = run_path / "export" / "pairs"
    if section.reward == "model":
        folder = (
            config.resolve(section.reward_model) if section.reward_model else run_path / "models" / "reward"
        )
        return train_online(pairs, reward=folder, **common)  # type: ignore[arg-type]
    from rlaif.run import load_inputs, served_backend

    constitution, _ = load_inputs(config)
    logs = run_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    judge_model = config.judge.model or config.model
    with served_backend(judge_model, logs, name="judge-online") as backend_args:
        reward = judge_reward(backend_args, constitution=constitution, config=config.judge, seed=config.seed)
        return train_online(pairs, reward=reward, **common)  # type: ignore[arg-type]


def _train_ppo(config: RunConfig, run_path: Path, *, model: str | Path) -> TrainResult:
    from pydantic import ValidationError

    from rlaif.train.common import TrainResult, load_pairs
    from rlaif.train.ppo import PPOConfig, reward_model_scorer, train_ppo
    from rlaif.train.ppo_rollout import pair_prompts

    section = config.train.ppo
    output = run_path / "models" / "ppo"
    try:
        ppo = PPOConfig(**{"seed": config.seed, **section.args, "output_dir": output})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"train.ppo.args: {problems}") from None
    folder = config.resolve(section.reward_model) if section.reward_model else run_path / "models" / "reward"
    if not (Path(folder) / "config.json").exists():
        raise ConfigError(
            f"PPO needs a reward model and {folder} has none: train one first (`rlaif train reward`) or "
            "set train.ppo.reward_model"
        )
    rows = load_pairs(run_path / "export" / "pairs", section.sources)
    prompts = pair_prompts(rows)
    metrics = train_ppo(ppo, model=model, prompts=prompts, reward_fn=reward_model_scorer(folder),
                        resume=section.resume)  # fmt: skip
    first, last = metrics[0], metrics[-1]
    return TrainResult(
        output_dir=output / "model",
        steps=len(metrics),
        seconds=sum(m["seconds"] for m in metrics),
        losses=[m["policy_loss"] for m in metrics],
        log_history=list(metrics),
        metrics={
            "prompts": len(prompts),
            "reward_first": first["reward"],
            "reward_last": last["reward"],
            "kl_last": last["kl"],
            "kl_coef_last": last["kl_coef"],
        },  # fmt: skip
        step_seconds=[m["seconds"] for m in metrics],
    )
