"""examples/python_api.py runs against the stub server (a base URL from RLAIF_BASE_URL), in-process."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import rlaif
from tests.support.stub import StubServer

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python_api.py"


def test_the_python_api_example_runs_on_a_base_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubServer() as stub:
        monkeypatch.setenv("RLAIF_BASE_URL", stub.base_url)
        monkeypatch.setenv("RLAIF_RUN_DIR", str(tmp_path / "run"))
        done = runpy.run_path(str(EXAMPLE), run_name="__main__")
    judged = done["judged"]
    assert len(judged) == 3 and all(isinstance(j, rlaif.PairJudgment) for j in judged)
    # The stub answers "A" at 0.7 whoever is shown first: position bias, flagged and tied, never a preference.
    assert {(j.status, j.consistent, j.verdict) for j in judged} == {("ok", False, "tie")}
    assert [j.principle_ids for j in judged][1:] == [("dangerous-instructions",), ("privacy",)]
    assert isinstance(done["revision"], rlaif.Revision) and len(done["revision"].rounds) == 1
    assert isinstance(done["summary"], rlaif.RunSummary) and done["summary"].counts.judgments == 4
    out = capsys.readouterr().out
    assert out.count("verdict tie P(A better) 0.50 consistent False status ok") == 3
    assert "revised under " in out and " pairs, judge consistency " in out
