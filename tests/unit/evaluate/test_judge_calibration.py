"""`rlaif evaluate judge`: the temperature fit on the labelled set, saved for runs to reuse, and an
ensemble's effective votes."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.config import RunConfig, config_from_dict
from rlaif.errors import ConfigError
from rlaif.evaluate.calibration import load_calibration
from rlaif.evaluate.judge import evaluate_judge, judge_rows


def labelled(tmp_path: Path, rows: int = 80) -> Path:
    """In 3 of every 4 rows the chosen reply is the "good" one; in the 4th the rejected one is."""
    lines = []
    for i in range(rows):
        good, bad = f"a good reply {i}", f"bad {i}"
        chosen, rejected = (good, bad) if i % 4 else (bad, good)
        lines.append({"prompt": f"question {i}?", "chosen": chosen, "rejected": rejected})
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


def sure_of_good(request: ChatRequest) -> float:
    """A judge that always prefers "good" at P 0.95: right 75% of the time, so overconfident."""
    found = re.search(r"<response_A_\w+>\n(.*?)\n</response_A_", request.messages[0]["content"], re.S)
    assert found is not None
    return 0.95 if "good" in found.group(1) else 0.05


def fake_served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rlaif.evaluate import judge as module

    @contextlib.contextmanager
    def server(config: RunConfig, log_dir: Path):  # type: ignore[no-untyped-def]
        yield {}

    async def judge_served(args, data, constitution, config, quiet, store):  # type: ignore[no-untyped-def]
        rows, judgments = await judge_rows(
            FakeBackend(p_first=sure_of_good), data.pairs, constitution=constitution, config=config.judge,
            quiet=True, store=store,
        )  # fmt: skip
        return rows, judgments, "fake-judge"

    monkeypatch.setattr(module, "_eval_backend", server)
    monkeypatch.setattr(module, "_judge_served", judge_served)
    monkeypatch.setattr(module, "cache_dir", lambda *parts: (tmp_path / "cache").joinpath(*parts))


def test_the_fit_is_reported_saved_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_served(monkeypatch, tmp_path)
    config = RunConfig.model_validate({"prompts": {"path": "unused"}, "judge": {"ensemble": 2}})
    saved_at = tmp_path / "out" / "cal.json"
    report = evaluate_judge(labelled(tmp_path), config=config, save_calibration_path=saved_at)
    fit = report.calibration_fit
    assert fit is not None and fit.applied and fit.rows == 80 and fit.by_source == {"labelled": 80}
    # P 0.95 right 75% of the time: the MLE softens it to exactly 0.75, T = logit(0.95) / logit(0.75).
    assert fit.temperature == pytest.approx(2.680, abs=0.01)
    assert fit.ece_before == pytest.approx(0.20) and fit.ece_after is not None and fit.ece_after < 0.05
    assert fit.judge_model == "fake-judge" and fit.template_hash
    saved = load_calibration(saved_at)
    assert saved.temperature == fit.temperature and saved.n == 80 and saved.judge_model == "fake-judge"
    assert saved.data is not None and saved.data.endswith("labels.jsonl")
    assert report.ensemble is not None and report.ensemble.effective_votes == 1.0  # members alike
    run = config_from_dict({"prompts": {"path": "p.jsonl"}, "judge": {"calibration": str(saved_at)}})
    assert run.judge.calibration == str(saved_at)


def test_too_few_rows_are_not_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_served(monkeypatch, tmp_path)
    config = RunConfig.model_validate({"prompts": {"path": "unused"}})
    with pytest.raises(ConfigError, match="nothing saved, the fit does not apply: 12 decided"):
        evaluate_judge(labelled(tmp_path, 12), config=config, save_calibration_path=tmp_path / "cal.json")
    assert not (tmp_path / "cal.json").exists()


def test_cli_save_calibration_of_a_baseline_is_one_line_after_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from rlaif.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")
    cal = tmp_path / "cal.json"
    argv = ["rlaif", "evaluate", "judge", "--data", str(labelled(tmp_path, 8)), "--baseline", "shorter",
            "--save-calibration", str(cal)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    assert info.value.code != 0 and not cal.exists()
    assert "judge evaluation: baseline:shorter" in captured.out  # the report first
    error = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert len(error) == 1 and "a baseline has no judge labels to calibrate" in error[0]
