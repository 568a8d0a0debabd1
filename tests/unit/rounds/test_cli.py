"""`rlaif iterate CONFIG`: the round table, --json, and a refused round's one line and exit status."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rlaif.config import RunConfig
from rlaif.errors import GateError
from tests.support.cli import run_cli
from tests.unit.rounds.conftest import FakeRounds

Make = Callable[..., RunConfig]


def test_iterate_prints_the_round_table_and_writes_json(
    fake: FakeRounds, make_config: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    make_config("{rounds: 2, heldout: heldout.jsonl, prompts_per_round: 4, stop: {min_gain: 0.5}}")
    monkeypatch.setenv("COLUMNS", "250")
    rlaif = run_cli(capsys, monkeypatch)
    result = rlaif("iterate", str(tmp_path / "run.yaml"), "--json", str(tmp_path / "out.json"), "-q")
    assert result.returncode == 0, result.stderr
    assert "every check" in result.stdout and "base" in result.stdout
    assert "40% (40/100)" in result.stdout and "20% (20/100)" in result.stdout
    assert "stopped after round 1 (min_gain)" in result.stdout and "best round: 1" in result.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["status"] == "stopped" and data["rounds"][0]["pass_rates"]["every check"]["passed"] == 40


def test_a_refused_round_is_one_line_and_exit_status_one(
    fake: FakeRounds, make_config: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def refuse(config: RunConfig) -> None:
        raise GateError("human review gate: 3 of 20 pairs reviewed; review them with rlaif review terminal X")

    fake.fail_pipeline = refuse
    make_config()
    result = run_cli(capsys, monkeypatch)("iterate", str(tmp_path / "run.yaml"), "-q")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: round 1 was refused: human review gate: 3 of 20 pairs reviewed; review them with rlaif "
        "review terminal X; rerun the same command to retry it"
    ]


def test_markdown_table_has_a_row_per_round(fake: FakeRounds, make_config: Make) -> None:
    from rlaif.cli.tables.iterate import rounds_markdown
    from rlaif.rounds import iterate

    text = rounds_markdown(iterate(make_config(), quiet=True))
    lines = text.splitlines()
    assert len(lines) == 2 + 1 + 3 and lines[2].startswith("| base |")
    assert lines[-1].startswith("| 3 (best) | 7 | 70% (70/100) | 70% (70/100) | 10.0% [")
