"""`rlaif run --workers N`: N client processes generate on one run directory.

One Python client is CPU-bound near 280 requests/s (`rlaif bench-scale`); a GPU server answers a
prefix-cached one-token judge verdict faster than that. So the generation stages can run in N
processes, each on the prompts whose id hashes to it (`shard_of`), against the same server(s).

The protocol (the run directory's side is in `rlaif.store`):
- the parent holds the run directory's lock, starts the managed server(s), and starts the workers
  (`spawn`: a fresh interpreter, no inherited threads or sockets); it writes no stage while they run;
- each worker loads the inputs itself, keeps its share, opens the run directory with
  `RunDir(worker=True)` (every append under the stage file's own lock) and runs the stages one
  process would run, with `max_concurrency` requests of its own in flight;
- with the probes on, the stages run in two rounds, respond first, then critique/revise, the judge
  and the probes: the probes pair a prompt's answer with another prompt's (maybe another worker's), so
  every answer must be stored first, as it is in one process; without them, one round;
- each worker writes its stage reports to a file the parent reads and adds up, sends its bars' steps
  to the parent (one bar per stage for all workers), and dies with the parent (`PR_SET_PDEATHSIG`);
- after the last round the parent reads the stages whole and goes on as one process does: pairs,
  export and training are its own, so the export is the one a single process makes.

Which worker owns a prompt depends on N only; nothing of it is stored, so a rerun with any N resumes
(each worker skips the ids already stored, whoever made them). A worker that dies (kill -9, a crash)
loses at most the line it was writing, which the next append or open cuts; the others finish their
round, and the run stops with one line saying which worker died: a rerun makes what it did not.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.config import RunConfig
from rlaif.errors import IncompleteRun, RlaifError, ServerUnreachable
from rlaif.pipeline.reports import RubricReport, StageReport
from rlaif.progress import RelayedBars, relay_bars

__all__ = [
    "ShardJob",
    "merge_reports",
    "run_rounds",
    "shard_of",
    "worker_count",
    "worker_process",
]

PR_SET_PDEATHSIG = 1
STOP_SECONDS = 10.0
"""How long a worker gets to stop after SIGTERM before it is killed."""


def shard_of(prompt_id: str, workers: int) -> int:
    """The worker (0 .. workers-1) that owns a prompt: a stable hash of its id, the same in every process."""
    return zlib.crc32(prompt_id.encode()) % workers


def worker_count(config: RunConfig, prompts: int) -> int:
    """How many workers a run starts: `model.workers`, but never more than there are prompts."""
    return max(1, min(config.model.workers, prompts))


@dataclass
class ShardJob:
    """What one worker does in one round (pickled to the spawned process)."""

    config: RunConfig
    stages: tuple[str, ...]
    index: int
    workers: int
    policy_args: dict[str, Any]
    judge_args: dict[str, Any] | None
    parent_pid: int
    result: Path
    """Where the worker writes its stage reports (JSON) when it finishes, or its error."""


def worker_process(job: ShardJob, bars: Any, work: Callable[[ShardJob], dict[str, StageReport]]) -> None:
    """The body of a worker: die with the parent, relay the bars through `bars` (this worker's own pipe
    end: a queue shared by all would hold a lock a killed worker never gives back), run `work`, write
    what it did to `job.result`."""
    import json
    import resource

    _die_with_parent(job.parent_pid)
    relay_bars(_Sender(bars))
    outcome: dict[str, Any]
    try:
        reports = work(job)
        outcome = {"reports": {name: report.model_dump(mode="json") for name, report in reports.items()}}
    except KeyboardInterrupt:
        os._exit(130)  # Ctrl-C reached the whole process group: the parent reports it
    except ServerUnreachable as exc:
        outcome = {"error": str(exc), "unreachable": True}
    except RlaifError as exc:
        outcome = {"error": str(exc)}
    except Exception as exc:  # a bug: its type and message, for the parent's one line
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    outcome["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    tmp = job.result.with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome), encoding="utf-8")
    os.replace(tmp, job.result)  # the parent sees a whole file or none
    bars.close()


class _Sender:
    """`put` over a pipe end (what `relay_bars` sends through)."""

    def __init__(self, connection: Any):
        self._connection = connection

    def put(self, message: Any) -> None:
        with contextlib.suppress(OSError):  # a parent gone: the kernel ends this process anyway
            self._connection.send(message)


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); a parent already gone ends it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


STAGE_REPORTS: dict[str, type[StageReport]] = {"rubric": RubricReport}
"""The stages whose report is more than a `StageReport` (read back from a worker by its own class)."""


def merge_reports(found: Sequence[dict[str, StageReport]]) -> dict[str, StageReport]:
    """The workers' reports of each stage added up, field by field: counts summed, counts by key summed
    by key, the first five error messages of them all kept."""
    merged: dict[str, StageReport] = {}
    for reports in found:
        for name, report in reports.items():
            total = merged.setdefault(name, type(report)())
            for field in type(report).model_fields:
                mine, theirs = getattr(total, field), getattr(report, field)
                if isinstance(mine, list):
                    setattr(total, field, (mine + theirs)[:5])
                elif isinstance(mine, dict):
                    setattr(total, field, {k: mine.get(k, 0) + theirs.get(k, 0) for k in {**mine, **theirs}})
                else:
                    setattr(total, field, mine + theirs)
    return merged


def run_rounds(
    target: Callable[[ShardJob, Any], None],
    config: RunConfig,
    rounds: Sequence[tuple[str, ...]],
    *,
    workers: int,
    policy_args: dict[str, Any],
    judge_args: dict[str, Any] | None,
    quiet: bool,
) -> tuple[dict[str, StageReport], list[float]]:
    """Run each round of stages in `workers` processes (`target(job, bars)`), one round after the other;
    returns the stage reports added up and each worker's peak RSS in GiB (the largest over rounds)."""
    context = multiprocessing.get_context("spawn")
    bars = RelayedBars(quiet=quiet)
    found: list[dict[str, StageReport]] = []
    peaks = [0.0] * workers
    try:
        with tempfile.TemporaryDirectory(prefix="rlaif-workers-") as tmp:
            for number, stages in enumerate(rounds):
                jobs = [
                    ShardJob(
                        config=config,
                        stages=stages,
                        index=i,
                        workers=workers,
                        policy_args=policy_args,
                        judge_args=judge_args,
                        parent_pid=os.getpid(),
                        result=Path(tmp) / f"{number}-{i}.json",
                    )  # fmt: skip
                    for i in range(workers)
                ]
                found += _round(context, target, jobs, bars, peaks)
    finally:
        bars.close()
    return merge_reports(found), peaks


def _round(
    context: Any,
    target: Callable[[ShardJob, Any], None],
    jobs: Sequence[ShardJob],
    bars: RelayedBars,
    peaks: list[float],
) -> list[dict[str, StageReport]]:
    import json
    from multiprocessing.connection import wait

    processes, readers = [], []
    try:
        for job in jobs:
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(
                target=target, args=(job, writer), name=f"rlaif-worker-{job.index}", daemon=True
            )
            process.start()
            writer.close()  # the worker holds the only writing end: its exit is the reader's EOF
            processes.append(process)
            readers.append(reader)
        open_readers = list(readers)
        while open_readers:
            for reader in wait(open_readers, timeout=1.0):
                try:
                    bars.handle(reader.recv())
                except (EOFError, OSError):
                    open_readers.remove(reader)
        for process in processes:
            process.join()
    finally:
        _stop(processes)
        for reader in readers:
            reader.close()
    reports: list[dict[str, StageReport]] = []
    failures: list[str] = []
    unreachable: list[str] = []
    for job, process in zip(jobs, processes, strict=True):
        name = f"worker {job.index + 1} of {job.workers}"
        outcome = json.loads(job.result.read_text(encoding="utf-8")) if job.result.exists() else None
        if outcome is None:
            code = process.exitcode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with {code}"
            failures.append(f"{name} {how} before it finished")
            continue
        peaks[job.index] = max(peaks[job.index], float(outcome.get("peak_rss_gib", 0.0)))
        if "error" in outcome:
            if outcome.get("unreachable"):
                unreachable.append(outcome["error"])
            failures.append(f"{name}: {outcome['error']}")
            continue
        stages = outcome["reports"].items()
        reports.append({k: STAGE_REPORTS.get(k, StageReport).model_validate(v) for k, v in stages})
    if failures and len(unreachable) == len(failures):
        raise ServerUnreachable(unreachable[0])  # a managed server may be restarted and the round rerun
    if failures:  # the others finished their share: the run is incomplete, not wrong
        raise IncompleteRun(
            f"{failures[0]}"
            + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
            + "; what the workers stored is kept, rerun the same command to resume"
        )
    return reports


def _stop(processes: Sequence[Any]) -> None:
    """Stop the workers still running (Ctrl-C, an error in the parent): SIGTERM, then SIGKILL."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
