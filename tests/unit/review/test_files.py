"""File hand-off: export a review batch as JSONL and CSV, fill it in, import the decisions back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rlaif.errors import ReviewError
from rlaif.records import PreferencePair, ReviewDecision
from rlaif.review.files import export_batch, import_decisions
from rlaif.review.session import ReviewSession, current_decisions
from rlaif.store import RunDir
from tests.support.review import make_pair, run_with_pairs, settings


def batch(tmp_path: Path, pairs: list[PreferencePair], **config: object) -> tuple[RunDir, Path, Path]:
    run = run_with_pairs(tmp_path / "run", pairs)
    session = ReviewSession(run, pairs, settings("batch", **config), via="file")
    jsonl, csv_path = export_batch(run, session, out=tmp_path / "out")
    return run, jsonl, csv_path


def test_batch_files_hide_the_ai_choice(tmp_path: Path) -> None:
    pairs = [make_pair(i, chosen=f"CHOSEN {i}", rejected=f"REJECTED {i}") for i in range(4)]
    run, jsonl, csv_path = batch(tmp_path, pairs)
    with run:
        rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert [set(r) for r in rows][0] == {
            "batch_id", "pair_id", "reviewer", "verdict", "note", "prompt", "first", "second", "principles",
        }  # fmt: skip
        assert {r["first"][:5] for r in rows} == {"CHOSE", "REJEC"}  # seeded order: both ways
        for text in (jsonl.read_text(), csv_path.read_text()):
            assert "ai_preferred" not in text and "score" not in text
        key = json.loads((run.path / "review_batches" / f"{rows[0]['batch_id']}.key.json").read_text())
        assert set(key["shown_first"]) == {p.id for p in pairs}
        header = next(csv.reader(csv_path.open()))
        assert header[:5] == ["batch_id", "pair_id", "reviewer", "verdict", "note"]


def test_csv_round_trip_maps_positions_to_the_pair_frame(tmp_path: Path) -> None:
    pairs = [make_pair(i, chosen=f"CHOSEN {i}", rejected=f"REJECTED {i}") for i in range(4)]
    run, _, csv_path = batch(tmp_path, pairs)
    rows = list(csv.DictReader(csv_path.open()))
    # The annotator always picks the answer that says CHOSEN, wherever it was shown.
    for row in rows:
        row["verdict"] = "1" if row["first"].startswith("CHOSEN") else "second"
        row["reviewer"] = "zoe"
    rows[-1]["verdict"] = ""  # not done yet
    rows[0]["note"] = "=SUM(A1)"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with run:
        result = import_decisions(run, csv_path)
        assert (result.stored, result.unchanged, result.blank) == (3, 0, 1)
        standing = current_decisions(run.stage("reviews", ReviewDecision))
        assert {by["zoe"].verdict for by in standing.values()} == {"chosen"}
        assert {by["zoe"].via for by in standing.values()} == {"file"}
        again = import_decisions(run, csv_path)
        assert (again.stored, again.unchanged) == (0, 3)


def test_jsonl_import_with_reviewer_option_and_errors(tmp_path: Path) -> None:
    pairs = [make_pair(i) for i in range(2)]
    run, jsonl, _ = batch(tmp_path, pairs, show_ai_verdict=True)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert "ai_preferred" in rows[0]  # shown only because the config says so
    rows[0]["verdict"], rows[1]["verdict"] = "tie", "FLAG"
    filled = tmp_path / "filled.jsonl"
    filled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with run:
        with pytest.raises(ReviewError, match="no reviewer"):
            import_decisions(run, filled)
        assert import_decisions(run, filled, reviewer="yan").stored == 2
        decided = list(run.stage("reviews", ReviewDecision))
        assert {d.verdict for d in decided} == {"tie", "flag"} and all(d.ai_verdict_shown for d in decided)
        rows[0]["verdict"] = "maybe"
        filled.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(ReviewError, match=r"filled.jsonl:1: verdict 'maybe'"):
            import_decisions(run, filled, reviewer="yan")
        rows[0].update(verdict="1", batch_id="bat-nope")
        filled.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(ReviewError, match="unknown batch_id 'bat-nope'"):
            import_decisions(run, filled, reviewer="yan")
        filled.write_text("not json\n")
        with pytest.raises(ReviewError, match="filled.jsonl:1: not valid JSON"):
            import_decisions(run, filled, reviewer="yan")


def test_csv_cells_that_look_like_formulas_stay_text(tmp_path: Path) -> None:
    pairs = [make_pair(0, chosen='=HYPERLINK("http://x")', rejected="+1")]
    _, _, csv_path = batch(tmp_path, pairs)
    row = next(csv.DictReader(csv_path.open()))
    assert {row["first"], row["second"]} == {'\'=HYPERLINK("http://x")', "'+1"}


def _filled(tmp_path: Path, pairs: list[PreferencePair]) -> tuple[RunDir, list[dict[str, str]], Path]:
    run, _, csv_path = batch(tmp_path, pairs)
    rows = list(csv.DictReader(csv_path.open()))
    for row in rows:
        row.update(verdict="first", reviewer="zoe")
    return run, rows, csv_path


def _write_rows(path: Path, rows: list[dict[str, str]], *, delimiter: str = ",", drop: str = "") -> None:
    names = [n for n in rows[0] if n != drop]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_one_file_deciding_a_pair_twice_differently_is_refused_naming_both_rows(tmp_path: Path) -> None:
    """Issue 31: the last row won, silently."""
    run, rows, csv_path = _filled(tmp_path, [make_pair(i) for i in range(3)])
    twice = [*rows, {**rows[0], "verdict": "second"}]
    _write_rows(csv_path, twice)
    with run:
        with pytest.raises(ReviewError) as info:
            import_decisions(run, csv_path)
        assert f"rows 2 and 5 decide pair {rows[0]['pair_id']} for zoe differently" in str(info.value)
        assert not list(run.stage("reviews", ReviewDecision))  # nothing half-imported
        _write_rows(csv_path, [*rows, dict(rows[0])])  # the same decision twice is one decision
        result = import_decisions(run, csv_path)
        assert (result.stored, result.unchanged) == (3, 1)


def test_a_tab_separated_file_named_csv_is_one_line_and_a_tsv_imports(tmp_path: Path) -> None:
    run, rows, csv_path = _filled(tmp_path, [make_pair(i) for i in range(2)])
    _write_rows(csv_path, rows, delimiter="\t")
    with run:
        with pytest.raises(ReviewError, match=r"\.csv:1: the columns are separated by tabs"):
            import_decisions(run, csv_path)
        tsv = csv_path.with_suffix(".tsv")
        _write_rows(tsv, rows, delimiter="\t")
        assert import_decisions(run, tsv).stored == 2


def test_a_csv_without_pair_id_is_one_line(tmp_path: Path) -> None:
    run, rows, csv_path = _filled(tmp_path, [make_pair(i) for i in range(2)])
    _write_rows(csv_path, rows, drop="pair_id")
    with run, pytest.raises(ReviewError, match=r"\.csv:1: no pair_id column"):
        import_decisions(run, csv_path)


def test_a_jsonl_row_without_pair_id_is_one_line(tmp_path: Path) -> None:
    run, jsonl, _ = batch(tmp_path, [make_pair(0)])
    row = {k: v for k, v in json.loads(jsonl.read_text()).items() if k != "pair_id"}
    row.update(verdict="first", reviewer="zoe")
    jsonl.write_text(json.dumps(row) + "\n")
    with run, pytest.raises(ReviewError, match=r":1: no pair_id in a row with a verdict"):
        import_decisions(run, jsonl)
