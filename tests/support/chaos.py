"""Kill the `rlaif run` CLI with SIGKILL at chosen points, resume it, and check the records.

A kill point is "when the stage files hold N records" (N drawn inside a chosen stage: respond,
revise or judge, so kills land mid-stage and at its boundaries), "when the pairs are written"
(export) or "T seconds after start" (startup, reloading, export, summary). After every fourth kill
the last line of the newest stage file is torn on purpose, as a crash in the middle of a write
would leave it, so the resume must also repair. `snapshot` parses every stage
file strictly (every line complete and valid, no id twice); `compare` diffs two snapshots.
Used by tests/chaos/test_kill_resume.py and the soak script tests/chaos/soak.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rlaif.records import Judgment, PreferencePair, ProbeResponse, Response, Revision, RevisionStep

ROOT = Path(__file__).resolve().parents[2]
STAGES: dict[str, type[BaseModel]] = {
    "responses": Response,
    "revision_steps": RevisionStep,
    "revisions": Revision,
    "judgments": Judgment,
    "probe_responses": ProbeResponse,
    "probes": Judgment,
    "pairs": PreferencePair,
}
"""Stage files in the order the pipeline writes them (the probes beside the judgments)."""


def write_config(
    folder: Path,
    *,
    run_dir: Path,
    base_url: str | None,
    served_name: str | None,
    prompts: int = 5,
    max_tokens: int = 24,
    rounds: int = 2,
    seed: int = 0,
    model: Mapping[str, Any] | None = None,
) -> Path:
    """A tiny run config (a slice of examples/prompts.jsonl, short answers) in `folder/config.yaml`."""
    model_section: dict[str, Any] = {"max_concurrency": 2, "request_timeout": 60, "unreachable_after": 30}
    if base_url is not None:
        model_section.update(base_urls=[base_url], served_name=served_name)
    model_section.update(model or {})
    config = {
        "run_dir": str(run_dir),
        "constitution": "harmless",
        "prompts": {"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": prompts},
        "seed": seed,
        "model": model_section,
        "generation": {"samples_per_prompt": 2, "max_tokens": max_tokens},
        "revise": {"rounds": rounds, "max_tokens": max_tokens, "few_shot": 1},
        "judge": {"both_orders": True, "probes": {"share": 1.0}},  # every prompt probed: resumed too
        "train": {"dpo": {"enabled": False}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def command(config: Path) -> list[str]:
    return [
        sys.executable, "-m", "rlaif.cli", "run", str(config), "--quiet", "--set", "train.dpo.enabled=false",
    ]  # fmt: skip


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", **extra}


def run_cli(
    config: Path, *, timeout: float = 600, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(config),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env or environment()),
        cwd=ROOT,
    )


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def line_counts(run_dir: Path) -> dict[str, int]:
    return {name: line_count(run_dir / f"{name}.jsonl") for name in STAGES}


@dataclass(frozen=True)
class KillPoint:
    """Kill when the record-by-record stage files hold `at` lines together (`progress`), when
    `pairs.jsonl` has `at` lines (`pairs`), when this run writes a file under `export/`
    (`export`), or `at` seconds after the start (`delay`).

    A delay kill also fires when the stage files reach `limit` lines (a third of what is left of the
    stage the run is in), so a fast run never carries it through the records other kills aim at.
    """

    stage: str
    at: float
    limit: int | None = None


@dataclass
class Kill:
    """What one interrupted run did."""

    point: KillPoint
    killed: bool
    """False when the run finished before the trigger."""
    seconds: float
    before: dict[str, int]
    after: dict[str, int]
    where: str = ""
    """The stage the run was in when it was killed (first stage file short of the reference)."""
    torn: str | None = None
    """Stage file whose last line was torn after the kill."""
    returncode: int | None = None
    stderr: str = ""


@dataclass
class ChaosReport:
    kills: list[Kill] = field(default_factory=list)
    kept: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Every whole record on disk after any kill, as first seen: resuming must never change one."""

    def keep(self, run_dir: Path) -> None:
        for name, records in stored(run_dir).items():
            for record_id, record in records.items():
                self.kept.setdefault(name, {}).setdefault(record_id, record)

    def changed(self, final: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Records stored before a kill that the final files lack or hold differently."""
        problems = []
        for name, records in self.kept.items():
            for record_id, record in records.items():
                if record_id not in final.get(name, {}):
                    problems.append(f"{name}: {record_id} was stored, then lost")
                elif final[name][record_id] != record:
                    problems.append(f"{name}: {record_id} was stored, then rewritten")
        return problems

    @property
    def killed(self) -> list[Kill]:
        return [k for k in self.kills if k.killed]

    def by_stage(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kill in self.killed:
            counts[kill.where] = counts.get(kill.where, 0) + 1
        return counts

    def summary(self) -> str:
        torn = sum(k.torn is not None for k in self.killed)
        return (
            f"{len(self.killed)} kills ({len(self.kills) - len(self.killed)} runs finished before their "
            f"trigger), {torn} torn writes; by stage: {json.dumps(self.by_stage(), sort_keys=True)}"
        )


PROGRESS = ("responses", "revision_steps", "revisions", "judgments")
"""Stage files written record by record; `pairs` is written in one append during export."""


def progress(counts: Mapping[str, int]) -> int:
    return sum(counts.get(name, 0) for name in PROGRESS)


SEGMENTS = {"respond": ("responses",), "revise": ("revision_steps", "revisions"), "judge": ("judgments",)}
"""Pipeline stages and the stage files they write record by record, in order."""
QUOTA = {"respond": 5, "revise": 7, "judge": 4, "export": 2}
"""Kills per stage out of 24 (the rest are delay kills, which land anywhere, startup included)."""


def where(
    point: KillPoint,
    kill_started: float,
    counts: Mapping[str, int],
    expected: Mapping[str, int],
    run_dir: Path,
) -> str:
    """The pipeline stage a run was killed in: for a kill on record counts, the stage that wrote the
    record that triggered it (`respond`, `revise`, `judge`); `export` for the pairs; for a delay,
    `startup` before the run wrote its manifest, else the first stage with records still to make,
    `export` before the summary was written, `after summary` after."""

    def since_start(name: str) -> bool:
        path = run_dir / name
        return path.exists() and path.stat().st_mtime >= kill_started

    if point.stage == "progress":
        end = 0
        for name, files in SEGMENTS.items():
            end += sum(expected.get(f, 0) for f in files)
            if point.at <= end:
                return name
    if point.stage in ("pairs", "export"):
        return "export"
    if point.limit is not None and progress(counts) >= point.limit:  # stopped by its record limit
        end = 0
        for name, files in SEGMENTS.items():
            end += sum(expected.get(f, 0) for f in files)
            if point.limit <= end:
                return name
    if not since_start("manifest.json"):
        return "startup"
    for name, files in SEGMENTS.items():
        if any(counts.get(f, 0) < expected.get(f, 0) for f in files):
            return name
    return "after summary" if since_start("summary.json") else "export"


def plan(rng: random.Random, kills: int) -> list[str]:
    """Target stage of each of `kills` kills, in pipeline order with the delay kills mixed in.

    Delay kills go before the judge kills: once the judge stage is done only the export is left,
    which takes less time than a delay, so a later delay kill would find the run finished.
    """
    targets = [name for name, share in QUOTA.items() for _ in range(max(1, round(share * kills / 24)))]
    targets = targets[:kills]
    for _ in range(kills - len(targets)):
        targets.insert(rng.randrange(targets.index("judge") + 1), "delay")
    return targets


def next_point(
    rng: random.Random, target: str, left: int, counts: Mapping[str, int], expected: Mapping[str, int]
) -> KillPoint:
    """A kill point in stage `target`, `left` kills of it to go (this one included).

    Inside a stage the kill comes after a random number of its records, about an even share of what
    is left, so its kills spread over the whole stage; `export` kills when the pairs are written;
    `delay` kills, and kills meant for a stage already done, land at a random time after the start;
    an `export` kill, and every kill once only the export is left, goes to the export (first the pairs,
    then its files), the run first finishing any stage still to do.
    """
    done = progress(counts)
    sizes = [sum(expected.get(f, 0) for f in files) for files in SEGMENTS.values()]
    ends = dict(zip(SEGMENTS, itertools.accumulate(sizes), strict=True))
    if target in SEGMENTS and done < ends[target]:
        end = ends[target]
        low = max(done, end - sizes[list(SEGMENTS).index(target)])
        share = max(1, round(2 * (end - low) / max(left, 1)) - 1)
        return KillPoint("progress", low + rng.randint(1, min(share, end - low)))
    for end in ends.values():
        if target == "export":
            break
        if done < end:  # the stage the run is in: a delay kill takes at most a third of what is left
            return KillPoint("delay", round(rng.uniform(0.3, 6.0), 2), limit=done + max(1, (end - done) // 3))
    pairs = counts.get("pairs", 0)
    if pairs < expected.get("pairs", 0):
        return KillPoint("pairs", pairs + 1)
    return KillPoint("export", 1)


def kill_at(
    config: Path,
    run_dir: Path,
    point: KillPoint,
    *,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> Kill:
    """Start the CLI and SIGKILL its process group when `point` is reached."""
    before = line_counts(run_dir)
    names = (point.stage,) if point.stage == "pairs" else PROGRESS
    watched = [run_dir / f"{name}.jsonl" for name in names]
    sizes = [f.stat().st_size if f.exists() else 0 for f in watched]  # a hit needs a write of this run
    started, started_wall = time.monotonic(), time.time()
    process = subprocess.Popen(
        command(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(env or environment()), cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise TimeoutError(f"run did not reach {point} in {timeout} s")
            if point.stage == "export":
                hit = _written_since(run_dir / "export", started_wall)
            else:
                current = [f.stat().st_size if f.exists() else 0 for f in watched]
                lines = point.limit if point.stage == "delay" else point.at
                hit = current != sizes and lines is not None and sum(map(line_count, watched)) >= lines
                hit = hit or (point.stage == "delay" and elapsed >= point.at)
                sizes = current
            if hit:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                return Kill(point, True, time.monotonic() - started, before, line_counts(run_dir))
            time.sleep(0.002)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    _, stderr = process.communicate(timeout=30)
    return Kill(
        point, False, time.monotonic() - started, before, line_counts(run_dir),
        returncode=process.returncode, stderr=stderr,
    )  # fmt: skip


def _written_since(folder: Path, since: float) -> bool:
    try:
        return any(f.stat().st_mtime >= since for f in folder.rglob("*") if f.is_file())
    except FileNotFoundError:  # a file replaced while we looked
        return False


def tear_last_line(run_dir: Path, rng: random.Random) -> str | None:
    """Cut the newest stage file inside its last line, as a crash during that write would."""
    files = [run_dir / f"{name}.jsonl" for name in STAGES]
    files = [f for f in files if f.exists() and f.stat().st_size > 0]
    if not files:
        return None
    newest = max(files, key=lambda f: f.stat().st_mtime_ns)
    data = newest.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = rng.randint(start + 1, len(data) - 1)  # keep part of the line, never its newline
    with open(newest, "r+b") as handle:
        handle.truncate(cut)
    return newest.stem


def chaos_run(
    config: Path,
    run_dir: Path,
    expected: Mapping[str, int],
    *,
    kills: int,
    seed: int,
    tear_every: int = 4,
    env: Mapping[str, str] | None = None,
) -> ChaosReport:
    """Start the run `kills` times, SIGKILLing it at a seeded point each time (a run that ends first
    is recorded as finished); afterwards the caller runs it to the end and compares."""
    rng = random.Random(seed)
    targets = plan(rng, kills)
    report = ChaosReport()
    for index, target in enumerate(targets):
        left = targets[index:].count(target)
        point = next_point(rng, target, left, line_counts(run_dir), expected)
        started = time.time()
        kill = kill_at(config, run_dir, point, env=env)
        if kill.killed:
            kill.where = where(point, started, kill.after, expected, run_dir)
            if sum(k.killed for k in report.kills) % tear_every == tear_every - 1:  # every 4th kill
                kill.torn = tear_last_line(run_dir, rng)
        elif kill.returncode != 0:
            raise AssertionError(
                f"run failed (exit {kill.returncode}) before {point}:\n{kill.stderr[-3000:]}"
            )
        report.kills.append(kill)
        report.keep(run_dir)
    return report


def stored(run_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every whole line of every stage file by id; a torn last line is not a record yet."""
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for name in STAGES:
        path = run_dir / f"{name}.jsonl"
        lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
        records[name] = {(r := json.loads(line))["id"]: r for line in lines}
    return records


def snapshot(run_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stage file's records by id, checking the file strictly.

    Raises AssertionError for a torn or unparsable line or an id stored twice.
    """
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for name, record_type in STAGES.items():
        path = run_dir / f"{name}.jsonl"
        data = path.read_bytes() if path.exists() else b""
        assert not data or data.endswith(b"\n"), f"{path}: torn last line {data[-80:]!r}"
        by_id: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(data.splitlines(), start=1):
            record = record_type.model_validate_json(line)  # raises on a half-written line
            assert record.id not in by_id, f"{path}:{number}: id {record.id} stored twice"  # type: ignore[attr-defined]
            by_id[record.id] = json.loads(line)  # type: ignore[attr-defined]
        records[name] = by_id
    return records


def compare(
    reference: Mapping[str, Mapping[str, Any]], other: Mapping[str, Mapping[str, Any]], *, texts: bool = True
) -> list[str]:
    """Differences between two snapshots: ids per stage file, and whole records when `texts`."""
    problems = []
    for name in STAGES:
        ref, got = reference.get(name, {}), other.get(name, {})
        if missing := sorted(set(ref) - set(got)):
            problems.append(f"{name}: {len(missing)} ids missing, e.g. {missing[:3]}")
        if extra := sorted(set(got) - set(ref)):
            problems.append(f"{name}: {len(extra)} ids not in the reference, e.g. {extra[:3]}")
        if texts:
            differ = [i for i in set(ref) & set(got) if ref[i] != got[i]]
            if differ:
                problems.append(f"{name}: {len(differ)} records differ in content, e.g. {differ[:3]}")
    return problems


def files_containing(folder: Path, needle: str) -> list[Path]:
    """Every file under `folder` whose bytes contain `needle`."""
    data = needle.encode()
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and data in p.read_bytes()]


def stage_counts(snapshot_: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {name: len(snapshot_.get(name, {})) for name in STAGES}


def describe(kills: Sequence[Kill]) -> str:
    def point(p: KillPoint) -> str:
        return f"{p.stage}@{p.at}" + ("" if p.limit is None else f" (or at {p.limit} lines)")

    return "\n".join(
        f"{point(k.point)} -> {'killed' if k.killed else 'finished'} in {k.where or '-'} after "
        f"{k.seconds:.1f} s, lines {k.before} -> {k.after}{', tore ' + k.torn if k.torn else ''}"
        for k in kills
    )


def worker_pids(parent: int) -> list[int]:
    """The `rlaif run --workers N` worker processes of `parent` (its spawned children, not the
    multiprocessing resource tracker), from /proc."""
    found = []
    for task in Path(f"/proc/{parent}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(child))
    return sorted(found)


def kill_when(
    process: subprocess.Popen[str], run_dir: Path, at: int, *, target: str, timeout: float = 120
) -> list[int] | None:
    """SIGKILL one worker (`target="worker"`) or the parent (`"parent"`) of a `--workers` run once its
    stage files hold `at` lines; returns the workers running just before (None: the run ended first)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if progress(line_counts(run_dir)) >= at:
            workers = worker_pids(process.pid)
            if target == "parent" and workers:
                os.kill(process.pid, signal.SIGKILL)
                return workers
            if workers:
                os.kill(workers[-1], signal.SIGKILL)
                return workers
        time.sleep(0.005)
    return None
