"""A stage file cut anywhere (a crash mid-write) is repaired on reopen: whole lines stay, the torn
tail goes, and appending afterwards gives a clean file. Pure file tests, no server: fast."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlaif.errors import RunDirError
from rlaif.records import Message, PromptRecord
from rlaif.store import RunDir, SharedStage

pytestmark = [pytest.mark.chaos, pytest.mark.unit]


def prompt(index: int, text: str = "") -> PromptRecord:
    content = f"prompt {index} {text}".strip()
    return PromptRecord(id=f"pro-{index:04d}", messages=(Message(role="user", content=content),), source="t")


def lines(records: list[PromptRecord]) -> bytes:
    return b"".join(r.model_dump_json().encode() + b"\n" for r in records)


def reopen(folder: Path) -> tuple[list[str], int]:
    with RunDir(folder) as run:
        stage = run.stage("prompts", PromptRecord)
        return [r.id for r in stage], stage.repaired_bytes


RECORDS = [prompt(i, "ünïcode ✓ " * (i % 3)) for i in range(4)]
WHOLE = lines(RECORDS)
ENDS = [len(lines(RECORDS[: i + 1])) for i in range(len(RECORDS))]


@pytest.mark.parametrize("cut", range(ENDS[-2] + 1, ENDS[-1]))
def test_every_cut_inside_the_last_line_is_repaired(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(WHOLE[:cut])
    ids, repaired = reopen(tmp_path)
    assert ids == [r.id for r in RECORDS[:-1]]
    assert repaired == cut - ENDS[-2]
    assert path.read_bytes() == WHOLE[: ENDS[-2]]  # the torn tail is gone from the file too
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert stage.append(RECORDS) == 1  # only the lost record is written again
    assert path.read_bytes() == WHOLE


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 12), data=st.data())
def test_any_cut_keeps_exactly_the_whole_lines(
    tmp_path_factory: pytest.TempPathFactory, count: int, data
) -> None:  # type: ignore[no-untyped-def]
    """A file of `count` records cut at any byte: reopening keeps the records whose newline survived."""
    records = [prompt(i, "x" * data.draw(st.integers(0, 40))) for i in range(count)]
    whole = lines(records)
    cut = data.draw(st.integers(0, len(whole)))
    folder = tmp_path_factory.mktemp("cut")
    (folder / "prompts.jsonl").write_bytes(whole[:cut])
    kept = whole[:cut].count(b"\n")
    ids, repaired = reopen(folder)
    assert ids == [r.id for r in records[:kept]]
    assert repaired == cut - len(lines(records[:kept]))
    assert (folder / "prompts.jsonl").read_bytes() == lines(records[:kept])


def test_torn_batch_append_keeps_the_whole_lines_of_the_batch(tmp_path: Path) -> None:
    """A multi-record append torn in its third record keeps the first two of the batch."""
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(lines(RECORDS[:1]))
    batch = lines(RECORDS[1:])
    path.write_bytes(path.read_bytes() + batch[: len(lines(RECORDS[1:3])) + 7])
    ids, _ = reopen(tmp_path)
    assert ids == [r.id for r in RECORDS[:3]]


def test_garbage_tail_without_newline_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(WHOLE + b"\x00\x00\x00\xff\xfe")  # a filesystem may leave zeros after a crash
    ids, repaired = reopen(tmp_path)
    assert ids == [r.id for r in RECORDS] and repaired == 5


def test_zero_filled_last_line_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(WHOLE + b"\x00" * 40 + b"\n")  # complete but corrupt last line: a torn write
    ids, repaired = reopen(tmp_path)
    assert ids == [r.id for r in RECORDS] and repaired == 41


def test_corruption_before_the_last_line_is_moved_aside_and_the_rest_kept(tmp_path: Path) -> None:
    """Only the last line can be a torn write; damage earlier (issue 31: it stopped the run, asking to move
    the whole file away) is moved to the side file with its line number, and every good record stays."""
    path = tmp_path / "prompts.jsonl"
    damaged = WHOLE[: ENDS[0] - 10] + b"\n" + WHOLE[ENDS[0] :]
    path.write_bytes(damaged)
    ids, repaired = reopen(tmp_path)
    assert ids == [r.id for r in RECORDS[1:]] and repaired == 0
    assert path.read_bytes() == WHOLE[ENDS[0] :]
    side = (tmp_path / "prompts.jsonl.damaged").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["line"] for x in side] == [1]


APPENDER = """
import sys
from rlaif.records import Message, PromptRecord
from rlaif.store import RunDir
with RunDir(sys.argv[1]) as run:
    stage = run.stage("prompts", PromptRecord)
    index = len(stage)
    while True:
        record = PromptRecord(id=f"pro-{index:06d}", messages=(Message(role="user", content="x" * 3000),))
        stage.append([record])
        index += 1
        if index % 50 == 0:
            print(index, flush=True)
"""


def test_sigkilled_writer_leaves_a_clean_prefix(tmp_path: Path) -> None:
    """A process appending as fast as it can, SIGKILLed five times: each reopen sees only whole
    records, numbered without a gap, and the next writer carries on from there."""
    path = tmp_path / "prompts.jsonl"
    for _ in range(5):
        process = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        process.stdout.readline()  # it has written at least 50 records
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        ids, _ = reopen(tmp_path)
        assert ids == [f"pro-{i:06d}" for i in range(len(ids))]
        assert path.read_bytes().endswith(b"\n")


def test_a_reader_without_the_lock_never_cuts_the_owners_unfinished_line(tmp_path: Path) -> None:
    """The tail may be a line the lock holder is writing this moment: a reader skips it, leaves the
    file alone and refuses to append; the owner's next open repairs it."""
    path = tmp_path / "prompts.jsonl"
    unfinished = WHOLE[: ENDS[-2] + 9]
    path.write_bytes(unfinished)
    with RunDir(tmp_path, lock=False) as reader:
        stage = reader.stage("prompts", PromptRecord)
        assert [r.id for r in stage] == [r.id for r in RECORDS[:-1]]
        assert stage.repaired_bytes == 9
        with pytest.raises(RunDirError, match="without the run directory's lock"):
            stage.append([RECORDS[-1]])
    assert path.read_bytes() == unfinished
    ids, repaired = reopen(tmp_path)
    assert ids == [r.id for r in RECORDS[:-1]] and repaired == 9
    assert path.read_bytes() == WHOLE[: ENDS[-2]]


# --- the shared stage (review decisions): writers killed while others keep appending ---------------------
# Writers are forked from the test process: no interpreter start-up per writer, and a SIGKILL is as real.

FORK = multiprocessing.get_context("fork")


def big(name: str, index: int) -> PromptRecord:
    return PromptRecord(id=f"pro-{name}-{index:06d}", messages=(Message(role="user", content="x" * 30000),))


def _append_forever(folder: str, name: str, ready: Any) -> None:
    with RunDir(folder, lock=False) as run:  # a reviewer: no run-directory lock
        stage = run.stage("reviews", PromptRecord)
        for index in itertools.count():
            stage.append([big(name, index)])
            if index == 20:
                ready.set()


def _append_half_then_hang(folder: str, ready: Any) -> None:
    def half_then_hang(self: SharedStage[PromptRecord], handle: Any, unique: dict[str, PromptRecord]) -> int:
        line = (next(iter(unique.values())).model_dump_json() + "\n").encode()
        handle.write(line[: len(line) // 2])
        handle.flush()
        ready.set()
        time.sleep(120)
        return 0

    SharedStage._write = half_then_hang  # type: ignore[method-assign]  # this child only: stop mid-append
    with RunDir(folder, lock=False) as run:
        run.stage("reviews", PromptRecord).append([big("torn", 0)])


def _append_one(folder: str, go: Any, done: Any) -> None:
    go.wait(30)
    with RunDir(folder, lock=False) as run:
        run.stage("reviews", PromptRecord).append([prompt(1)])
    done.set()


def strict_ids(path: Path) -> list[str]:
    """Every line must be a whole record: no torn line anywhere, no id twice."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    ids = [PromptRecord.model_validate_json(text).id for text in raw.splitlines()]
    assert len(ids) == len(set(ids))
    return ids


def test_a_writer_killed_mid_append_holds_no_one_up_and_its_torn_line_goes(tmp_path: Path) -> None:
    """A reviewer process SIGKILLed halfway through writing a line, holding the decisions file's lock:
    another reviewer's append waits for the lock, gets it when the kernel drops the dead process's lock,
    cuts the half line and appends; readers meanwhile see only whole records."""
    path = tmp_path / "reviews.jsonl"
    with RunDir(tmp_path, lock=False) as run:
        run.stage("reviews", PromptRecord).append([prompt(0)])
    mid, go, done = FORK.Event(), FORK.Event(), FORK.Event()
    hung = FORK.Process(target=_append_half_then_hang, args=(str(tmp_path), mid))
    hung.start()
    assert mid.wait(30)
    torn = path.read_bytes()
    assert not torn.endswith(b"\n")
    with RunDir(tmp_path, lock=False) as reader:  # a report meanwhile: whole records only, file untouched
        assert [r.id for r in reader.stage("reviews", PromptRecord)] == [prompt(0).id]
    assert path.read_bytes() == torn
    waiting = FORK.Process(target=_append_one, args=(str(tmp_path), go, done))
    waiting.start()
    go.set()
    assert not done.wait(1.0)  # blocked on the lock the half-written append holds
    os.kill(hung.pid, signal.SIGKILL)  # type: ignore[arg-type]
    hung.join(30)
    assert done.wait(30)
    waiting.join(30)
    assert waiting.exitcode == 0
    assert strict_ids(path) == [prompt(0).id, prompt(1).id]


def test_reviewers_sigkilled_while_appending_at_once_leave_whole_lines(tmp_path: Path) -> None:
    """Three processes append 30 KB decisions as fast as they can and are SIGKILLed one after another:
    every line but a torn last one is whole, each writer's records are numbered without a gap, and the
    next append leaves a file of whole lines only. (Here a kill seldom lands inside a write; the test
    above makes the half-written line on purpose.)"""
    path = tmp_path / "reviews.jsonl"
    names = ("a", "b", "c")
    ready = {name: FORK.Event() for name in names}
    writers = {
        name: FORK.Process(target=_append_forever, args=(str(tmp_path), name, ready[name])) for name in names
    }
    for writer in writers.values():
        writer.start()
    for name in names:
        assert ready[name].wait(60)  # it has appended 20 records
    for writer in writers.values():
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        writer.join(30)
    with RunDir(tmp_path, lock=False) as reader:
        ids = [r.id for r in reader.stage("reviews", PromptRecord)]
    for name in names:
        own = [i for i in ids if i.startswith(f"pro-{name}-")]
        assert own == [f"pro-{name}-{i:06d}" for i in range(len(own))] and len(own) >= 20
    with RunDir(tmp_path, lock=False) as run:
        run.stage("reviews", PromptRecord).append([prompt(100)])
    assert strict_ids(path)[-1] == prompt(100).id
