"""A run whose requests failed after their retries exits 1 with the counts, not 0."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from rlaif.cli.main import app
from rlaif.errors import IncompleteRun
from tests.support.stub import JudgeReply, StubServer

PROMPTS = Path(__file__).resolve().parents[3] / "examples" / "prompts.jsonl"


def _config(tmp_path: Path, stub: StubServer) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"), "prompts": {"path": str(PROMPTS), "limit": 2},
        "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
    }))  # fmt: skip
    return config


def test_failed_judge_requests_make_the_run_exit_1_naming_the_counts(tmp_path: Path) -> None:
    with StubServer(judge_reply=lambda body: JudgeReply(status=400)) as stub:
        config = _config(tmp_path, stub)
        assert CliRunner().invoke(app, ["respond", str(config), "--quiet"]).exit_code == 0
        result = CliRunner().invoke(app, ["judge", str(config), "--quiet"])
    assert isinstance(result.exception, IncompleteRun) and result.exception.exit_code == 1
    message = str(result.exception)
    assert "2 request(s) failed (judge 2)" in message and "rerun the same command" in message
    assert "400" in message or "BadRequest" in message
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "incomplete"
    assert "judge" in result.output  # the summary was printed first


def test_a_complete_stage_exits_0(tmp_path: Path) -> None:
    with StubServer() as stub:
        config = _config(tmp_path, stub)
        assert CliRunner().invoke(app, ["respond", str(config), "--quiet"]).exit_code == 0
