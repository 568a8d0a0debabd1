"""The CLI's habits, checked on every command: one way to give the config, `--set` and `--quiet` where a
config is read, flags shown as flags, fixed sets of values as choices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from rlaif.cli.main import app
from rlaif.cli.options import CommandGroup
from tests.support.cli import Cli, Result, assert_one_line_error

# Commands that read a run config but show no progress bar, so have no `--quiet`: a benchmark is always
# quiet (a bar would share the timed CPU), the constitution tools print a report at once, review is
# interactive or writes files.
NO_PROGRESS = {
    "bench", "train bench", "constitution lint", "constitution preview", "review terminal", "review serve",
    "review hook", "review export-batch", "review report",
}  # fmt: skip


def commands(group: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the `rlaif` app (groups too), with the words that invoke it."""
    group = group or typer.main.get_command(app)
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, (*path, name))


def options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def takes_config(command: Any) -> bool:
    return any(param.name == "config" for param in command.params)


def test_every_group_is_a_command_group() -> None:
    groups = {" ".join(path) or "rlaif": c for path, c in commands() if hasattr(c, "commands")}
    assert {"rlaif", "train", "evaluate", "review", "constitution", "model"} <= groups.keys()
    assert [name for name, group in groups.items() if not isinstance(group, CommandGroup)] == []


def test_every_command_that_reads_a_config_takes_set_and_quiet() -> None:
    readers = {" ".join(path): c for path, c in commands() if takes_config(c)}
    assert {"run", "respond", "train dpo", "evaluate winrate", "review report"} <= readers.keys()
    assert [name for name, c in readers.items() if "--set" not in options(c)] == []
    without_quiet = {name for name, c in readers.items() if "--quiet" not in options(c)}
    assert without_quiet == NO_PROGRESS


def test_a_required_config_is_the_first_argument_everywhere() -> None:
    """A command that needs a config takes it first; one that can do without takes `--config`."""
    for path, command in commands():
        config = [p for p in command.params if p.name == "config"]
        if config and config[0].param_type_name == "argument":
            assert command.params[0] is config[0], path
        elif config:
            assert not config[0].required and "--config" in config[0].opts, path


def test_help_shows_flags_as_flags_and_no_python_types(rlaif: Cli) -> None:
    seen = 0
    for path, _ in commands():
        result = rlaif(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        text = result.stdout
        assert "<bool" not in text and "<list" not in text, (path, text)
        seen += 1
    assert seen > 30
    judge = rlaif("evaluate", "judge", "--help").stdout
    assert "<logprob|cot|pointwise>" in judge and "<random|first|shorter|longer>" in judge
    assert "KEY=VALUE" in judge


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (("evaluate", "judge", "--data", "x.jsonl", "--mode", "logprobs"), "'logprob', 'cot', 'pointwise'"),
        (("evaluate", "judge", "--data", "x.jsonl", "--baseline", "short"), "'random', 'first', 'shorter'"),
        (("evaluate", "winrate", "x.yaml", "--engine", "torch"), "'auto', 'transformers', 'vllm'"),
        (("evaluate", "attacks", "--data", "x.jsonl", "--attack", "nope"), "'pad-length', 'null'"),
        (("train", "bench", "x.yaml", "--only", "dpp"), "'dpo'"),
    ],
)
def test_a_value_outside_the_choices_is_a_usage_error_listing_them(
    rlaif: Cli, args: tuple[str, ...], listed: str
) -> None:
    result = rlaif(*args)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert f"'{args[-1]}' is not one of" in line and listed in line


def _bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text("prompts: {path: p.jsonl}\nrevise:\n  rounds: 0\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [("run",), ("train", "dpo"), ("evaluate", "winrate")])
def test_the_config_is_the_first_argument(rlaif: Cli, tmp_path: Path, command: tuple[str, ...]) -> None:
    config = str(_bad_config(tmp_path))
    assert_one_line_error(rlaif(*command, config), "run.yaml", "line 3", "revise.rounds")


@pytest.mark.parametrize("spelling", [("--config", "{}"), ("-c", "{}"), ("--config={}",)])
@pytest.mark.parametrize("command", [("run",), ("evaluate", "compliance", "--prompts", "p.jsonl")])
def test_config_as_an_option_still_works_with_a_note(
    rlaif: Cli, tmp_path: Path, command: tuple[str, ...], spelling: tuple[str, ...]
) -> None:
    config = str(_bad_config(tmp_path))
    result = rlaif(*command, *(part.format(config) for part in spelling))
    note, error = result.stderr.strip().splitlines()
    words = " ".join(command[:2])
    assert note.startswith("note: `--config` is deprecated for `") and f"{words}`;" in note
    assert note.endswith(f"give the config as its first argument: {note.split('`')[3]} {config}")
    assert_one_line_error(
        Result(result.returncode, result.stdout, error), "run.yaml", "line 3", "revise.rounds"
    )


def test_an_optional_config_stays_an_option(rlaif: Cli, tmp_path: Path) -> None:
    config = str(_bad_config(tmp_path))
    result = rlaif("constitution", "lint", "harmless", "--config", config)
    assert_one_line_error(result, "run.yaml", "line 3", "revise.rounds")  # no note: --config is its spelling
