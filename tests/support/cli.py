"""The `rlaif` command run in this process, as the console script runs it (`rlaif.cli.main.main`), and the
check that an error is one line. The `rlaif` fixture of `tests/unit/cli/conftest.py` hands out `run_cli`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from rlaif.cli.main import main

__all__ = ["Cli", "Result", "assert_one_line_error", "run_cli"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A function that runs `rlaif ARGS...` in this process and returns its exit status and output."""

    def call(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["rlaif", *args])
        with pytest.raises(SystemExit) as info:
            main()
            sys.exit(0)
        out, err = capsys.readouterr()
        code = info.value.code
        return Result(code if isinstance(code, int) else (0 if code is None else 1), out, err)

    return call


def assert_one_line_error(result: Result | subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]
