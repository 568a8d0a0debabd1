"""Text from users, servers and models is printed as text: brackets never act as rich markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rlaif.cli.tables import pipeline as render
from rlaif.pipeline.reports import JudgeSummary, RunCounts, RunSummary, StageReport

HOSTILE = "runs/[/INST] [/bold] [red]x[/]"


def test_the_summary_prints_paths_and_server_errors_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=400, color_system=None))
    zero = ("responses", "revision_steps", "revisions", "judgments", "pairs", "pairs_from_judge",
            "pairs_from_revision", "pairs_from_check", "pairs_human_reviewed")  # fmt: skip
    counts = RunCounts(prompts=1, **dict.fromkeys(zero, 0))
    stage = StageReport()
    stage.fail(f"BadRequestError: prompt holds {HOSTILE}")
    summary = RunSummary(run_dir=HOSTILE, constitution="c", model="m", judge_model=None, counts=counts,
                         judge=JudgeSummary(), stages={"judge": stage},
                         files={"run_dir": HOSTILE})  # fmt: skip
    render.print_summary(summary)
    shown = out.getvalue()
    assert shown.count(HOSTILE) == 2  # the failed request's error and the files row, brackets intact


def test_the_summary_shows_an_ensembles_members_and_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlaif.train.reports import HeadAccuracy, RewardAccuracy, TrainSummary

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=400, color_system=None))
    zero = ("responses", "revision_steps", "revisions", "judgments", "pairs", "pairs_from_judge",
            "pairs_from_revision", "pairs_from_check", "pairs_human_reviewed")  # fmt: skip
    held_out = RewardAccuracy(pairs=4, members=[0.5, 0.75], ensemble=0.75,
                              heads={"safety": HeadAccuracy(pairs=3, accuracy=1.0)})  # fmt: skip
    metrics = {"eval_accuracy": 0.75, "eval_accuracy_before": None, "eval_pairs": 4,
               "held_out": held_out.model_dump(),
               "heads_excluded": {"style": "no training pair [x]"}}  # fmt: skip
    trained = TrainSummary(trainer="reward", steps=4, seconds_per_step=1.0, loss_first=None, loss_last=None,
                           output_dir="o", metrics=metrics)  # fmt: skip
    summary = RunSummary(run_dir="r", constitution="c", model="m", judge_model=None,
                         counts=RunCounts(prompts=1, **dict.fromkeys(zero, 0)), judge=JudgeSummary(),
                         trained={"reward": trained})  # fmt: skip
    render.print_summary(summary)
    shown = out.getvalue()
    assert "reward model held-out accuracy" in shown and "n/a → 0.750 (4 pairs)" in shown
    assert "reward ensemble members held-out accuracy" in shown and "50.0%, 75.0% (4 pairs)" in shown
    assert "reward head safety held-out accuracy" in shown and "100.0% (3 pairs)" in shown
    assert "reward head style left out" in shown and "no training pair [x]" in shown


def test_a_rate_is_printed_one_way_in_every_table() -> None:
    """`rate_text` is the one format of a `Rate`: no table module formats a rate's interval itself."""
    import re
    from pathlib import Path

    from rlaif.reports import Rate, rate_text

    assert rate_text(Rate(value=0.441, n=500, ci95=(0.398, 0.485))) == "44.1% of 500  [39.8%, 48.5%]"
    assert rate_text(Rate(value=0.5, n=2)) == "50.0% of 2"
    assert rate_text(Rate(value=None, n=0)) == "n/a (of 0)"
    assert rate_text(None) == "n/a"
    tables = Path(render.__file__).parent
    own = [p.name for p in tables.glob("*.py") if re.search(r"percent\([^)]*\.ci95", p.read_text())]
    assert own == []
