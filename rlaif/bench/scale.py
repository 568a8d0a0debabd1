"""`rlaif bench-scale`: the client's own cost at growing prompt counts, against a zero-latency server.

On a GPU, vLLM answers short requests in the thousands per second, so the client sets the pace of a
large run. This benchmark takes the server out of the picture: a stub that answers at once
(`rlaif.bench.stub_server`, its own process) serves, for each prompt count in the same run,
(a) the raw ceiling: the `openai` async client alone sending the pipeline's request mix (per prompt,
4 chat and 2 one-token judge requests) at the same concurrency, and (b) `rlaif run` as a user runs it
(2 samples, one critique/revise round, judging in both orders, export, no training), then the same
command again on the finished run (resume: every id stored, nothing sent). The ratio of (b) to (a)
is the share of the client's ceiling the pipeline reaches; peak RSS against prompt count says what a
prompt costs in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from rlaif.backends.vllm_server import free_port
from rlaif.bench.reports import ScaleBench, ScalePoint, ServersPoint, WorkersPoint
from rlaif.errors import BackendError
from rlaif.memory import peak_rss_gib

__all__ = ["markdown", "plot", "plot_workers", "run_scale_bench"]

CHATS_PER_PROMPT = 4
JUDGES_PER_PROMPT = 2
RAW_PROMPTS = 10_000
"""The raw ceiling is measured on at most this many prompts' requests (60,000): the raw client holds
nothing per request, so its rate does not change with the size of the set, and timing 600,000 of them
for the 100k point would double the benchmark's time for the same number."""
STAGES = ("responses", "revision_steps", "revisions", "judgments", "pairs")


class Stub:
    """The stub server in its own process (so its CPU is not the client's)."""

    def __init__(self) -> None:
        self.port = free_port()
        # Its output goes to a file, not a pipe nobody reads while it runs (a full pipe would stall it).
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rlaif.bench.stub_server", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendError(f"the stub server exited: {_tail(self.log)}")
            try:
                self.count()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise BackendError("the stub server did not start within 60 s")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count(self) -> int:
        """Chat requests answered so far."""
        return int(httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()["requests"])

    def cpu_seconds(self) -> float:
        """CPU time the stub process has used (user and system)."""
        return _process_cpu(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """CPU seconds every process of the machine has used since boot (all of /proc/stat but idle, iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _tail(log: Any, size: int = 800) -> str:
    """The last `size` characters written to a temporary log file."""
    log.flush()
    log.seek(0)
    return str(log.read().decode(errors="replace")[-size:])


def _raw_requests(prompts: int) -> Iterator[dict[str, Any]]:
    """The pipeline's request mix, as `openai` keyword arguments."""
    for i in range(prompts):
        messages = [{"role": "system", "content": "Answer helpfully."},
                    {"role": "user", "content": _question(i)}]  # fmt: skip
        for k in range(CHATS_PER_PROMPT):
            yield {"messages": messages, "max_tokens": 128, "temperature": 0.7, "seed": i * 10 + k}
        for k in range(JUDGES_PER_PROMPT):
            yield {
                "messages": messages, "max_tokens": 1, "temperature": 0.0, "seed": i * 10 + 5 + k,
                "logprobs": True, "top_logprobs": 5,
                "extra_body": {"structured_outputs": {"choice": ["A", "B"]}},
            }  # fmt: skip


def _question(i: int) -> str:
    return f"Question {i}: how do I keep a small garden healthy through a dry summer?"


async def _raw(base_url: str, prompts: int, concurrency: int) -> tuple[int, float, float]:
    """(requests, wall seconds, CPU seconds) of the raw client: `concurrency` workers over the mix."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=60)
    requests = _raw_requests(prompts)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        for arguments in requests:  # one shared iterator: each request is taken once
            await client.chat.completions.create(model="stub", **arguments)
            sent += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await client.close()
    return sent, wall, cpu


FULL_MIX: dict[str, Any] = {
    "generation": {"samples_per_prompt": 2, "max_tokens": 128},
    "revise": {"rounds": 1},
    "judge": {"both_orders": True},
}
"""The stages `bench-scale` runs: two answers, one revision round, the judge in both orders."""


def _config(
    folder: Path, base_url: str | Sequence[str], prompts: int, concurrency: int, workers: int = 1,
    mix: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    prompt_file = folder / "prompts.jsonl"
    with open(prompt_file, "w", encoding="utf-8") as handle:
        for i in range(prompts):
            handle.write(json.dumps({"id": f"q{i}", "prompt": _question(i)}) + "\n")
    config = {
        "run_dir": str(folder / "run"),
        "prompts": {"path": str(prompt_file)},
        "model": {
            "base_urls": [base_url] if isinstance(base_url, str) else list(base_url),
            "served_name": "stub",
            "max_concurrency": concurrency,
            "workers": workers,
        },
        **(FULL_MIX if mix is None else mix),
        "train": {"dpo": {"enabled": False}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _timed_run(config: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB, exit code) of one `rlaif run CONFIG --quiet` process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: nobody reads it until the run ends
        process = subprocess.Popen(
            [sys.executable, "-m", "rlaif.cli", "run", str(config), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output = _tail(log)
    if process.returncode not in (0, 1, 2):
        raise BackendError(f"rlaif run failed (exit {process.returncode}): {output}")
    peak_mib = peak_rss_gib(usage) * 1024
    return wall, usage.ru_utime + usage.ru_stime, peak_mib, process.returncode


def measure(stub: Stub, prompts: int, concurrency: int, folder: Path) -> ScalePoint:
    """One prompt count: the raw client, the pipeline, then the pipeline resuming its finished run."""
    raw_sent, raw_wall, raw_cpu = asyncio.run(_raw(stub.base_url, min(prompts, RAW_PROMPTS), concurrency))
    config = _config(folder, stub.base_url, prompts, concurrency)
    before = stub.count()
    _, cpu, peak_mib, _ = _timed_run(config)
    sent = stub.count() - before
    summary = json.loads((folder / "run" / "summary.json").read_text(encoding="utf-8"))
    generation = float(summary["seconds"]["generation"])
    before = stub.count()
    resume_wall, _, _, _ = _timed_run(config)
    return ScalePoint(
        prompts=prompts,
        raw_requests=raw_sent,
        raw_requests_per_second=round(raw_sent / raw_wall, 1),
        raw_cpu_ms_per_request=round(1000 * raw_cpu / raw_sent, 3),
        pipeline_requests=sent,
        pipeline_seconds=round(generation, 2),
        pipeline_requests_per_second=round(sent / generation, 1),
        ratio_to_raw=round((sent / generation) / (raw_sent / raw_wall), 3),
        pipeline_cpu_ms_per_request=round(1000 * cpu / max(sent, 1), 3),
        peak_rss_mib=round(peak_mib, 1),
        resume_seconds=round(resume_wall, 2),
        resume_requests=stub.count() - before,
        resume_share=round(resume_wall / generation, 3),
        records=sum(_lines(folder / "run" / f"{name}.jsonl") for name in STAGES),
    )


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def measure_servers(count: int, prompts: int, concurrency: int, folder: Path) -> ServersPoint:
    """`rlaif run` on `prompts` prompts against `count` stub servers, `concurrency` in flight per server."""
    stubs: list[Stub] = []
    try:
        for _ in range(count):
            stubs.append(Stub())
        config = _config(folder, [s.base_url for s in stubs], prompts, concurrency * count)
        wall, cpu, _, _ = _timed_run(config)
        sent = sum(s.count() for s in stubs)
    finally:
        for stub in stubs:
            stub.stop()
    summary = json.loads((folder / "run" / "summary.json").read_text(encoding="utf-8"))
    generation = float(summary["seconds"]["generation"])
    return ServersPoint(
        servers=count,
        prompts=prompts,
        requests=sent,
        requests_per_second=round(sent / generation, 1),
        cpu_ms_per_request=round(1000 * cpu / max(sent, 1), 3),
        client_cores=round(cpu / wall, 2),
    )


def measure_workers(stub: Stub, count: int, prompts: int, concurrency: int, folder: Path) -> WorkersPoint:
    """`rlaif run --workers count` on `prompts` prompts against one stub, `concurrency` per worker."""
    config = _config(folder, stub.base_url, prompts, concurrency, workers=count)
    before, stub_cpu, busy = stub.count(), stub.cpu_seconds(), _machine_busy()
    wall, cpu, peak_mib, _ = _timed_run(config)
    busy, stub_cpu = _machine_busy() - busy, stub.cpu_seconds() - stub_cpu
    sent = stub.count() - before
    run = folder / "run"
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    generation = float(summary["seconds"]["generation"])
    return WorkersPoint(
        workers=count,
        prompts=prompts,
        requests=sent,
        requests_per_second=round(sent / generation, 1),
        cpu_ms_per_request=round(1000 * cpu / max(sent, 1), 3),
        client_cores=round(cpu / wall, 2),
        stub_cpu_ms_per_request=round(1000 * stub_cpu / max(sent, 1), 3),
        stub_cores=round(stub_cpu / wall, 2),
        machine_busy_cores=round(busy / wall, 2),
        worker_peak_rss_mib=[round(g * 1024, 1) for g in manifest.get("worker_peak_rss_gib") or []],
        peak_rss_mib=round(peak_mib, 1),
    )


def run_scale_bench(
    sizes: Sequence[int],
    *,
    concurrency: int = 64,
    servers: Sequence[int] = (),
    servers_prompts: int = 2000,
    workers: Sequence[int] = (),
    workers_prompts: int = 2000,
    work_dir: Path | None = None,
    progress: Callable[[ScalePoint | ServersPoint | WorkersPoint], None] | None = None,
) -> ScaleBench:
    """Measure every prompt count in `sizes` against one stub server, then `servers_prompts` prompts
    against each count of stub servers in `servers`, then `workers_prompts` prompts with each count of
    client processes in `workers` against one stub; `progress` gets each point."""
    report = ScaleBench(concurrency=concurrency, cpus=os.cpu_count(), platform=platform.platform())
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        if sizes:
            stub = Stub()
            try:
                for prompts in sizes:
                    point = measure(stub, prompts, concurrency, Path(tmp) / f"p{prompts}")
                    report.points.append(point)
                    if progress is not None:
                        progress(point)
            finally:
                stub.stop()
        for count in servers:
            found = measure_servers(count, servers_prompts, concurrency, Path(tmp) / f"s{count}")
            report.servers.append(found)
            if progress is not None:
                progress(found)
        if workers:
            stub = Stub()
            try:
                for count in workers:
                    made = measure_workers(stub, count, workers_prompts, concurrency, Path(tmp) / f"w{count}")
                    report.workers.append(made)
                    if progress is not None:
                        progress(made)
            finally:
                stub.stop()
    if len(report.points) >= 2:
        first, last = report.points[0], report.points[-1]
        slope = (last.peak_rss_mib - first.peak_rss_mib) * 2**20 / (last.prompts - first.prompts)
        report.rss_bytes_per_prompt = round(slope, 1)
        if first.records is not None and last.records is not None and last.records > first.records:
            per_record = (last.peak_rss_mib - first.peak_rss_mib) * 2**20 / (last.records - first.records)
            report.rss_bytes_per_record = round(per_record, 1)
    return report


def markdown(report: ScaleBench) -> str:
    """The report as markdown tables."""
    lines = [f"Zero-latency stub, concurrency {report.concurrency}, {report.cpus} CPUs ({report.platform})."]
    if report.points:
        lines += [
            "",
            "| prompts | raw client req/s | pipeline req/s | ratio | client CPU ms/req (raw, pipeline) "
            "| peak RSS MiB | resume s (requests, share of generating) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for p in report.points:
        lines.append(
            f"| {p.prompts:,} | {p.raw_requests_per_second:,.0f} | {p.pipeline_requests_per_second:,.0f} "
            f"| {p.ratio_to_raw:.2f} | {p.raw_cpu_ms_per_request:.2f}, {p.pipeline_cpu_ms_per_request:.2f} "
            f"| {p.peak_rss_mib:,.0f} "
            f"| {p.resume_seconds:.1f} ({p.resume_requests}, {_share(p.resume_share)}) |"
        )
    if report.rss_bytes_per_prompt is not None:
        lines += ["", f"Peak RSS grows by {report.rss_bytes_per_prompt:,.0f} bytes per prompt"]
        if report.rss_bytes_per_record is not None:
            lines[-1] += f" ({report.rss_bytes_per_record:,.0f} bytes per stored record)"
        lines[-1] += "."
    if report.points:
        lines += ["", f"The raw ceiling is timed on the requests of at most {RAW_PROMPTS:,} prompts."]
    if report.servers:
        lines += [
            "",
            f"`rlaif run` on {report.servers[0].prompts:,} prompts against N stub servers "
            f"(concurrency {report.concurrency} per server):",
            "",
            "| servers | requests/s | client CPU ms/request | client cores busy "
            "| requests/s per client core |",
            "|---:|---:|---:|---:|---:|",
        ]
        for p in report.servers:
            lines.append(
                f"| {p.servers} | {p.requests_per_second:,.0f} | {p.cpu_ms_per_request:.2f} "
                f"| {p.client_cores:.2f} | {1000 / p.cpu_ms_per_request:,.0f} |"
            )
    if report.workers:
        lines += ["", *workers_markdown(report)]
    return "\n".join(lines)


def workers_markdown(report: ScaleBench) -> list[str]:
    """The `--workers` points as a markdown table, with the share of one worker's CPU per request."""
    base = report.workers[0]
    lines = [
        f"`rlaif run --workers N` on {base.prompts:,} prompts against one stub server "
        f"(concurrency {report.concurrency} per worker):",
        "",
        "| workers | requests/s | client CPU ms/request (vs first) | client cores | stub CPU ms/request "
        "| stub cores | machine cores busy | worker peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report.workers:
        change = p.cpu_ms_per_request / base.cpu_ms_per_request - 1
        peaks = ", ".join(f"{m:,.0f}" for m in p.worker_peak_rss_mib) or f"{p.peak_rss_mib:,.0f}"
        lines.append(
            f"| {p.workers} | {p.requests_per_second:,.0f} | {p.cpu_ms_per_request:.2f} ({change:+.0%}) "
            f"| {p.client_cores:.2f} | {p.stub_cpu_ms_per_request:.2f} | {p.stub_cores:.2f} "
            f"| {p.machine_busy_cores:.2f} | {peaks} |"
        )
    return lines


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def plot(report: ScaleBench, path: Path) -> Path:
    """Requests/s (raw and pipeline) and peak RSS against prompt count, as a PNG."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()

    sizes = [p.prompts for p in report.points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(sizes, [p.raw_requests_per_second for p in report.points], "o-", label="raw openai client")
    left.plot(sizes, [p.pipeline_requests_per_second for p in report.points], "s-", label="rlaif run")
    left.set(
        xscale="log", xlabel="prompts", ylabel="requests/s", title="Throughput against a zero-latency server"
    )
    left.set_ylim(bottom=0)
    left.legend()
    right.plot(sizes, [p.peak_rss_mib for p in report.points], "o-", color="tab:red")
    right.set(xscale="log", xlabel="prompts", ylabel="MiB", title="Peak RSS of rlaif run")
    right.set_ylim(bottom=0)
    figure.tight_layout()
    return save_png(figure, path, dpi=120)


def plot_workers(report: ScaleBench, path: Path) -> Path:
    """Requests/s and cores busy (client, stub, the whole machine) against worker count, as a PNG."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()
    counts = [p.workers for p in report.workers]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(counts, [p.requests_per_second for p in report.workers], "o-")
    left.set(xlabel="workers", ylabel="requests/s", title="rlaif run --workers N, zero-latency stub")
    left.set_xticks(counts)
    left.set_ylim(bottom=0)
    right.plot(counts, [p.client_cores for p in report.workers], "o-", label="client (all workers)")
    right.plot(counts, [p.stub_cores for p in report.workers], "s-", label="stub server")
    right.plot(counts, [p.machine_busy_cores for p in report.workers], "^--", label="whole machine")
    right.axhline(report.cpus or 0, color="grey", linewidth=0.8)
    right.set(xlabel="workers", ylabel="cores busy", title=f"CPU ({report.cpus} cores)")
    right.set_xticks(counts)
    right.set_ylim(bottom=0)
    right.legend()
    figure.tight_layout()
    return save_png(figure, path, dpi=120)
