"""examples/python_api.py against the real session vLLM server: typed judgments with their parse status,
a revision and a pipeline summary. SmolLM2-135M judges badly (it tends to answer "A" in both orders), so
this checks what comes back and that it is honest, not its quality."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import rlaif
from rlaif.backends.vllm_server import VLLMServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python_api.py"


def test_the_python_api_example_on_a_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vllm_server: VLLMServer
) -> None:
    monkeypatch.setenv("RLAIF_BASE_URL", vllm_server.base_url)
    monkeypatch.setenv("RLAIF_MODEL", vllm_server.served_name)
    monkeypatch.setenv("RLAIF_RUN_DIR", str(tmp_path / "run"))
    done = runpy.run_path(str(EXAMPLE), run_name="__main__")
    judged = done["judged"]
    assert len(judged) == 3 and all(isinstance(j, rlaif.PairJudgment) for j in judged)
    for found in judged:
        orders = found.judgment.orders
        assert found.error is None and found.status in ("ok", "partial", "unparsed")
        assert len(orders) == 2 and {o.first_id for o in orders} == {
            found.judgment.response_a_id,
            found.judgment.response_b_id,
        }
        assert all(o.status in ("ok", "unparsed") and o.raw for o in orders)  # the raw answer is kept
        if found.status == "ok":
            assert found.p_a is not None and 0.0 <= found.p_a <= 1.0 and found.consistent is not None
            # An inconsistent pair is a tie, whatever its averaged label says.
            expected = "tie" if not found.consistent or found.p_a == 0.5 else "AB"[found.p_a < 0.5]
            assert found.verdict == expected
    assert [j.principle_ids for j in judged][1:] == [("dangerous-instructions",), ("privacy",)]
    revision = done["revision"]
    assert len(revision.rounds) == 1 and revision.rounds[0].critique and revision.final
    summary = done["summary"]
    assert isinstance(summary, rlaif.RunSummary) and summary.counts.judgments == 4
