"""A run on the stub server: the export's p_chosen calibrated by a saved T with the raw label beside it,
left raw (and said so on the card) without ground truth, and a judge ensemble's effective votes."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.config import load_config
from rlaif.evaluate.calibration import temperature_map
from rlaif.pipeline.run import run_pipeline
from rlaif.records import SavedCalibration
from tests.support.stub import JudgeReply, StubServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def later_wins(body: dict[str, Any]) -> JudgeReply:
    """P = 0.9 for the candidate later in alphabetical order, in either order (consistent, so its pairs are
    exported; the stub's answers all have one length)."""
    text = body["messages"][-1]["content"]
    a, b = (re.search(rf"<response_{x}_\w+>\n(.*?)\n</response_{x}", text, re.S) for x in "AB")
    assert a is not None and b is not None
    p = 0.9 if a.group(1) > b.group(1) else 0.1
    return JudgeReply(text="A" if p > 0.5 else "B", logprobs={"A": math.log(p), "B": math.log(1 - p)})


def test_a_saved_temperature_calibrates_the_export_and_auto_without_truth_stays_raw(tmp_path: Path) -> None:
    saved = SavedCalibration(temperature=2.0, n=400, judge_model="another-judge")
    (tmp_path / "cal.json").write_text(saved.model_dump_json(), encoding="utf-8")
    with StubServer(judge_reply=later_wins) as stub:
        settings = {
            "run_dir": str(tmp_path / "run"),
            "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 8},
            "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
            "revise": {"enabled": False},
            "judge": {"ensemble": 2, "calibration": "cal.json"},
        }
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(settings))
        summary = run_pipeline(load_config(config), stages=("respond", "judge", "export"), quiet=True)
        fit = summary.calibration
        assert fit is not None and fit.applied and fit.source == "file" and fit.temperature == 2.0
        assert any("fitted for judge 'another-judge'" in w for w in fit.warnings)
        rows = [json.loads(line) for line in (tmp_path / "run" / "export" / "pairs.jsonl").open()]
        judged = [r for r in rows if r["source"] == "judge"]
        assert judged, "the stub judge's pairs should be exported"
        for row in judged:
            assert row["p_chosen_raw"] == row["score"] and row["p_chosen"] == temperature_map(
                row["score"], 2.0
            )
        assert summary.ensemble is not None and summary.ensemble.effective_votes == 1.0  # members alike
        card = (tmp_path / "run" / "export" / "README.md").read_text()
        assert "soft labels (`p_chosen` of judge pairs): calibrated: T = 2.00 from" in card
        assert "2 judges, 1.0 effective votes" in card

        settings["judge"] = {"calibration": "auto"}
        config.write_text(yaml.safe_dump(settings))
        summary = run_pipeline(load_config(config), stages=("export",), quiet=True)
    fit = summary.calibration
    # The only ground truth is the universal probes' few (judge.probes): too few rows to fit on.
    assert fit is not None and not fit.applied and 0 < fit.rows < fit.min_rows
    assert set(fit.by_source) <= {
        f"probe:{kind}" for kind in ("padded", "off_topic", "truncated", "repetition")
    }
    rows = [json.loads(line) for line in (tmp_path / "run" / "export" / "pairs.jsonl").open()]
    assert all(r["p_chosen"] == r["p_chosen_raw"] for r in rows)
    card = (tmp_path / "run" / "export" / "README.md").read_text()
    assert f"**uncalibrated** (the judge's raw labels): {fit.rows} decided ground-truth rows" in card


def test_the_summary_prints_the_fit_the_no_signal_warning_and_the_votes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from rich.console import Console

    from rlaif.cli.tables import pipeline as render
    from rlaif.evaluate.calibration import fit_calibration
    from rlaif.evaluate.ensemble import votes_from_labels
    from rlaif.pipeline.reports import JudgeSummary, RunCounts, RunSummary

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=400, color_system=None))
    coin = fit_calibration([(0.8, i % 2 == 0) for i in range(40)])  # right half the time at P 0.8
    counts = RunCounts(prompts=1, responses=0, revision_steps=0, revisions=0, judgments=0)
    summary = RunSummary(run_dir="r", constitution="c", model="m", judge_model=None, counts=counts,
                         judge=JudgeSummary(), calibration=coin,
                         ensemble=votes_from_labels([[p, p, p] for p in (0.1, 0.5, 0.9)], 3))  # fmt: skip
    render.print_summary(summary)
    shown = out.getvalue()
    assert "uncalibrated (raw judge labels): the judge is not distinguishable from a coin" in shown
    assert "calibration on 40 ground-truth rows" in shown and "ECE 0.300, Brier 0.340" in shown
    assert "calibration warning" in shown and "3 judges, 1.0 effective votes" in shown
