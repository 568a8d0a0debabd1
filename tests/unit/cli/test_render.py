"""Text from users, servers and models is printed as text: brackets never act as rich markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rlaif.cli import render
from rlaif.reports import JudgeSummary, RunCounts, RunSummary, StageReport

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
