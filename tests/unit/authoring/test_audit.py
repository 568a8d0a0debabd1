"""`rlaif evaluate audit`: traits of chosen against rejected, read from an export a line at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlaif.authoring.audit import TRAITS, audit_run
from rlaif.cli.main import app
from rlaif.errors import RunDirError


def export(run: Path, rows: list[dict[str, object]], constitution: str = "concise-plain") -> Path:
    (run / "export").mkdir(parents=True)
    (run / "export" / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "manifest.json").write_text(json.dumps({"config": {"constitution": constitution}}))
    return run


def pair(chosen: str, rejected: str, *principles: str) -> dict[str, object]:
    return {
        "prompt": [{"role": "user", "content": "Tell me about cats."}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "principle_ids": list(principles),
    }


def shares(report_group: object) -> dict[str, tuple[float | None, int, int]]:
    return {t.trait: (t.chosen_more.value, t.chosen_more.n, t.equal) for t in report_group.traits}  # type: ignore[attr-defined]


def test_traits_overall_and_per_principle(tmp_path: Path) -> None:
    rows = [
        pair("Cats purr.\n- soft\n- warm\nPlease pet them.", "I can't help with that.", "concise"),
        pair("Cats sleep a lot, perhaps sixteen hours.", "Cats sleep.", "concise", "plain-words"),
        pair("Cats.", "Cats are, I think, probably small; see https://cats.example", "plain-words"),
    ]
    report = audit_run(export(tmp_path / "run", rows))
    assert report.pairs == 3 and report.constitution == "concise-plain v1"
    assert [g.group for g in report.groups] == ["all", "concise", "plain-words"]
    everything = shares(report.groups[0])
    assert everything["longer"] == (pytest.approx(2 / 3), 3, 0)
    assert everything["refusal"] == (0.0, 1, 2)
    assert everything["list-formatting"] == (1.0, 1, 2)
    assert everything["hedging"] == (0.5, 2, 1)
    assert everything["politeness"] == (1.0, 1, 2)
    assert everything["passes no-links"] == (1.0, 1, 2)  # the rejected third answer links out
    assert [g.pairs for g in report.groups] == [3, 2, 2]
    assert list(report.traits)[: len(TRAITS)] == list(TRAITS)


def test_an_empty_export_is_a_note_and_exit_1(tmp_path: Path) -> None:
    run = export(tmp_path / "run", [])
    assert any("has no pairs" in note for note in audit_run(run).notes)
    result = CliRunner().invoke(app, ["evaluate", "audit", str(run)])
    assert result.exit_code == 1 and "has no pairs" in result.output.replace("\n", " ")


def test_a_run_without_an_export_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(RunDirError, match="has not exported pairs yet; run `rlaif export CONFIG` first"):
        audit_run(tmp_path / "run")


def test_an_unknown_constitution_leaves_out_the_checks_and_says_so(tmp_path: Path) -> None:
    report = audit_run(export(tmp_path / "run", [pair("a b", "a")], constitution="no-such-one"))
    assert report.constitution is None
    assert [t.trait for t in report.groups[0].traits] == list(TRAITS)
    assert any("principle checks not measured" in note for note in report.notes)


def test_a_row_that_is_not_a_pair_names_its_line(tmp_path: Path) -> None:
    run = export(tmp_path / "run", [pair("a", "b"), {"prompt": []}])
    with pytest.raises(RunDirError, match="line 2: not a preference row"):
        audit_run(run)
