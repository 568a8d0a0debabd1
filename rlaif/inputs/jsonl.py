"""The one JSONL reader: every input file of one JSON object per line goes through it.

It yields (line number, object) for each non-blank line and raises the caller's error class with
`FILE:LINE: ...` for a line that is not a JSON object, and `FILE: ...` for a file that cannot be read
as (optionally gzipped) UTF-8 text. What a row must hold is the caller's business.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rlaif.errors import RlaifError

__all__ = ["read_jsonl", "utf8_position"]


def read_jsonl(path: str | Path, error: type[RlaifError]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, row) for every non-blank line of a JSONL file (`.gz`: gzip); a line that is
    not a JSON object raises `error` naming the file and the line."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, _object(path, number, line, error)
    except UnicodeDecodeError:
        with opener(path, "rb") as handle:
            line, column, byte = utf8_position(handle)
        raise error(
            f"{path}:{line}: not UTF-8 text (byte {byte:#04x} at column {column}); save the file as UTF-8"
        ) from None
    except (OSError, EOFError) as exc:  # unreadable, or a .gz file that is not (whole) gzip
        raise error(f"{path}: cannot read the file ({exc}); check the path") from None


def utf8_position(lines: Iterable[bytes]) -> tuple[int, int, int]:
    """(line, column, byte) of the first byte that is not UTF-8, both 1-based; (0, 0, 0) if none.

    The decoder reports offsets inside the chunk it was reading, so errors name this instead."""
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(line[: exc.start].decode("utf-8", errors="replace")) + 1
            return number, column, line[exc.start]
    return 0, 0, 0


def _object(path: Path, number: int, line: str, error: type[RlaifError]) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno}); write one JSON object per line"
        ) from None
    except (ValueError, RecursionError) as exc:  # 5000-digit numbers, deep nesting
        problem = str(exc).split(";")[0] or "nested too deeply"
        raise error(f"{path}:{number}: not a readable JSON row ({problem})") from None
    if not isinstance(row, dict):
        raise error(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
    return row
