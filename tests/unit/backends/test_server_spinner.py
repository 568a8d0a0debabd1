"""A managed server's start-up is shown: the server reports the seconds waited and its log path while
it starts, and the spinner draws them on a terminal (never in a log, never with --quiet)."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from rich.console import Console

from rlaif.backends.vllm_server import VLLMServer
from rlaif.progress import server_spinner
from tests.support.health import health_only

SLOW_HEALTH = health_only(delay=1.2)  # a model loading


class SlowServer(VLLMServer):
    def command(self) -> list[str]:
        return [sys.executable, "-c", SLOW_HEALTH, str(self.port)]


def test_the_server_reports_its_wait_then_that_it_is_up(tmp_path: Path) -> None:
    calls: list[tuple[float | None, Path]] = []
    log = tmp_path / "server.log"
    server = SlowServer(
        "unused", log_path=log, cache_dir=tmp_path / "c", startup_timeout=30,
        on_wait=lambda elapsed, path: calls.append((elapsed, path)),
    )  # fmt: skip
    with server:
        waited = [elapsed for elapsed, _ in calls[:-1]]
        assert len(waited) >= 2 and waited == sorted(waited) and waited[-1] >= 1.0
        assert calls[-1] == (None, log) and all(path == log for _, path in calls)


def test_the_spinner_shows_the_seconds_and_the_log_on_a_terminal_and_goes() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    spin = server_spinner("the vLLM server", console=console)
    assert spin is not None
    spin(3.2, Path("/runs/x/logs/vllm-policy.log"))
    time.sleep(0.3)  # the status redraws on its own thread
    spin(None, Path("/runs/x/logs/vllm-policy.log"))
    assert "starting the vLLM server: 3 s (log: /runs/x/logs/vllm-policy.log)" in out.getvalue()
    spin(None, Path("unused"))  # a second "ready" (a restart's) is harmless


def test_no_spinner_when_quiet_or_not_on_a_terminal() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert server_spinner("x", quiet=True, console=terminal) is None
    assert server_spinner("x", console=Console(file=io.StringIO(), force_terminal=False)) is None
