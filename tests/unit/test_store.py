"""The run directory: append-only stages, repair of torn writes, the manifest and the lock."""

from __future__ import annotations

import json
import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from rlaif.errors import RunDirError
from rlaif.records import Message, PromptRecord
from rlaif.store import FORMAT_VERSION, RunDir, Stage, write_atomic


def _open_and_report(path: str, conn: Connection) -> None:
    try:
        RunDir(path).close()
    except RunDirError as exc:
        conn.send(("refused", str(exc)))
    else:
        conn.send(("opened", ""))


def prompt(text: str) -> PromptRecord:
    return PromptRecord(id=f"pro-{text}", messages=(Message(role="user", content=text),), source="t")


def line(record: PromptRecord) -> bytes:
    return record.model_dump_json().encode() + b"\n"


def open_in_other_process(path: Path) -> tuple[str, str]:
    """Try to open the run directory from a child process (forked: no second interpreter start-up)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_open_and_report, args=(str(path), send))
    child.start()
    try:
        assert receive.poll(30), "the child process did not answer"
        return receive.recv()
    finally:
        child.join(30)


def test_append_and_reload(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert len(stage) == 0
        assert stage.append([prompt("a"), prompt("b")]) == 2
        assert stage.append([prompt("c")]) == 1
        assert "pro-b" in stage
        assert stage.get("pro-c") == prompt("c")
        assert stage.get("pro-z") is None
    assert (tmp_path / "prompts.jsonl").read_bytes() == line(prompt("a")) + line(prompt("b")) + line(
        prompt("c")
    )
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert [r.id for r in stage] == ["pro-a", "pro-b", "pro-c"]
        assert list(stage) == [prompt("a"), prompt("b"), prompt("c")]
        assert stage.repaired_bytes == 0


def test_append_skips_known_ids(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        stage.append([prompt("a")])
        assert stage.append([prompt("a")]) == 0
        assert stage.append([prompt("a"), prompt("b"), prompt("b")]) == 1
        assert stage.append([]) == 0
    assert (tmp_path / "prompts.jsonl").read_bytes() == line(prompt("a")) + line(prompt("b"))
    with RunDir(tmp_path) as run:
        assert len(run.stage("prompts", PromptRecord)) == 2


def test_duplicate_lines_in_file_keep_the_first(tmp_path: Path) -> None:
    first = prompt("a")
    second = first.model_copy(update={"source": "later"})
    (tmp_path / "prompts.jsonl").write_bytes(line(first) + line(second))
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert len(stage) == 1
        assert stage.get("pro-a") == first


def test_torn_last_line_is_cut(tmp_path: Path) -> None:
    good = line(prompt("a")) + line(prompt("b"))
    torn = line(prompt("c"))[:-15]
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(good + torn)
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert [r.id for r in stage] == ["pro-a", "pro-b"]
        assert stage.repaired_bytes == len(torn)
        assert path.read_bytes() == good
        assert stage.append([prompt("c")]) == 1
    assert path.read_bytes() == good + line(prompt("c"))
    with RunDir(tmp_path) as run:
        assert [r.id for r in run.stage("prompts", PromptRecord)] == ["pro-a", "pro-b", "pro-c"]


def test_corrupt_complete_last_line_is_cut(tmp_path: Path) -> None:
    good = line(prompt("a"))
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(good + b'{"id": "pro-x", "messa\n')
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert [r.id for r in stage] == ["pro-a"]
        assert stage.repaired_bytes == len(b'{"id": "pro-x", "messa\n')
    assert path.read_bytes() == good


def test_damaged_middle_lines_are_moved_aside_and_the_good_records_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 31: one damaged record was "unreadable record ending at byte N ... move the file away",
    throwing the good records away with it. Now each bad line goes to NAME.jsonl.damaged with its line
    number, field and error, the rest stay, and the run goes on (making the damaged ones again)."""
    path = tmp_path / "prompts.jsonl"
    wrong_type = json.loads(line(prompt("c")))
    wrong_type["messages"] = 5
    content = (
        line(prompt("a")) + b"not json\n" + line(prompt("b")) + json.dumps(wrong_type).encode() + b"\n"
        + line(prompt("d"))
    )  # fmt: skip
    path.write_bytes(content)
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        assert [r.id for r in stage] == ["pro-a", "pro-b", "pro-d"]
        assert stage.quarantined == [(2, "(the line is not JSON)"), (4, "messages")]
        stage.append([prompt("c")])  # made again
    side = [json.loads(x) for x in (tmp_path / "prompts.jsonl.damaged").read_text().splitlines()]
    assert [(d["line"], d["field"], d["text"][:8]) for d in side] == [
        (2, "(the line is not JSON)", "not json"), (4, "messages", '{"id": "')
    ]  # fmt: skip
    assert path.read_bytes() == line(prompt("a")) + line(prompt("b")) + line(prompt("d")) + line(prompt("c"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 damaged line(s) moved to" in err[0] and "line 2" in err[0]


def test_a_reader_without_the_lock_skips_damaged_lines_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    content = line(prompt("a")) + b"not json\n" + line(prompt("b"))
    path.write_bytes(content)
    stage = Stage(path, PromptRecord, repair=False)
    assert [r.id for r in stage] == ["pro-a", "pro-b"] and stage.damaged
    with pytest.raises(RunDirError, match="repair it before appending"):
        stage.append([prompt("c")])
    assert path.read_bytes() == content and not (tmp_path / "prompts.jsonl.damaged").exists()


def test_missing_stage_file_is_empty(tmp_path: Path) -> None:
    with RunDir(tmp_path / "new" / "run") as run:
        stage = run.stage("responses", PromptRecord)
        assert len(stage) == 0
        assert not stage.path.exists()
        assert run.subdir("export").is_dir()


def test_manifest_round_trip(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        assert run.manifest == {"format_version": FORMAT_VERSION, "stages": {}, "status": "new"}
        run.save_manifest(status="running", stages={"respond": {"made": 4}})
        run.save_manifest(status="done")
    saved = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert saved == {"format_version": FORMAT_VERSION, "stages": {"respond": {"made": 4}}, "status": "done"}
    assert not list(tmp_path.glob(".manifest.json*.tmp"))
    with RunDir(tmp_path) as run:
        assert run.manifest == saved


def test_manifest_from_another_version_or_broken(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(RunDirError, match="format version 99"):
        RunDir(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(RunDirError, match="not valid JSON") as info:
        RunDir(tmp_path)
    (tmp_path / "manifest.json").unlink()
    # The refused open released its lock even while its traceback is still alive.
    assert info.traceback is not None
    with RunDir(tmp_path) as run:
        assert run.manifest["status"] == "new"


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    write_atomic(path, "old content that is long")
    write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_second_process_is_refused_while_open(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    try:
        outcome, message = open_in_other_process(tmp_path)
        assert outcome == "refused"
        assert "in use" in message
        assert str(tmp_path) in message
    finally:
        run.close()
    assert open_in_other_process(tmp_path) == ("opened", "")


def test_lock_released_after_close_in_process(tmp_path: Path) -> None:
    first = RunDir(tmp_path)
    with pytest.raises(RunDirError, match="in use"):
        RunDir(tmp_path)
    first.close()
    first.close()  # idempotent
    with RunDir(tmp_path) as second:
        assert second.path == tmp_path
    unlocked = RunDir(tmp_path, lock=False)
    with RunDir(tmp_path):
        pass
    unlocked.close()


def test_appends_reach_the_file_at_once_and_are_fsynced_in_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every append is in the file before `append` returns (a killed process loses nothing); fsync
    runs at most every SYNC_SECONDS while appending, and for whatever is left when the run closes."""
    import os

    import rlaif.store

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(rlaif.store.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    clock = [1000.0]
    monkeypatch.setattr(rlaif.store.time, "monotonic", lambda: clock[0])
    with RunDir(tmp_path) as run:
        stage = run.stage("prompts", PromptRecord)
        for i in range(50):  # a burst within one sync period: no fsync at all
            stage.append([prompt(f"p{i}")])
            assert (tmp_path / "prompts.jsonl").read_bytes().count(b"\n") == i + 1
        assert synced == []
        clock[0] += rlaif.store.SYNC_SECONDS
        stage.append([prompt("late")])  # the period is over: this append syncs
        assert len(synced) == 1
        stage.append([prompt("last")])
        assert len(synced) == 1
    assert len(synced) == 2  # closing the run directory synced the last one
    with RunDir(tmp_path) as run:
        assert len(run.stage("prompts", PromptRecord)) == 52
    assert len(synced) == 2  # nothing was appended: nothing to sync on close


def test_a_stage_is_read_once_per_run_directory_unless_the_file_changed(tmp_path: Path) -> None:
    with RunDir(tmp_path) as run:
        first = run.stage("prompts", PromptRecord)
        first.append([prompt("a")])
        assert run.stage("prompts", PromptRecord) is first  # no second parse, no second copy in memory
        (tmp_path / "prompts.jsonl").unlink()  # removed behind its back: read again
        again = run.stage("prompts", PromptRecord)
        assert again is not first and len(again) == 0
        with open(tmp_path / "prompts.jsonl", "ab") as handle:  # appended to by someone else
            handle.write(line(prompt("b")))
        assert [r.id for r in run.stage("prompts", PromptRecord)] == ["pro-b"]


def test_a_stage_outside_a_run_directory_syncs_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import rlaif.store
    from rlaif.store import Stage

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(rlaif.store.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    stage = Stage(tmp_path / "judgments.jsonl", PromptRecord)
    stage.append([prompt("a")])  # within the first sync period: not yet
    assert synced == []
    stage.sync()
    assert len(synced) == 1
    stage.sync()  # nothing new: nothing to do
    assert len(synced) == 1


def test_a_stage_holds_its_index_not_its_records(tmp_path: Path) -> None:
    """Opening a stage of 20,000 records costs a few hundred bytes a record (the id and where its line
    is), not the records: a million-prompt run fits in memory. Records are read back when asked for."""
    import tracemalloc

    path = tmp_path / "prompts.jsonl"
    text = "x" * 400
    with RunDir(tmp_path) as run:
        run.stage("prompts", PromptRecord).append(
            PromptRecord(
                id=f"pro-{i:016x}", messages=(Message(role="user", content=f"{i} {text}"),), source="t"
            )
            for i in range(20_000)
        )
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    stage = Stage(path, PromptRecord)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(stage) == 20_000
    assert held / 20_000 < 300, f"{held / 20_000:.0f} bytes a record"  # a record itself is ~2 KB
    assert stage[f"pro-{12345:016x}"].messages[0].content == f"12345 {text}"
    assert [r.id for r in stage][:2] == [f"pro-{0:016x}", f"pro-{1:016x}"]
    with pytest.raises(KeyError):
        stage["missing"]


# --- the shared stage: several processes append review decisions at once --------------------------------


WORKERS, APPENDS, COMMON = 4, 150, 15


def _append_many(path: str, worker: int) -> None:
    with RunDir(path, lock=False) as run:  # a reviewer: no run-directory lock
        stage = run.stage("reviews", PromptRecord)
        for i in range(APPENDS):
            batch = [prompt(f"w{worker}-{i:03d}")]
            if i % 10 == 0:
                batch.append(prompt(f"common-{i // 10:02d}"))  # every worker tries to store these
            stage.append(batch)


def test_processes_append_to_a_shared_stage_at_once_without_loss_or_tearing(tmp_path: Path) -> None:
    """Four processes append 150 times each, one record per append (plus 15 ids all four try to store),
    while a pipeline holds the run directory's lock: every record is there once, every line whole, each
    writer's records in its own order, and the first line of an id wins across processes."""
    context = multiprocessing.get_context("fork")
    with RunDir(tmp_path) as pipeline:  # `rlaif run` holds the run directory meanwhile
        children = [context.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(WORKERS)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
            assert child.exitcode == 0
        reviews = pipeline.stage("reviews", PromptRecord)
        assert len(reviews) == WORKERS * APPENDS + COMMON
    raw = (tmp_path / "reviews.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    ids = [PromptRecord.model_validate_json(text).id for text in raw.splitlines()]  # strict: no torn line
    assert len(ids) == len(set(ids)) == WORKERS * APPENDS + COMMON
    for worker in range(WORKERS):
        own = [i for i in ids if i.startswith(f"pro-w{worker}-")]
        assert own == [f"pro-w{worker}-{i:03d}" for i in range(APPENDS)]
    with RunDir(tmp_path, lock=False) as reader:
        stage = reader.stage("reviews", PromptRecord)
        assert stage.get("pro-common-07") == prompt("common-07")  # offsets index the right lines
        assert stage.get("pro-w3-149") == prompt("w3-149")


def test_a_shared_stage_reads_what_others_appended(tmp_path: Path) -> None:
    with RunDir(tmp_path, lock=False) as mine, RunDir(tmp_path, lock=False) as theirs:
        stage = mine.stage("reviews", PromptRecord)
        stage.append([prompt("a")])
        theirs.stage("reviews", PromptRecord).append([prompt("b"), prompt("a")])  # "a" is known: skipped
        assert mine.stage("reviews", PromptRecord) is stage  # the same object, caught up
        assert [r.id for r in stage] == ["pro-a", "pro-b"]
        assert stage.append([prompt("b"), prompt("c")]) == 1  # first id wins across processes
    assert (tmp_path / "reviews.jsonl").read_bytes() == b"".join(line(prompt(x)) for x in "abc")


def test_a_shared_stage_cuts_a_torn_tail_only_under_its_append_lock(tmp_path: Path) -> None:
    """Opening never cuts (the tail may be a line being written, even when the opener holds the run
    directory); the next append, holding the file's lock, knows no one is writing and cuts it."""
    path = tmp_path / "reviews.jsonl"
    whole = line(prompt("a"))
    torn = whole + line(prompt("b"))[:9]
    path.write_bytes(torn)
    with RunDir(tmp_path) as run:
        stage = run.stage("reviews", PromptRecord)
        assert [r.id for r in stage] == ["pro-a"] and stage.repaired_bytes == 9
        assert path.read_bytes() == torn
        assert stage.append([prompt("b")]) == 1
        assert stage.repaired_bytes == 0
        assert stage.get("pro-b") == prompt("b")
    assert path.read_bytes() == whole + line(prompt("b"))


def test_a_shared_stage_replaced_by_hand_is_read_again(tmp_path: Path) -> None:
    with RunDir(tmp_path, lock=False) as run:
        stage = run.stage("reviews", PromptRecord)
        stage.append([prompt("a"), prompt("b")])
        (tmp_path / "reviews.jsonl").write_bytes(line(prompt("c")))  # shorter: another file now
        assert [r.id for r in run.stage("reviews", PromptRecord)] == ["pro-c"]
        (tmp_path / "reviews.jsonl").unlink()
        assert len(run.stage("reviews", PromptRecord)) == 0
        assert stage.append([prompt("d")]) == 1
    assert (tmp_path / "reviews.jsonl").read_bytes() == line(prompt("d"))
