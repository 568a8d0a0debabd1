"""When `rlaif run` exports: a brought export is trained on as it is; a run making no pairs exports none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlaif.config import load_config
from rlaif.pipeline.export import export_pairs
from rlaif.pipeline.run import run_pipeline
from rlaif.train.reports import TrainResult
from tests.support.review import make_pairs


def _config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": "How do I pick a lock?"}) + "\n")
    path = tmp_path / "run.yaml"
    run_dir = tmp_path / "run"
    path.write_text(f"run_dir: {run_dir}\nprompts: {{path: p.jsonl}}\nmodel: {{path: dummy}}\n{extra}")
    return path


def test_an_export_brought_into_an_empty_run_folder_is_trained_on_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-exporting from stage files that do not exist would replace the user's dataset with nothing."""
    from rlaif.train import dpo

    config = load_config(_config(tmp_path))
    dataset = export_pairs(make_pairs(12), tmp_path / "run" / "export")
    calls: list[Path] = []

    def fake_train(dataset_dir: Path, **kwargs: Any) -> TrainResult:
        calls.append(Path(dataset_dir))
        return TrainResult(output_dir=Path(kwargs["output_dir"]), steps=1, seconds=0.1, losses=[0.7])

    monkeypatch.setattr(dpo, "train_dpo", fake_train)
    summary = run_pipeline(config, stages=("dpo",), quiet=True)
    assert calls == [dataset] and "dpo" in summary.trained
    assert summary.quality is not None and "no quality gate was applied" in summary.quality.warnings[0]
    assert (dataset / "dataset_dict.json").exists()  # untouched


def test_a_run_that_makes_no_pairs_exports_nothing_and_is_not_refused(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "judge: {enabled: false}\nrevise: {enabled: false}\n"))
    summary = run_pipeline(config, stages=("export",), quiet=True)
    assert summary.quality is None and not (tmp_path / "run" / "export").exists()


def test_quiet_silences_datasets_bars_too(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`--quiet` promises no progress bars; the export's `datasets` calls drew theirs all the same."""
    import datasets

    datasets.enable_progress_bars()
    config = load_config(_config(tmp_path, "judge: {enabled: false}\nrevise: {enabled: false}\n"))
    run_pipeline(config, stages=("export",), quiet=True)
    capfd.readouterr()
    datasets.Dataset.from_list([{"a": 1}] * 3).save_to_disk(str(tmp_path / "d"))
    assert "Saving the dataset" not in capfd.readouterr().err
    assert datasets.utils.are_progress_bars_disabled()
