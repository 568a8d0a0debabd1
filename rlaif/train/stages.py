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

TRAIN_STAGES = ("sft", "reward", "dpo", "kto", "online")
"""In the order the pipeline trains them: online RL may need the reward model."""


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
