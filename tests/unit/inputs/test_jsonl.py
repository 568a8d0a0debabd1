"""The one JSONL reader: line numbers, blank lines, gzip, and one error line per bad row or file."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from rlaif.errors import PromptSetError, ReviewError
from rlaif.inputs.jsonl import read_jsonl


def test_rows_come_with_their_line_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('\ufeff{"a": 1}\n\n   \n{"b": 2}\n', encoding="utf-8")
    assert list(read_jsonl(path, PromptSetError)) == [(1, {"a": 1}), (4, {"b": 2})]
    packed = tmp_path / "rows.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write('{"a": 1}\n{"b": 2}\n')
    assert [n for n, _ in read_jsonl(packed, PromptSetError)] == [1, 2]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"a": 1}\n{"a": }\n', ":2: not valid JSON (Expecting value, column 7)"),
        (b'{"a": 1}\n[1, 2]\n', ":2: expected a JSON object, got list"),
        (b'"text"\n', ":1: expected a JSON object, got str"),
        (b"[" * 100_000 + b"\n", ":1: not a readable JSON row"),
        (b'{"a": "caf\xe9"}\n', ":1: not UTF-8 text (byte 0xe9 at column 11)"),
    ],
)
def test_a_bad_line_raises_the_callers_error_naming_file_and_line(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ReviewError, match=re.escape(f"{path}{needle}")):
        list(read_jsonl(path, ReviewError))


def test_a_file_that_is_not_gzip_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(PromptSetError, match="cannot read the file"):
        list(read_jsonl(path, PromptSetError))


def test_an_error_in_the_callers_loop_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="the caller's"):
        for _ in read_jsonl(path, PromptSetError):
            raise ValueError("the caller's")
