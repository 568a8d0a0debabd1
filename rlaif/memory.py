"""Peak memory: of this process and everything it started (the vLLM server included), sampled; and the
kernel's peak RSS of one process (`peak_rss_gib`)."""

from __future__ import annotations

import resource
import threading

import psutil

__all__ = ["PeakMemory", "peak_rss_gib"]


def peak_rss_gib(usage: resource.struct_rusage | None = None) -> float:
    """The peak RSS (`ru_maxrss`, kilobytes on Linux) in GiB: of this process, or of the finished child
    whose `os.wait4` usage is given. Children are not counted: `PeakMemory` sums a process tree."""
    usage = usage or resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss / 2**20


class PeakMemory:
    """Context manager sampling the RSS of this process tree; `peak_bytes` is the highest total seen."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rlaif-peak-memory")

    def sample(self) -> int:
        root = psutil.Process()
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 2**30

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
