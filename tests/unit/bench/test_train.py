"""The trainer benchmark's report: the registry's trainers, its table, and a refusal without an export."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif.bench.reports import Hardware, TrainBench, TrainerComparison, TrainerMeasurement
from rlaif.bench.train import TRAINERS, bench_trainers
from rlaif.cli.tables.train import train_bench_markdown
from rlaif.config import RunConfig
from rlaif.errors import RlaifError
from rlaif.train.registry import TRAINERS as REGISTRY


def test_the_bench_measures_the_trainers_of_the_registry() -> None:
    assert tuple(REGISTRY) == TRAINERS


def test_the_table_shows_each_run_its_failures_and_the_comparison() -> None:
    report = TrainBench(
        hardware=Hardware(machine="x86_64", cpus=2, python="3.11", device="cpu", vllm="0.32.0"),
        steps=6, threads=None, repeats=1, export="runs/x/export", model="m",
        trainers={
            "dpo": [TrainerMeasurement(steps=6, seconds_per_step=15.14, peak_rss_gib=6.44)],
            "kto": [TrainerMeasurement(error="exit code 1", log_tail=["Traceback"])],
        },
        plain_trl={"dpo": [TrainerMeasurement(steps=6, seconds_per_step=17.46, peak_rss_gib=6.51)]},
        comparison={"dpo": TrainerComparison(rlaif_seconds_per_step=15.14, plain_trl_seconds_per_step=17.46,
                                             ratio=15.14 / 17.46, within_5_percent=False)},
    )  # fmt: skip
    table = train_bench_markdown(report)
    assert "threads: torch default; device: cpu" in table
    assert "| rlaif dpo | 15.14 | 6.44 | 6 | |" in table
    assert "| rlaif kto | - | - | - | exit code 1 |" in table
    assert "| plain TRL dpo | 17.46 | 6.51 | 6 | |" in table
    assert "dpo: rlaif 15.14 s/step vs plain TRL 17.46 (ratio 0.867, within 5%: False)" in table
    assert TrainBench.model_validate_json(report.model_dump_json()) == report


def test_no_export_is_one_clear_error(tmp_path: Path) -> None:
    config = RunConfig.model_validate({"run_dir": str(tmp_path / "run"), "prompts": {"path": "p.jsonl"}})
    with pytest.raises(RlaifError, match="no exported pairs in .*export; run `rlaif run CONFIG`"):
        bench_trainers(config, steps=2, trainers=("dpo",))
    with pytest.raises(RlaifError, match="unknown trainer"):
        bench_trainers(config, trainers=("nope",))


def test_a_measurement_whose_process_fails_reports_why(tmp_path: Path) -> None:
    from rlaif.bench.train import _child

    spec = {"kind": "rlaif", "trainer": "dpo", "config": {"prompts": "not a section"},
            "run_path": str(tmp_path), "model": "m", "steps": 2, "threads": 1}  # fmt: skip
    result = _child(spec, tmp_path)
    assert result.error == "exit code 1" and result.steps is None
    assert any("ValidationError" in line or "validation error" in line for line in result.log_tail)
    assert result.wall_seconds is not None and result.wall_seconds > 0
