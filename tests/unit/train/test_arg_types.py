"""Trainer arguments of the wrong type are refused before any model loads (issue 31): TRL's config
classes take `learning_rate: fast` silently and fail only when the optimizer is made (exit 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rlaif.config import config_from_dict
from rlaif.errors import ConfigError
from rlaif.train.registry import check_trainers

ROOT = Path(__file__).resolve().parents[3]


def _config(**train: Any) -> Any:
    return config_from_dict(
        {"run_dir": "runs/x", "prompts": {"path": str(ROOT / "examples" / "prompts.jsonl")}, "train": train}
    )


@pytest.mark.parametrize(
    ("name", "args", "said"),
    [
        ("dpo", {"learning_rate": "fast"}, "train.dpo.args.learning_rate: 'fast' is not a number"),
        ("dpo", {"max_steps": 2.5}, "train.dpo.args.max_steps: 2.5 is not a whole number"),
        ("dpo", {"max_steps": True}, "is not a whole number"),
        ("sft", {"bf16": "yes"}, "train.sft.args.bf16: 'yes' is not true/false"),
        ("reward", {"num_train_epochs": [1]}, "train.reward.args.num_train_epochs"),
        ("online", {"beta": "high"}, "train.online.args.beta: 'high' is not a number"),
    ],
)
def test_a_trainer_argument_of_the_wrong_type_is_one_line(name: str, args: dict[str, Any], said: str) -> None:
    config = _config(**{name: {"args": args}})
    with pytest.raises(ConfigError) as info:
        check_trainers(config, [name])
    assert said in str(info.value) and "\n" not in str(info.value)


def test_arguments_of_the_right_type_pass() -> None:
    args = {"learning_rate": 1, "beta": 0.2, "max_steps": 3, "bf16": None, "loss_type": "sigmoid",
            "report_to": "none", "lr_scheduler_type": "cosine", "max_length": None}  # fmt: skip
    check_trainers(_config(dpo={"args": args}), ["dpo"])


def test_the_trl_config_is_refused_before_it_is_made(tmp_path: Path) -> None:
    """`rlaif train dpo` builds its TRL config before loading the model: the check is there too."""
    from trl import DPOConfig

    from rlaif.train.common import trl_config

    with pytest.raises(ConfigError, match="learning_rate: 'fast' is not a number"):
        trl_config(DPOConfig, "dpo", tmp_path, {"learning_rate": "fast"})
