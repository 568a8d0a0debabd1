"""The `rlaif` command as a user runs it: exit codes and one-line errors, never a traceback.

Two tests run the installed console script; the rest call `rlaif.cli.main.main` in this process, which is
what the script runs, to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Cli, assert_one_line_error

ROOT = Path(__file__).resolve().parents[3]
RLAIF = Path(sys.executable).with_name("rlaif")


def script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([str(RLAIF), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_script_validates_shipped_constitution() -> None:
    result = script("constitution", "validate", "harmless")
    assert result.returncode == 0, result.stderr
    assert "harmless v1" in result.stdout
    for principle_id in ("harm-general", "weapons", "privacy", "substances"):
        assert principle_id in result.stdout
    assert "ok: 16 principles (16 critique, 16 judge, 0 checkable), 2 examples" in result.stdout
    assert result.stderr == ""


def test_script_error_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(script("run", str(tmp_path / "missing.yaml")), "missing.yaml", "not found")


def test_validate_own_file(rlaif: Cli, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nprinciples:\n  - id: kind\n    critique_request: c\n    revision_request: r\n"
        "    judge_question: q\n",
        encoding="utf-8",
    )
    result = rlaif("constitution", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "kind" in result.stdout
    assert "ok: 1 principles (1 critique, 1 judge, 0 checkable), 0 examples" in result.stdout


def test_validate_bad_file(rlaif: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nprinciples:\n  - id: kind\n    critique_request: c\n    judge_question: q\n",
        encoding="utf-8",
    )
    line = assert_one_line_error(rlaif("constitution", "validate", str(path)), "bad.yaml", "revision_request")
    assert "line 3" in line


def test_validate_shows_checks(rlaif: Cli, tmp_path: Path) -> None:
    path = tmp_path / "checked.yaml"
    path.write_text(
        "name: checked\nprinciples:\n  - id: brief\n    judge_question: Which is shorter?\n"
        '    check: {max_words: 60, must_not_match: "(?i)https?://"}\n',
        encoding="utf-8",
    )
    result = rlaif("constitution", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "max_words: 60; must_not_match: (?i)https?://" in result.stdout
    assert "ok: 1 principles (0 critique, 1 judge, 1 checkable), 0 examples" in result.stdout


def test_validate_shows_shipped_checks(rlaif: Cli) -> None:
    result = rlaif("constitution", "validate", "concise-plain")
    assert result.returncode == 0, result.stderr
    assert "min_words: 10; max_words: 60" in result.stdout
    assert "must_not_match: (?i)https?://" in result.stdout
    assert "4 checkable" in result.stdout


def test_constitution_bench(rlaif: Cli, tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    result = rlaif("constitution", "bench", "concise-plain", "--responses", "300", "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert "responses/s" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["responses"] == 300
    assert [p["principle_id"] for p in data["principles"]] == [
        "concise", "no-canned-opener", "no-links", "plain-prose",
    ]  # fmt: skip
    assert data["responses_per_second"] > 0


def test_constitution_bench_without_checks(rlaif: Cli) -> None:
    assert_one_line_error(rlaif("constitution", "bench", "harmless"), "no principle with a declarative check")


def test_constitution_bench_json_into_a_folder(rlaif: Cli, tmp_path: Path) -> None:
    args = ("constitution", "bench", "concise-plain", "--responses", "10", "--json", str(tmp_path))
    assert_one_line_error(rlaif(*args), "--json", "is a folder; give a file name")


def test_validate_unknown_name(rlaif: Cli) -> None:
    assert_one_line_error(rlaif("constitution", "validate", "no-such-thing"), "'no-such-thing'", "harmless")


def test_run_missing_config(rlaif: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(rlaif("run", "missing.yaml"), "missing.yaml", "not found")


def test_run_invalid_config(rlaif: Cli, tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("prompts: {path: p.jsonl}\nrevise:\n  rounds: 0\n", encoding="utf-8")
    assert_one_line_error(rlaif("run", str(path)), "run.yaml", "line 3", "revise.rounds")


def test_set_without_equals(rlaif: Cli) -> None:
    result = rlaif("run", "examples/quickstart.yaml", "--set", "revise.rounds")
    assert_one_line_error(result, "'revise.rounds'", "key=value")


def test_set_override_is_validated(rlaif: Cli) -> None:
    result = rlaif("respond", "examples/quickstart.yaml", "--set", "revise.rounds=zero")
    assert_one_line_error(result, "quickstart.yaml", "revise.rounds")


def test_usage_errors_are_messages_not_tracebacks(rlaif: Cli) -> None:
    for args, message in [
        (("run",), "Error: Missing argument 'config'."),
        (("run", "x.yaml", "--bogus"), "Error: No such option: --bogus"),
    ]:
        result = rlaif(*args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().endswith(message)
    result = rlaif()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "COMMAND [ARGS]" in result.stdout + result.stderr


def test_an_internal_error_is_one_line_with_the_traceback_in_a_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlaif.cli import main as entry

    def broken(**_: object) -> None:
        raise TypeError("unexpected [/bold] thing")

    monkeypatch.setattr(entry, "app", broken)
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 4
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: internal error (TypeError: unexpected [/bold] thing)")
    log = Path(line.split("the traceback is in ")[1].split(":")[0])
    assert "Traceback" in log.read_text() and "unexpected [/bold] thing" in log.read_text()
    log.unlink()


def test_version() -> None:
    from typer.testing import CliRunner

    from rlaif import __version__
    from rlaif.cli.main import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rlaif {__version__}"
