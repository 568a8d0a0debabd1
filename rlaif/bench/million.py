"""A large run through the pipeline on the zero-latency stub.

`python -m rlaif.bench.million PROMPTS WORKERS OUT [WORK_DIR]`:
respond only, one sample a prompt (judge and critique/revise off), so the run's cost is the client's
and the store's: `rlaif run --workers WORKERS` on PROMPTS prompts, timed, its peak RSS per process
(the parent's from `wait4`, each worker's from the manifest), then the same command again on the
finished run (resume: every id stored, nothing sent). `make million` runs it on a million prompts;
OUT/million.json gets the figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from rlaif.bench.scale import Stub, _machine_busy, _timed_run
from rlaif.bench.scale import _config as scale_config

__all__ = ["main", "run_million"]


RESPOND_ONLY: dict[str, object] = {
    "generation": {"samples_per_prompt": 1, "max_tokens": 128},
    "revise": {"enabled": False},
    "judge": {"enabled": False},
}
"""The million-prompt run's mix: one answer a prompt, nothing after it."""


def _config(folder: Path, base_url: str, prompts: int, workers: int) -> Path:
    return scale_config(folder, base_url, prompts, 64, workers, mix=RESPOND_ONLY)


def run_million(prompts: int, workers: int, work_dir: Path | None = None) -> dict[str, object]:
    """The figures of one respond-only run of `prompts` prompts with `workers` workers, and its resume."""
    stub = Stub()
    try:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="rlaif-million-") as tmp:
            folder = Path(tmp)
            config = _config(folder, stub.base_url, prompts, workers)
            busy, started = _machine_busy(), time.perf_counter()
            wall, cpu, peak_mib, code = _timed_run(config)
            busy = (_machine_busy() - busy) / (time.perf_counter() - started)
            sent = stub.count()
            run = folder / "run"
            summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
            manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
            generation = float(summary["seconds"]["generation"])
            peaks = [round(g * 1024, 1) for g in manifest.get("worker_peak_rss_gib") or ()]
            lines = (run / "responses.jsonl").read_bytes().count(b"\n")
            size = (run / "responses.jsonl").stat().st_size
            resume_wall, _, resume_peak_mib, resume_code = _timed_run(config)
            return {
                "prompts": prompts,
                "workers": workers,
                "exit_code": code,
                "requests": sent,
                "records": lines,
                "responses_bytes": size,
                "wall_seconds": round(wall, 1),
                "generation_seconds": round(generation, 1),
                "requests_per_second": round(sent / generation, 1),
                "client_cpu_ms_per_request": round(1000 * cpu / max(sent, 1), 3),
                "machine_busy_cores": round(busy, 2),
                "parent_peak_rss_mib": round(peak_mib, 1),
                "worker_peak_rss_mib": peaks,
                "resume_seconds": round(resume_wall, 1),
                "resume_requests": stub.count() - sent,
                "resume_peak_rss_mib": round(resume_peak_mib, 1),
                "resume_exit_code": resume_code,
            }
    finally:
        stub.stop()


def main(argv: list[str]) -> None:
    prompts, workers, out = int(argv[0]), int(argv[1]), Path(argv[2])
    found = run_million(prompts, workers, work_dir=Path(argv[3]) if len(argv) > 3 else None)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"million-{prompts}-w{workers}.json"
    path.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
