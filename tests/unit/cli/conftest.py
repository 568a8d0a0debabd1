"""`rlaif`: the command run in this process from the repository root, 200 columns wide."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Cli, run_cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def rlaif(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "200")
    return run_cli(capsys, monkeypatch)
