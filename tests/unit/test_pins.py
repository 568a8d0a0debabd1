"""What users and their scripts see stays put while the code moves: the `--help` text of every command and
the JSON schema (what `--json` writes) of every report model, compared with golden files under `golden/`.

The golden files were written from the code before the reports, the config and the tables moved; a change
to them is a change of behaviour, made on purpose: rerun with `RLAIF_WRITE_GOLDEN=1` and commit the diff.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import rlaif as package
from rlaif.reports import Report
from tests.support.cli import Cli, run_cli
from tests.unit.cli.test_habits import commands

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]
WRITE = os.environ.get("RLAIF_WRITE_GOLDEN") == "1"


def report_classes() -> dict[str, type[Report]]:
    """Every subclass of `Report` defined in a `reports.py` (the foundation's and each folder's), by name."""
    modules = ["rlaif.reports"]
    for info in pkgutil.iter_modules(package.__path__):
        name = f"rlaif.{info.name}.reports"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            modules.append(name)
    for name in modules:
        importlib.import_module(name)
    found: dict[str, type[Report]] = {}
    todo: list[type[Report]] = [Report]
    while todo:
        cls = todo.pop()
        if cls.__module__ in modules:
            assert found.setdefault(cls.__name__, cls) is cls, f"two reports named {cls.__name__}"
        todo.extend(cls.__subclasses__())
    return found


def compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{name} changed (RLAIF_WRITE_GOLDEN=1 if meant)"


def test_the_schema_of_every_report_is_unchanged() -> None:
    schemas: dict[str, Any] = {
        name: cls.model_json_schema() for name, cls in sorted(report_classes().items())
    }
    assert len(schemas) > 60
    compare("report_schemas.json", json.dumps(schemas, indent=1, sort_keys=True) + "\n")


@pytest.fixture
def rlaif(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "120")
    return run_cli(capsys, monkeypatch)


def test_the_help_of_every_command_is_unchanged(rlaif: Cli) -> None:
    pages = []
    for path, _ in commands():
        result = rlaif(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        # click names the program after how Python was started (`python -m pytest` here): not ours to pin.
        text = re.sub(r"Usage: .*?rlaif(?= )", "Usage: rlaif", result.stdout)
        text = "\n".join(line.rstrip() for line in text.splitlines())
        pages.append(f"$ rlaif {' '.join(path)} --help\n{text}")
    assert len(pages) > 30
    compare("help.txt", "\n".join(pages))


def test_the_schema_of_the_run_config_is_unchanged() -> None:
    """Every section, field, default and description of the YAML file (the docstrings are the docs)."""
    from rlaif.config import RunConfig

    compare("config_schema.json", json.dumps(RunConfig.model_json_schema(), indent=1, sort_keys=True) + "\n")
