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


def judge_row(chosen: str, rejected: str, **extra: object) -> dict[str, object]:
    return {**pair(chosen, rejected, "concise", "a-rather-long-principle-id-that-wraps"), "source": "judge",
            "human_reviewed": False, **extra}  # fmt: skip


def test_a_judge_that_picks_the_longer_answer_is_warned_with_the_gates_figure(tmp_path: Path) -> None:
    rows = [judge_row("Cats purr when they are content.", "Cats purr.") for _ in range(40)]
    rows.append(
        judge_row("Cats.", "Cats sleep a lot.", source="check")
    )  # a known label: left out of the share
    report = audit_run(export(tmp_path / "run", rows))
    length = report.length_bias
    assert length is not None and length.judged.n == 40 and length.judged.value == 1.0
    (warning,) = report.warnings
    assert "explained by length" in warning and "in 40 of 40 judge pairs" in warning
    assert "quality.max_length_bias 25.0%" in warning
    # The run's own threshold, from its manifest, is the one read.
    (tmp_path / "run" / "manifest.json").write_text(
        json.dumps({"config": {"constitution": "concise-plain", "quality": {"max_length_bias": None}}})
    )
    assert audit_run(tmp_path / "run").warnings == []
    # A judge without a length preference: no warning.
    blind = [judge_row(*(("a b c", "a") if i % 2 else ("a", "a b c"))) for i in range(40)]
    assert audit_run(export(tmp_path / "blind", blind)).warnings == []


def test_the_table_reads_at_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from rlaif.cli.tables import constitution as render_authoring

    rows = [judge_row("Cats purr when they are content.", "Cats purr.") for _ in range(40)]
    report = audit_run(export(tmp_path / "run", rows))
    out = io.StringIO()
    monkeypatch.setattr(render_authoring, "console", Console(width=80, file=out, color_system=None))
    render_authoring.print_audit(report)
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    table = [line for line in lines if line.startswith(("┃", "│"))]
    header = table[0]
    for column in ("pairs / trait", "chosen more", "95% CI", "differ", "equal"):
        assert column in header
    # Every cell whole: no value cut to a character, every trait and group named on one line.
    cells = [c.strip() for line in table[1:] for c in line.strip("│").split("│")]
    assert all(len(c) != 1 or c.isdigit() for c in cells), cells
    assert "100% │ [91, 100] │     40 │     0" in text
    for name in ("longer", "list-formatting", "passes no-canned-opener", "concise (40 pairs)"):
        assert name in text
    assert "judge length bias: chose the longer answer in 40 of 40" in " ".join(text.split())
