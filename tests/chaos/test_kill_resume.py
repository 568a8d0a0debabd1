"""Kill anywhere, resume: the CLI pipeline SIGKILLed at ≥ 20 seeded points against a real vLLM
server, resumed each time, loses and redoes no stored record and ends complete; against a
deterministic stub server it ends with exactly the records of an uninterrupted run.

Also here, because they need the same real runs: one run directory has one writer, and the API key
never reaches the run directory.

The suite is 24 kill points a run; CI runs a sample of 6 (at least one kill in each stage: respond,
revise, judge, export, and a torn write), and RLAIF_CHAOS_ALL=1 (`make soak`) runs all 24. Set
RLAIF_CHAOS_KILLS / RLAIF_CHAOS_SEED to vary the kills; the soak script (tests/chaos/soak.py) runs
many seeds.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.chaos import (
    PROGRESS,
    ROOT,
    chaos_run,
    command,
    compare,
    describe,
    environment,
    files_containing,
    line_counts,
    run_cli,
    snapshot,
    stage_counts,
    write_config,
)
from tests.support.stub import StubServer

pytestmark = pytest.mark.chaos

ALL_KILLS, SAMPLE_KILLS = 24, 6  # 6: each of the 5 targets once, one delay kill
_DEFAULT_KILLS = ALL_KILLS if os.environ.get("RLAIF_CHAOS_ALL") else SAMPLE_KILLS
KILLS = max(SAMPLE_KILLS, int(os.environ.get("RLAIF_CHAOS_KILLS") or _DEFAULT_KILLS))
FULL = KILLS >= ALL_KILLS
"""The whole suite: ≥ 2 kills in each generation stage and ≥ 2 torn writes; a sample: at least one."""
SEED = int(os.environ.get("RLAIF_CHAOS_SEED", "20261122"))
KEY_ENV = "RLAIF_CHAOS_API_KEY"
SECRET = f"sk-chaos-{secrets.token_hex(12)}"


@dataclass
class Reference:
    run_dir: Path
    records: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    output: str


def _config(folder: Path, server: Any) -> Path:
    return write_config(
        folder,
        run_dir=folder / "run",
        base_url=server.base_url,
        served_name=server.served_name,
        model={"api_key_env": KEY_ENV},
    )


def _env() -> dict[str, str]:
    return environment(**{KEY_ENV: SECRET})


@pytest.fixture(scope="module")
def reference(vllm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted run of the tiny slice (5 prompts, 2 rounds), with the API key set to a secret."""
    folder = tmp_path_factory.mktemp("reference")
    done = run_cli(_config(folder, vllm_server), env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = folder / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    records = snapshot(run_dir)
    counts = stage_counts(records)
    assert (counts["responses"], counts["revision_steps"], counts["revisions"], counts["judgments"]) == (
        10,
        10,
        5,
        5,
    )
    assert counts["pairs"] > 0
    return Reference(run_dir, records, summary, done.stdout + done.stderr)


def _kill_and_resume(config: Path, run_dir: Path, expected: dict[str, int]) -> tuple[Any, dict[str, Any]]:
    """SIGKILL the CLI at KILLS seeded points, resume once more to the end; check what holds for any
    server: enough kills in every stage, no stored record lost or rewritten, whole lines, no id twice,
    status done, no temp file left. Returns the chaos report and the final records."""
    started = time.monotonic()
    report = chaos_run(config, run_dir, expected, kills=KILLS, seed=SEED, env=_env())
    print(f"\n{report.summary()} in {time.monotonic() - started:.0f} s\n{describe(report.kills)}")
    # A kill may find its run finished (a delay kill late in a fast stage): 20 of 24, 4 of a sample of 6.
    assert len(report.killed) >= KILLS - (4 if FULL else 2), describe(report.kills)
    stages = report.by_stage()
    for stage in ("respond", "revise", "judge"):
        assert stages.get(stage, 0) >= (2 if FULL else 1), f"too few kills in {stage}: {stages}"
    assert stages.get("export", 0) >= 1, stages
    assert sum(k.torn is not None for k in report.killed) >= (2 if FULL else 1)

    done = run_cli(config, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    final = snapshot(run_dir)  # every line whole and valid, no id twice
    assert report.changed(final) == []
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "done"
    assert not list(run_dir.glob(".*.tmp")), "a half-written atomic file was left behind"
    summary = json.loads((run_dir / "summary.json").read_text())
    exported = (run_dir / "export" / "pairs.jsonl").read_text().splitlines()
    dropped = (run_dir / "export" / "dropped.jsonl").read_text().splitlines()
    # Every candidate pair is on record: exported, or dropped by a filter with its reason.
    assert summary["counts"]["pairs"] == len(exported)
    assert len(exported) + len(dropped) == len(final["pairs"])
    return report, final


@pytest.mark.timeout(900 if FULL else 300)
def test_kill_anywhere_resume_with_nothing_lost_or_redone(
    reference: Reference, vllm_server: Any, tmp_path: Path
) -> None:
    """Against the real vLLM server: SIGKILL at seeded points (≥ 20 of 24 in the whole suite; record
    counts spread over every stage, the export, random delays; every fourth followed by a torn last
    line), resume each time.
    Every record stored before a kill is in the final files unchanged (resuming never redoes stored
    work), and every stage ends as complete as in the uninterrupted run.

    The texts of records made after a kill are not compared with the uninterrupted run's: vLLM's
    sampling is not batch-invariant (the same seeded request can decode differently in another
    batch), so they may differ; the deterministic stub server below checks them byte for byte."""
    run_dir = tmp_path / "run"
    expected = stage_counts(reference.records)
    _, final = _kill_and_resume(_config(tmp_path, vllm_server), run_dir, expected)
    counts = stage_counts(final)
    assert {k: counts[k] for k in PROGRESS} == {k: expected[k] for k in PROGRESS}
    responses = final["responses"]
    for step in final["revision_steps"].values():
        assert step["response_id"] in responses
    for judgment in final["judgments"].values():
        assert {judgment["response_a_id"], judgment["response_b_id"]} <= set(responses)


@pytest.mark.slow
@pytest.mark.timeout(900 if FULL else 300)
def test_kill_anywhere_resume_exactly_on_a_deterministic_server(tmp_path: Path) -> None:
    """The same kills against the stub server (its answers are a hash of the request): the final
    records equal an uninterrupted run's, record for record: same ids in every stage file, same
    contents, nothing twice, the same export."""
    with StubServer() as stub:
        stub.delay = 0.05  # slow enough that the kills spread over the stages
        server = SimpleNamespace(base_url=stub.base_url, served_name=stub.served_name)
        reference_dir = tmp_path / "reference"
        done = run_cli(_config(reference_dir, server), env=_env())
        assert done.returncode == 0, done.stderr[-3000:]
        reference = snapshot(reference_dir / "run")
        _, final = _kill_and_resume(_config(tmp_path / "chaos", server), tmp_path / "chaos" / "run",
                                    stage_counts(reference))  # fmt: skip
    assert compare(reference, final) == []
    exported = (tmp_path / "chaos" / "run" / "export" / "pairs.jsonl").read_text()
    assert exported == (reference_dir / "run" / "export" / "pairs.jsonl").read_text()


def test_second_writer_is_refused(vllm_server: Any, tmp_path: Path) -> None:
    """While one `rlaif run` holds a run directory, a second one on it stops at once with one clear
    line and touches nothing; the first then finishes normally."""
    config = write_config(
        tmp_path,
        run_dir=tmp_path / "run",
        base_url=vllm_server.base_url,
        served_name=vllm_server.served_name,
        prompts=2,
        rounds=1,
    )
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        command(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=_env(), cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while sum(line_counts(run_dir)[name] for name in PROGRESS) < 1:  # the first is mid-run
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first run never wrote a record"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGSTOP)  # hold it still, lock held, while the second tries
        before = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
        second = run_cli(config, timeout=120, env=_env())
        after = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
        os.killpg(first.pid, signal.SIGCONT)
    except BaseException:
        os.killpg(first.pid, signal.SIGKILL)  # never leave a stopped process behind
        first.wait(timeout=30)
        raise
    assert second.returncode == 2, second.stdout + second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
    assert lines[0].startswith("error: ") and "in use" in lines[0] and str(run_dir) in lines[0]
    assert after == before, "the refused run changed files in the run directory"
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    snapshot(run_dir)  # whole lines, no id twice


def test_api_key_never_reaches_the_run_directory(reference: Reference) -> None:
    """The key in the environment variable named by `model.api_key_env` is in no file of the run
    directory (records, provenance, manifest, summary, export, logs) and not in the output."""
    assert SECRET not in reference.output
    assert files_containing(reference.run_dir, SECRET) == []
    manifest = json.loads((reference.run_dir / "manifest.json").read_text())
    assert manifest["config"]["model"]["api_key_env"] == KEY_ENV  # the name is recorded, never the value
