"""`rlaif run --workers N` against the deterministic stub: the same records and export as one process,
and kill points of its own: SIGKILL one worker mid-stage, or the parent, then rerun with another N;
Ctrl-C stops every worker. The stub's answers are a hash of the request, so "the same" is exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.chaos import (
    ROOT,
    command,
    compare,
    environment,
    kill_when,
    line_counts,
    progress,
    run_cli,
    snapshot,
    worker_pids,
    write_config,
)
from tests.support.stub import StubServer

pytestmark = pytest.mark.chaos

PROMPTS = 8


def _env() -> dict[str, str]:
    return environment(PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


@pytest.fixture(scope="module")
def reference(stub: StubServer, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One process's run: the records and export every worker count must reproduce."""
    folder = tmp_path_factory.mktemp("one")
    done = run_cli(_config(folder, stub), env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = folder / "run"
    return SimpleNamespace(run_dir=run_dir, records=snapshot(run_dir), counts=line_counts(run_dir))


def _config(folder: Path, stub: StubServer, prompts: int = PROMPTS) -> Path:
    return write_config(
        folder, run_dir=folder / "run", base_url=stub.base_url, served_name=stub.served_name, prompts=prompts,
        rounds=1,
    )  # fmt: skip


def _run(config: Path, workers: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(config), "--workers", str(workers)], capture_output=True, text=True, timeout=300,
        env=_env(), cwd=ROOT,
    )  # fmt: skip


def _same_as(reference: SimpleNamespace, run_dir: Path) -> None:
    assert compare(reference.records, snapshot(run_dir)) == []
    for name in ("pairs.jsonl", "sft.jsonl"):
        assert (run_dir / "export" / name).read_text() == (reference.run_dir / "export" / name).read_text()


def _start(config: Path, workers: int, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*command(config), "--workers", str(workers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(), cwd=ROOT, **popen,
    )  # fmt: skip


@pytest.mark.unit
def test_two_workers_store_and_export_what_one_process_does(
    stub: StubServer, reference: SimpleNamespace, tmp_path: Path
) -> None:
    done = _run(_config(tmp_path, stub), 2)
    assert done.returncode == 0, done.stderr[-3000:]
    _same_as(reference, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["workers"] == 2 and len(manifest["worker_peak_rss_gib"]) == 2
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stages"]["respond"]["made"] == 2 * PROMPTS  # the workers' reports added up
    # Resumed with another count, nothing is redone: every id is stored, whoever made it.
    again = _run(_config(tmp_path, stub), 3)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stages"]["respond"] == {**summary["stages"]["respond"], "made": 0, "reused": 2 * PROMPTS}
    _same_as(reference, tmp_path / "run")


@pytest.mark.integration  # no server of its own, but three runs with a delayed stub: ~15 s quiet
@pytest.mark.parametrize("target", ["worker", "parent"])
def test_kill_one_worker_or_the_parent_mid_stage_then_resume_with_another_count(
    stub: StubServer, reference: SimpleNamespace, tmp_path: Path, target: str
) -> None:
    config = _config(tmp_path, stub)
    run_dir = tmp_path / "run"
    stub.delay = 0.05  # the respond stage takes about a second: the kill lands inside it
    try:
        process = _start(config, 2)
        workers = kill_when(process, run_dir, 5, target=target)
        _, stderr = process.communicate(timeout=120)
    finally:
        stub.delay = 0.0
    assert workers is not None, "the run finished before the kill"
    assert progress(line_counts(run_dir)) < progress(reference.counts)
    if target == "worker":
        lines = stderr.strip().splitlines()
        assert process.returncode == 1 and len(lines) == 1 and "Traceback" not in stderr, stderr
        assert "was killed by signal 9" in lines[0] and "rerun the same command to resume" in lines[0]
    else:
        assert process.returncode == -signal.SIGKILL
        time.sleep(0.5)  # PR_SET_PDEATHSIG: the kernel kills the workers with their parent
        assert not [pid for pid in workers if _running(pid)], "a worker outlived its parent"
    done = _run(config, 3)
    assert done.returncode == 0, done.stderr[-3000:]
    _same_as(reference, run_dir)  # nothing lost, nothing twice (snapshot refuses a repeated id)


@pytest.mark.integration
def test_ctrl_c_stops_every_worker(stub: StubServer, tmp_path: Path) -> None:
    config = _config(tmp_path, stub)
    stub.delay = 0.05
    try:
        process = _start(config, 2, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(worker_pids(process.pid)) < 2 or progress(line_counts(tmp_path / "run")) < 2:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.01)
        workers = worker_pids(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
        _, stderr = process.communicate(timeout=60)
    finally:
        stub.delay = 0.0
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    assert not [pid for pid in workers if _running(pid)]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"


@pytest.mark.unit
def test_more_workers_than_prompts_run_one_a_prompt(
    stub: StubServer, reference: SimpleNamespace, tmp_path: Path
) -> None:
    config = _config(tmp_path, stub, prompts=3)
    # Without probes the workers run every stage of their share in one round (nothing pairs prompts).
    text = config.read_text().replace("share: 1.0", "share: 0.0")
    config.write_text(text + "quality:\n  min_probe_accuracy: null\n")  # the probe gate needs probes
    done = _run(config, 8)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["workers"] == 3
    got = snapshot(tmp_path / "run")
    for name in ("responses", "revision_steps", "revisions", "judgments"):
        assert got[name] and all(reference.records[name].get(i) == r for i, r in got[name].items()), name
    assert not got["probes"]


@pytest.mark.unit
def test_workers_zero_is_refused_in_one_line(stub: StubServer, tmp_path: Path) -> None:
    done = _run(_config(tmp_path, stub), 0)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--workers" in done.stderr and "greater than or equal to 1" in done.stderr
    config = _config(tmp_path, stub)
    config.write_text(config.read_text().replace("max_concurrency: 2", "max_concurrency: 2\n  workers: 0"))
    done = run_cli(config, env=_env())
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "model.workers" in lines[0], done.stderr


def _running(pid: int) -> bool:
    """A live process (not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
