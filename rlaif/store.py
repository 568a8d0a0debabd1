"""The run directory: a manifest plus one append-only JSONL file per stage.

Resume is a property of the store: a stage asks which ids exist and only makes the rest. Writes
are appended whole lines and flushed to the operating system at once, so a killed process loses
nothing it stored; they are fsynced at most every `SYNC_SECONDS` and when the run directory
closes, so a power cut or kernel crash loses at most the last half second of records, which a
rerun makes again (an fsync per record cost 1.6 ms on this project's test machine, 5% of a
fast run's time). A torn last line (a crash mid-write) is cut off on the next open. State that must
change atomically (the manifest) is written by rename.

What is locked (OS `flock`s, released when their process dies):
- The run directory: one writer at a time (`.lock`), held by whatever writes the pipeline's stages,
  the manifest, the export or models (`rlaif run`, `rlaif export`, `rlaif train`). Readers open it
  with `lock=False`: they never cut a tail, which may be a line the owner is writing now.
- The review decisions (`reviews.jsonl`, `RunLayout.SHARED`): every append holds a lock on that file
  alone (`SharedStage`), so several reviewers and `rlaif review import` append at once, beside a
  pipeline that holds the run directory. No one else writes the file, and the pipeline only reads it.
- The workers of `rlaif run --workers N` (`RunDir(worker=True)`): the parent holds `.lock` for them
  all and appends to no generation stage while they run; each worker opens without that lock and
  appends to every stage as the reviewers do to theirs (`SharedStage`, the stage file's own lock), so
  lines of different workers never interleave, a worker killed mid-line leaves a torn tail the next
  append (or the parent's next open) cuts, and an id stored twice is read once (the first line wins).
  A worker dies with its parent (`PR_SET_PDEATHSIG`), so no worker outlives the lock it works under.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from rlaif.errors import RunDirError

__all__ = ["FORMAT_VERSION", "RunDir", "RunLayout", "SharedStage", "Stage", "write_atomic"]

FORMAT_VERSION = 1
SYNC_SECONDS = 0.5
"""Most time between fsyncs of a stage file that is being appended to."""
R = TypeVar("R", bound=BaseModel)


def write_atomic(path: Path, text: str) -> None:
    """Write a file so readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two processes may write one file at once
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class MissingRecord(RunDirError, KeyError):
    """A record another stage's record names is not in its stage file: one line, not a bare KeyError
    (still a KeyError, for code that looks a record up and handles its absence)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RunLayout:
    """Every file and folder of a run directory, named in one place.

    ```
    RUN_DIR/manifest.json  summary.json  review_report.json
            NAME.jsonl            one append-only file per stage (responses, revisions, judgments, ...)
            export/               pairs.jsonl + pairs/, sft.jsonl + sft/, README.md (the dataset card)
            models/NAME/          a trained model (and its card)
            logs/                 managed server logs
            review_batches/       files for annotators (`rlaif review export-batch`)
    ```
    """

    root: Path

    RESPONSES = "responses"
    REVISION_STEPS = "revision_steps"
    REVISIONS = "revisions"
    JUDGMENTS = "judgments"
    PAIRS = "pairs"
    REVIEWS = "reviews"
    PROBES = "probes"
    """Universal probes' judgments (`Judgment`, kind `probe`), apart from `judgments`: never paired."""
    RUBRIC_ITEMS = "rubric_items"
    """Checklist items per prompt and principle (`RubricItems`, `judge.rubric`)."""
    RUBRIC_SCORES = "rubric_scores"
    """Each answer's P(yes) per rubric item (`RubricScore`)."""
    PROBE_RESPONSES = "probe_responses"
    """The probes' spoiled answers (`ProbeResponse`), which no stage sampled."""
    SHARED = frozenset({REVIEWS})
    """Stages several processes append to at once, each append under the file's own lock
    (`SharedStage`): the decisions of reviewers working beside each other and beside the pipeline."""

    def stage_file(self, name: str) -> Path:
        """The JSONL file of a stage (`NAME.jsonl`)."""
        return self.root / f"{name}.jsonl"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def review_report(self) -> Path:
        return self.root / "review_report.json"

    @property
    def review_batches(self) -> Path:
        return self.root / "review_batches"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def export_pairs(self) -> Path:
        """The exported preference pairs as a `DatasetDict` folder (trainers read its train split)."""
        return self.export / "pairs"

    @property
    def export_sft(self) -> Path:
        """The exported SFT rows as a `DatasetDict` folder."""
        return self.export / "sft"

    @property
    def card(self) -> Path:
        """The dataset card of the export."""
        return self.export / "README.md"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model(self, name: str) -> Path:
        """Where trainer `name` writes its model."""
        return self.models / name

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        """A log file in `logs/` (the folder is created)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / name


class Stage(Generic[R]):
    """One stage's records: `NAME.jsonl` in the run directory, indexed by id.

    Only the index (id → where its line is) stays in memory: a record is read back from the file
    when asked for, and iterating streams the file. A run of a million prompts holds a few hundred
    bytes per record, not the records (the scale benchmark measures it).

    With `repair` (the default; a locked `RunDir` passes it) a torn tail is cut off the file on open.
    Without it (a reader that does not hold the lock) the tail is only skipped: it may be a line the
    owner is writing right now, and such a stage refuses to append.
    """

    def __init__(
        self, path: Path, record_type: type[R], *, repair: bool = True, unsynced: set[Path] | None = None
    ):
        self.path = path
        self.record_type = record_type
        self._index: dict[str, int] = {}
        """Record id -> its line's byte offset << 32 | its length (one int: half the memory of two)."""
        self._end = 0
        """Bytes of whole lines in the file (what iteration reads; a torn tail lies beyond)."""
        self._reader: io.FileIO | None = None
        self.repaired_bytes = 0
        """Bytes of torn tail found on open (cut off when `repair`)."""
        self.damaged: list[tuple[int, str, str]] = []
        """(byte offset, field, error) of whole lines that are no record (skipped; moved aside on repair)."""
        self.quarantined: list[tuple[int, str]] = []
        """(line number, field) of the damaged lines moved to `quarantine_path` on open."""
        self._repair = repair
        self._synced_at = time.monotonic()
        self._unsynced = unsynced if unsynced is not None else set()
        """Files appended to but not fsynced yet (shared with the run directory, which syncs them)."""
        self._load()
        self._identity = self._stat()

    def _load(self) -> None:
        if not self.path.exists():
            return
        self._end = self._scan(0)
        if self.repaired_bytes and self._repair:
            with open(self.path, "r+b") as handle:
                handle.truncate(self._end)
        if self.damaged and self._repair:
            self._quarantine()

    @property
    def quarantine_path(self) -> Path:
        """Where damaged lines are moved: `NAME.jsonl.damaged`, one JSON object a line."""
        return self.path.with_name(self.path.name + ".damaged")

    def _quarantine(self) -> None:
        """Move the damaged lines (whole lines that do not parse as this stage's record) to the side
        file, each with its line number, field and error, and keep every good record: a bad byte in one
        record must not throw away a stage's hours of work, nor stop the run."""
        bad = {start: (field, error) for start, field, error in self.damaged}
        lines: list[dict[str, Any]] = []
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(self.path, "rb") as source, open(tmp, "wb") as kept:
            offset = 0
            for number, line in enumerate(source, start=1):
                if offset in bad:
                    field, error = bad[offset]
                    text = line.decode("utf-8", errors="replace").rstrip("\n")
                    lines.append({"line": number, "field": field, "error": error, "text": text})
                else:
                    kept.write(line)
                offset += len(line)
            kept.flush()
            os.fsync(kept.fileno())
        with open(self.quarantine_path, "a", encoding="utf-8") as side:
            side.writelines(json.dumps(entry) + "\n" for entry in lines)
        os.replace(tmp, self.path)
        first = lines[0]
        self.quarantined = [(entry["line"], entry["field"]) for entry in lines]
        print(
            f"warning: {self.path}: {len(lines)} damaged line(s) moved to {self.quarantine_path} (line "
            f"{first['line']}, field {first['field']}: {first['error']}); the other records are kept and "
            "the damaged ones are made again",
            file=sys.stderr,
        )
        self._index.clear()
        self.damaged = []
        self._end = self._scan(0)

    def _scan(self, start: int) -> int:
        """Index the whole lines from byte `start` on; returns where they end (a torn tail lies beyond,
        its size in `repaired_bytes`)."""
        size = self.path.stat().st_size
        offset = start
        with open(self.path, "rb") as handle:
            handle.seek(start)
            # Read in blocks: a stage of a million records is never in memory at once.
            for line in handle:
                line_start, offset = offset, offset + len(line)
                if not line.endswith(b"\n"):
                    offset = line_start
                    break  # torn final write: no newline means the line never finished
                try:
                    record = self.record_type.model_validate_json(line)
                except ValidationError as exc:
                    if offset >= size:
                        offset = line_start
                        break  # a complete but corrupt last line is also a torn write
                    # Skipped here, moved aside by `_quarantine` when this stage may write.
                    error = exc.errors()[0]
                    field = ".".join(str(part) for part in error["loc"]) or "(the line is not JSON)"
                    self.damaged.append((line_start, field, error["msg"]))
                    continue
                self._index.setdefault(record.id, line_start << 32 | len(line))  # type: ignore[attr-defined]
        self.repaired_bytes = max(size - offset, 0)
        return offset

    def sync(self) -> None:
        """fsync what this stage appended since its last fsync (a run directory does it on close)."""
        if self.path in self._unsynced:
            fsync_files({self.path})
            self._unsynced.discard(self.path)

    def unchanged_on_disk(self) -> bool:
        """Whether the file is still the one this object read and wrote (not removed or replaced)."""
        return self._identity == self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_size

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._index

    def __len__(self) -> int:
        return len(self._index)

    def ids(self) -> set[str]:
        """Every stored id (from the index: nothing is read)."""
        return set(self._index)

    def __iter__(self) -> Iterator[R]:
        """Every record once, in the order stored, streamed from the file (a repeated id's later lines
        are skipped, as on open). Records appended while iterating are not included."""
        if not self._index:
            return
        end = self._end
        damaged = {start for start, _, _ in self.damaged}  # skipped by a reader that may not repair
        with open(self.path, "rb") as handle:
            offset = 0
            for line in handle:
                start, offset = offset, offset + len(line)
                if offset > end:
                    break
                if start in damaged:
                    continue
                record = self.record_type.model_validate_json(line)
                if self._index.get(record.id) == (start << 32 | len(line)):  # type: ignore[attr-defined]
                    yield record

    def __getitem__(self, record_id: str) -> R:
        record = self.get(record_id)
        if record is None:
            raise MissingRecord(
                f"{self.path} holds no record {record_id}, which a later stage's record refers to (the "
                "file was deleted, replaced or cut short); restore it, or rerun the run (`rlaif run "
                "CONFIG`) to make the missing records again"
            )
        return record

    def get(self, record_id: str) -> R | None:
        """The record stored under `record_id`, read back from the file (None when there is none)."""
        where = self._index.get(record_id)
        if where is None:
            return None
        if self._reader is None or self._reader.closed:
            # One handle for every read: resuming a large run reads a record per prompt and stage.
            self._reader = io.FileIO(self.path, "r")
        line = os.pread(self._reader.fileno(), where & 0xFFFFFFFF, where >> 32)
        return self.record_type.model_validate_json(line)

    def close(self) -> None:
        """Close the handle `get` reads through (a run directory closes its stages)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def append(self, records: Iterable[R]) -> int:
        """Append records not already stored; returns how many were new."""
        unique = self._unique(records)
        if not unique:
            return 0
        if (self.repaired_bytes or self.damaged) and not self._repair:
            raise RunDirError(
                f"{self.path} has an unfinished or damaged line and was opened without the run directory's "
                "lock; "
                "open the run directory with its lock to repair it before appending"
            )
        with open(self.path, "ab") as handle:
            return self._write(handle, unique)

    def _unique(self, records: Iterable[R]) -> dict[str, R]:
        """The records whose id is not stored yet; a batch that repeats an id keeps the first."""
        unique: dict[str, R] = {}
        for record in records:
            if record.id not in self._index:  # type: ignore[attr-defined]
                unique.setdefault(record.id, record)  # type: ignore[attr-defined]
        return unique

    def _write(self, handle: io.BufferedWriter, unique: dict[str, R]) -> int:
        if not unique:
            return 0
        lines = [(record_id, (r.model_dump_json() + "\n").encode()) for record_id, r in unique.items()]
        start = handle.seek(0, os.SEEK_END)  # the end now, not when the handle was opened
        handle.write(b"".join(line for _, line in lines))
        handle.flush()
        if time.monotonic() - self._synced_at >= SYNC_SECONDS:
            os.fsync(handle.fileno())
            self._synced_at = time.monotonic()
            self._unsynced.discard(self.path)
        else:
            self._unsynced.add(self.path)
        for record_id, line in lines:
            self._index[record_id] = start << 32 | len(line)
            start += len(line)
        self._end = start
        self._identity = self._stat()
        return len(lines)


class SharedStage(Stage[R]):
    """A stage that several processes append to at once: the review decisions, written by every
    reviewer's server, terminal, hook and import, while `rlaif run` may hold the run directory.

    Each append holds an exclusive `flock` on the stage file itself while it reads what others
    appended since (`refresh`), cuts a torn tail, drops ids already stored (the first line of an id
    wins, across processes too) and writes its lines. Only a writer killed mid-append leaves a torn
    tail, since every writer holds the lock while writing; the next append cuts it, and readers skip
    it meanwhile. Opening never cuts anything: without the lock a tail may be a line being written.
    """

    def __init__(self, path: Path, record_type: type[R], *, unsynced: set[Path] | None = None):
        super().__init__(path, record_type, repair=False, unsynced=unsynced)

    def refresh(self) -> int:
        """Index the lines other processes appended since this object last looked; returns how many
        new ids. A file replaced or cut short by hand is read again from the start."""
        stat = self._stat()
        if stat is None or self._identity is None or stat[0] != self._identity[0] or stat[1] < self._end:
            self.close()  # the handle `get` reads through may be open on the old file
            self._index.clear()
            self._end = self.repaired_bytes = 0
        if stat is None:
            self._identity = None
            return 0
        before = len(self._index)
        self._end = self._scan(self._end)
        self._identity = stat
        return len(self._index) - before

    def unchanged_on_disk(self) -> bool:
        return True  # others append all the time: a run directory calls `refresh` instead

    def append(self, records: Iterable[R]) -> int:
        """Append records not already stored by any process; returns how many were new."""
        with open(self.path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes or the process dies
            self.refresh()
            if self.repaired_bytes:
                os.ftruncate(handle.fileno(), self._end)  # a dead writer's torn line: no one writes now
                self.repaired_bytes = 0
            return self._write(handle, self._unique(records))


def fsync_files(paths: set[Path]) -> None:
    """fsync each file (those a crash could still lose), then forget them."""
    for path in list(paths):
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        paths.discard(path)


class RunDir:
    """A run directory, locked for this process while open (`lock=False`: a reader, or a reviewer,
    who appends only to the shared stages; `worker=True`: a worker of a parent that holds the lock,
    appending to every stage under that stage file's own lock)."""

    def __init__(self, path: str | Path, *, lock: bool = True, worker: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run directory {self.path} is a file; set run_dir to a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(
                f"cannot use {self.path} as a run directory ({exc.strerror or exc}); "
                "set run_dir to a folder you can write to"
            ) from None
        self.layout = RunLayout(self.path)
        self._unsynced: set[Path] = set()
        self._stage_cache: dict[str, Stage[Any]] = {}
        self._lock_handle = None
        self._worker = worker
        if lock and not worker:
            self._lock()
        try:
            self.manifest: dict[str, Any] = self._read_manifest()
        except BaseException:
            self.close()  # a refused open must not keep the lock while the error is being handled
            raise

    def _lock(self) -> None:
        try:
            handle = open(self.path / ".lock", "a+")
        except OSError as exc:
            raise RunDirError(
                f"cannot lock run directory {self.path} ({exc.strerror or exc}); "
                "set run_dir to a folder you can write to"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunDirError(
                f"run directory {self.path} is in use by another rlaif process; "
                "wait for it to finish or use another run_dir"
            ) from None
        self._lock_handle = handle

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing on the way out of an error must not mask it
            fsync_files(self._unsynced)
        for stage in self._stage_cache.values():
            stage.close()
        self._stage_cache.clear()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_manifest(self) -> dict[str, Any]:
        path = self.layout.manifest
        if not path.exists():
            return {"format_version": FORMAT_VERSION, "stages": {}, "status": "new"}
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{path} is not valid JSON ({exc}); restore or delete it") from None
        except OSError as exc:
            raise RunDirError(f"cannot read {path} ({exc.strerror or exc}); restore or delete it") from None
        if not isinstance(manifest, dict):
            raise RunDirError(
                f"{path} holds a JSON {type(manifest).__name__}, not a manifest object; restore or delete it"
            )
        if manifest.get("format_version") != FORMAT_VERSION:
            raise RunDirError(
                f"{path} has format version {manifest.get('format_version')}, this rlaif writes "
                f"{FORMAT_VERSION}; use a new run_dir"
            )
        return manifest

    def save_manifest(self, **updates: Any) -> None:
        self.manifest.update(updates)
        write_atomic(self.layout.manifest, json.dumps(self.manifest, indent=2, sort_keys=True))

    def stage(self, name: str, record_type: type[R]) -> Stage[R]:
        """The stage file `NAME.jsonl`, read once per run directory: every later call gets the same
        object, so a stage that several steps read is parsed and held in memory once (a shared stage
        first reads what other processes appended since). What it appends is fsynced when this run
        directory closes."""
        known = self._stage_cache.get(name)
        if known is not None and known.record_type is record_type and known.unchanged_on_disk():
            if isinstance(known, SharedStage):
                known.refresh()
            return known
        if known is not None:
            known.close()
        path = self.layout.stage_file(name)
        stage: Stage[R]
        if name in RunLayout.SHARED or self._worker:
            stage = SharedStage(path, record_type, unsynced=self._unsynced)
        else:
            stage = Stage(path, record_type, repair=self._lock_handle is not None, unsynced=self._unsynced)
        self._stage_cache[name] = stage
        return stage

    def subdir(self, name: str) -> Path:
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        return path
