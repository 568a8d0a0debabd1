"""Ranks from the launcher's environment, and what rlaif refuses to do on several processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif.config import config_from_dict
from rlaif.errors import ConfigError
from rlaif.pipeline.run import run_pipeline
from rlaif.train.distributed import LOCAL, RANK, WORLD, Ranks, ranks
from rlaif.train.registry import check_trainers


@pytest.fixture(autouse=True)
def alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*WORLD, *RANK, *LOCAL, "ACCELERATE_USE_CPU", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)


def test_one_process_is_rank_0_of_1() -> None:
    assert ranks() == Ranks(rank=0, local_rank=0, world_size=1)
    assert ranks().main and not ranks().distributed


def test_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    where = ranks()
    assert where == Ranks(rank=3, local_rank=1, world_size=4)
    assert not where.main and where.distributed and str(where) == "rank 3 of 4"


@pytest.mark.parametrize(
    ("env", "needle"),
    [({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
     ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 and WORLD_SIZE=2 do not fit")],
)  # fmt: skip
def test_a_broken_environment_is_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=needle):
        ranks()


def test_an_mpi_launch_is_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
    assert ranks() == Ranks(rank=1, local_rank=1, world_size=2)


def test_accelerates_cpu_launcher_starting_one_of_two_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """`accelerate launch --cpu --num_processes 2` sets these and starts one process (measured with
    accelerate 1.16): said in one line instead of training on one process in silence."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(ConfigError, match=r"accelerate launch --cpu started one process.*--multi_gpu"):
        ranks()


def test_generation_alone_is_refused_on_several_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only training runs on several ranks; refused on every rank alike, before any of them talks."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    config = config_from_dict({"run_dir": str(tmp_path / "run"), "prompts": {"path": "p.jsonl"}})
    with pytest.raises(ConfigError, match="rank 1 of 2: stages respond train nothing"):
        run_pipeline(config, stages=("respond",))
    assert not (tmp_path / "run").exists()


def test_our_ppo_refuses_several_processes_and_train_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="rlaif's PPO loads full models in fp32"):
        check_trainers(
            config_from_dict({"prompts": {"path": "p.jsonl"}, "train": {"model": {"use_peft": True}}}),
            ["ppo"],
        )
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match=r"rlaif's PPO runs in one process \(rank 0 of 2\)"):
        check_trainers(config_from_dict({"prompts": {"path": "p.jsonl"}}), ["ppo"])
    check_trainers(config_from_dict({"prompts": {"path": "p.jsonl"}}), ["dpo", "reward"])  # TRL's trainers do
