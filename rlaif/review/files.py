"""File hand-off for annotators elsewhere: export a review batch (JSONL and CSV), import the answers.

A batch shows each pair's two answers as `first` and `second` in a seeded random order; which one
is the pair's chosen answer is kept in the run directory (`review_batches/BATCH.key.json`), never in
the files handed out. Annotators fill `verdict` (first, second, tie or flag; 1/2/t/f also work),
optionally `note` and `reviewer`, and send either file back.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rlaif.config import reviewer_problem
from rlaif.errors import ReviewError
from rlaif.inputs.jsonl import read_jsonl, utf8_position
from rlaif.records import ReviewAnswer, ReviewDecision, stable_id
from rlaif.review.session import REVIEWS, ReviewSession, current_decisions, new_decision, to_pair_verdict
from rlaif.store import RunDir, RunLayout, write_atomic

__all__ = ["ImportResult", "export_batch", "import_decisions"]

COLUMNS = ("batch_id", "pair_id", "reviewer", "verdict", "note", "prompt", "first", "second", "principles")
AI_COLUMNS = ("ai_preferred", "ai_probability")
SPELLINGS: dict[str, Literal["first", "second", "tie", "flag"]] = {
    "first": "first", "1": "first", "a": "first",
    "second": "second", "2": "second", "b": "second",
    "tie": "tie", "t": "tie", "=": "tie",
    "flag": "flag", "f": "flag",
}  # fmt: skip


def export_batch(
    run: RunDir, session: ReviewSession, *, out: Path | None = None, reviewer: str = ""
) -> tuple[Path, Path]:
    """Write the session's pending items as `BATCH.jsonl` and `BATCH.csv`; returns both paths.

    The batch id and the answer order key are stored under `review_batches/` in the run directory.
    """
    items = session.pending()
    if not items:
        raise ReviewError(
            f"nothing to export: every sampled pair of {run.path} is reviewed by {session.reviewer}"
        )
    batch_id = stable_id("batch", pairs=[i.pair_id for i in items], session=session.session)
    keys = run.layout.review_batches
    keys.mkdir(parents=True, exist_ok=True)
    write_atomic(
        keys / f"{batch_id}.key.json",
        json.dumps({"batch_id": batch_id, "shown_first": {i.pair_id: session.first[i.pair_id] for i in items},
                    "show_ai_verdict": session.show_ai}, indent=1),
    )  # fmt: skip
    folder = out or keys
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        row: dict[str, Any] = {
            "batch_id": batch_id,
            "pair_id": item.pair_id,
            "reviewer": reviewer,
            "verdict": "",
            "note": "",
            "prompt": [m.model_dump() for m in item.prompt],
            "first": item.first,
            "second": item.second,
            "principles": [
                f"{pid}: {q}" if q else pid
                for pid, q in zip(item.principle_ids, item.principle_questions, strict=True)
            ],
        }
        if session.show_ai:
            row.update(ai_preferred=item.ai_preferred, ai_probability=item.ai_probability)
        rows.append(row)
    jsonl = folder / f"{batch_id}.jsonl"
    write_atomic(jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    columns = COLUMNS + (AI_COLUMNS if session.show_ai else ())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(name, row.get(name)) for name in columns})
    csv_path = folder / f"{batch_id}.csv"
    write_atomic(csv_path, buffer.getvalue())
    return jsonl, csv_path


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "prompt":
        text = "\n\n".join(f"[{m['role']}] {m['content']}" for m in value)
    elif name == "principles":
        text = "\n".join(value)
    else:
        text = str(value)
    # A cell starting with = + - @ is a formula to spreadsheet programs: model text must stay text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    stored: int
    """New decisions appended."""
    unchanged: int
    """Rows equal to the reviewer's standing decision (an import run twice)."""
    blank: int
    """Rows without a verdict (not reviewed yet)."""


def import_decisions(run: RunDir, path: Path, *, reviewer: str | None = None) -> ImportResult:
    """Append the decisions of a filled-in batch file (JSONL or CSV) to `reviews.jsonl` (under its append
    lock: reviewers may be working in the same run meanwhile)."""
    rows = _read_rows(path)
    from rlaif.records import PreferencePair

    pairs = run.stage(RunLayout.PAIRS, PreferencePair)
    store = run.stage(REVIEWS, ReviewDecision)
    standing = current_decisions(store)
    keys: dict[str, dict[str, Any]] = {}
    new: list[ReviewDecision] = []
    decided: dict[tuple[str, str], tuple[int, str, str]] = {}
    """(pair, reviewer) -> (row, verdict, note) first given in this file."""
    unchanged = blank = 0
    for line, row in rows:
        where = f"{path}:{line}"
        raw = str(row.get("verdict") or "").strip().lower()
        if not raw:
            blank += 1
            continue
        if raw not in SPELLINGS:
            raise ReviewError(
                f"{where}: verdict {raw!r} is not one of first, second, tie, flag (or 1, 2, t, f)"
            )
        batch_id, pair_id = str(row.get("batch_id") or ""), str(row.get("pair_id") or "").strip()
        if not pair_id:
            raise ReviewError(
                f"{where}: no pair_id in a row with a verdict; import the file `rlaif review export-batch` "
                "wrote, with its pair_id column kept"
            )
        key = keys.get(batch_id) or keys.setdefault(batch_id, _key(run, batch_id, where))
        if pair_id not in key["shown_first"] or pair_id not in pairs:
            raise ReviewError(f"{where}: pair {pair_id!r} is not in batch {batch_id!r} of {run.path}")
        name = str(row.get("reviewer") or "").strip() or reviewer
        if not name:
            raise ReviewError(f"{where}: no reviewer: fill the reviewer column or pass --reviewer NAME")
        if problem := reviewer_problem(name):
            raise ReviewError(f"{where}: reviewer {name!r} {problem}")
        answer = ReviewAnswer(pair_id=pair_id, verdict=SPELLINGS[raw], note=str(row.get("note") or ""))
        first = key["shown_first"][pair_id]
        verdict = to_pair_verdict(answer.verdict, first)
        said = decided.setdefault((pair_id, name), (line, verdict, answer.note))
        if said[1:] != (verdict, answer.note):
            raise ReviewError(
                f"{path}: rows {said[0]} and {line} decide pair {pair_id} for {name} differently "
                f"({said[1]} and {verdict}); keep one of the two rows"
            )
        if said[0] != line:
            unchanged += 1  # the same decision twice in one file
            continue
        previous = standing.get(pair_id, {}).get(name)
        if previous is not None and (previous.verdict, previous.note) == (verdict, answer.note):
            unchanged += 1
            continue
        decision = new_decision(
            pairs.get(pair_id),  # type: ignore[arg-type]
            reviewer=name, verdict=verdict, note=answer.note, first=first,
            ai_verdict_shown=bool(key.get("show_ai_verdict")), via="file", session=batch_id,
        )  # fmt: skip
        standing.setdefault(pair_id, {})[name] = decision
        new.append(decision)
    store.append(new)
    return ImportResult(stored=len(new), unchanged=unchanged, blank=blank)


def _key(run: RunDir, batch_id: str, where: str) -> dict[str, Any]:
    path = run.layout.review_batches / f"{batch_id}.key.json"
    if not batch_id or not path.is_file():
        raise ReviewError(
            f"{where}: unknown batch_id {batch_id!r}: no {path}; import into the run directory the batch "
            "was exported from (`rlaif review export-batch`)"
        )
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise ReviewError(f"no file {path}")
    if path.suffix in (".csv", ".tsv"):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Spreadsheets often save CSV in the system's code page (cp1252, say).
            line, column, byte = utf8_position(raw.splitlines(keepends=True))
            raise ReviewError(
                f"{path}:{line}: not UTF-8 text (byte {byte:#04x} at column {column}); save the file "
                "as CSV UTF-8 (in a spreadsheet: Save As, 'CSV UTF-8')"
            ) from None
        try:
            reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ",")
            rows = [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise ReviewError(f"{path}:{reader.line_num}: not readable CSV ({exc})") from None
        _check_header(path, list(reader.fieldnames or []))
        return rows
    return list(read_jsonl(path, ReviewError))


def _check_header(path: Path, header: list[str]) -> None:
    """A batch file's header names pair_id and verdict: a tab-separated file read as CSV is one column
    (every row read as blank, exit 0), a file without pair_id names pair '' for every row."""
    missing = [name for name in ("batch_id", "pair_id", "verdict") if name not in header]
    if not missing:
        return
    if len(header) == 1 and "\t" in header[0]:
        raise ReviewError(
            f"{path}:1: the columns are separated by tabs, not commas; save it as CSV (comma-separated) "
            "or name the file .tsv"
        )
    has = ", ".join(map(repr, header)) or "nothing"
    raise ReviewError(
        f"{path}:1: no {', '.join(missing)} column (the header has {has}); "
        "import the file `rlaif review export-batch` wrote, with its header row kept"
    )
