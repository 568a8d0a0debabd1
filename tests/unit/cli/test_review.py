"""`rlaif review ...` end to end in-process: terminal (piped keys), hook, files, report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlaif.cli.main import app
from rlaif.errors import ConfigError, ReviewError
from rlaif.records import ReviewDecision
from rlaif.review.session import current_decisions
from rlaif.store import RunDir
from tests.support.cli import Cli, assert_one_line_error
from tests.support.review import make_pair, run_with_pairs

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    pairs = [make_pair(i, principle="harm" if i % 2 else "honest") for i in range(6)]
    with run_with_pairs(tmp_path / "run", pairs) as run:
        run.save_manifest(config={"seed": 1, "constitution": "harmless", "review": {"sample": {"size": 4}}})
    return tmp_path / "run"


def standing(run_dir: Path) -> dict[str, dict[str, ReviewDecision]]:
    with RunDir(run_dir) as run:
        return current_decisions(run.stage("reviews", ReviewDecision))


def invoke(*args: str, input: str | None = None) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def test_terminal_with_piped_keys_then_report(run_dir: Path) -> None:
    result = invoke("review", "terminal", run_dir, "--reviewer", "alice", input="1\n2\nq\n")
    assert "stopped: 2 of 4 reviewed by alice" in result.output  # type: ignore[attr-defined]
    assert {r for by in standing(run_dir).values() for r in by} == {"alice"}
    report = invoke("review", "report", run_dir)
    assert "AI judge vs people" in report.output and "gate: none configured" in report.output  # type: ignore[attr-defined]
    written = json.loads((run_dir / "review_report.json").read_text())
    assert written["ai_vs_human"]["overall"]["decisions"] == 2


def test_hook_from_a_file(run_dir: Path) -> None:
    result = invoke("review", "hook", run_dir, "--hook", f"{EXAMPLES / 'review_callback.py'}:review")
    assert "4 decisions stored" in result.output  # type: ignore[attr-defined]
    reviewers = {r for by in standing(run_dir).values() for r in by}
    assert reviewers == {f"hook:{EXAMPLES / 'review_callback.py'}:review"}


def test_export_batch_and_import(run_dir: Path, tmp_path: Path) -> None:
    invoke("review", "export-batch", run_dir, "--out", tmp_path / "out")
    (csv_path,) = (tmp_path / "out").glob("*.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 4
    for row in rows:
        row["verdict"] = "tie"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = invoke("review", "import", run_dir, csv_path, "--reviewer", "zoe")
    assert "stored 4, unchanged 0" in result.output  # type: ignore[attr-defined]
    assert {by["zoe"].verdict for by in standing(run_dir).values()} == {"tie"}


def test_not_a_run_dir(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="is not a run directory"):
        invoke("review", "report", tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_a_hook_named_by_the_run_folder_is_never_imported(tmp_path: Path) -> None:
    """Opening someone else's run must not run the code its saved config names."""
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef review(items):\n    return []\n"
    )
    with run_with_pairs(tmp_path / "run", [make_pair(i) for i in range(3)]) as run:
        run.save_manifest(config={"seed": 0, "review": {"hook": f"{tmp_path / 'evil.py'}:review"}})
    result = CliRunner().invoke(app, ["review", "hook", str(tmp_path / "run")])
    assert isinstance(result.exception, ConfigError) and not marker.exists()
    assert "never run" in str(result.exception) and "pass --hook" in str(result.exception)


def test_reviewers_and_the_report_work_while_a_pipeline_holds_the_run(run_dir: Path, rlaif: Cli) -> None:
    """Reviewing takes no run-directory lock: two reviewers and the report run while `rlaif run` (here,
    this process) holds it, and the report compares the two reviewers."""
    with RunDir(run_dir):
        invoke("review", "terminal", run_dir, "--reviewer", "alice", input="1\n1\n2\n1\nq\n")
        invoke("review", "terminal", run_dir, "--reviewer", "bob", input="1\nt\n2\n2\nq\n")
        report = rlaif("review", "report", str(run_dir))
    assert report.returncode == 0, report.stderr
    assert "Between reviewers" in report.stdout and "Cohen: alice | bob" in report.stdout
    written = json.loads((run_dir / "review_report.json").read_text())
    both = [by for by in standing(run_dir).values() if {"alice", "bob"} <= set(by)]
    assert written["between_reviewers"]["cohen"]["alice | bob"]["pairs"] == len(both) == 4
    same = sum(by["alice"].verdict == by["bob"].verdict for by in both)
    assert written["between_reviewers"]["cohen"]["alice | bob"]["agree"] == same
    assert written["reviewers"] == {"alice": 4, "bob": 4}


def test_a_reviewer_name_with_path_characters_is_one_line(run_dir: Path, rlaif: Cli, tmp_path: Path) -> None:
    for command in ("terminal", "serve", "export-batch"):
        assert_one_line_error(
            rlaif("review", command, str(run_dir), "--reviewer", "../x"), "--reviewer", "'/'"
        )
    assert_one_line_error(rlaif("review", "terminal", str(run_dir), "--reviewer", ""), "is empty")
    batch = tmp_path / "batch.jsonl"
    batch.write_text("{}\n")
    assert_one_line_error(rlaif("review", "import", str(run_dir), str(batch), "--reviewer", "a/b"), "'/'")
    assert not (run_dir / "reviews.jsonl").exists()
