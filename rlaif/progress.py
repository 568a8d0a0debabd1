"""Progress bars for stages, in one live display that stages running at the same time share.

rich allows one live display at a time, and the pipeline runs critique/revise and the judge together
(so the server's batch stays full), so each stage adds its bar to the display that is already up.
The display stops when the last stage using it ends, leaving its finished bars on the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.errors import LiveError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["RelayedBars", "quiet_libraries", "relay_bars", "server_spinner", "stage_progress"]

COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
_lock = threading.Lock()
_display: Progress | None = None
_users = 0
_relay: Any = None
"""In a worker of `rlaif run --workers N`: the queue its bars go to, drawn by the parent (`RelayedBars`)."""
RELAY_SECONDS = 0.2
"""A worker sends its bars' steps at most this often (a message per step would cost a request's CPU)."""


@contextlib.contextmanager
def stage_progress(
    description: str, total: int | None, *, quiet: bool = False
) -> Iterator[Callable[[], None]]:
    """A bar of `total` steps (unknown: None); yields the function that advances it by one."""
    global _display, _users
    if _relay is not None:
        with _relayed(_relay, description, total) as advance:
            yield advance
        return
    if quiet:
        yield lambda: None
        return
    with _lock:
        if _display is None:
            _display = Progress(*COLUMNS, transient=False)
            _display.start()
        _users += 1
        display = _display
        task = display.add_task(description, total=total)
    try:
        yield lambda: display.advance(task)
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                display.stop()
                _display = None


def relay_bars(queue: Any) -> None:
    """Send this process's bars to `queue` (anything with `put`) instead of drawing them: a worker's."""
    global _relay
    _relay = queue


@contextlib.contextmanager
def _relayed(queue: Any, description: str, total: int | None) -> Iterator[Callable[[], None]]:
    queue.put(("bar", description, total))
    steps, sent_at = 0, time.monotonic()

    def advance() -> None:
        nonlocal steps, sent_at
        steps += 1
        if time.monotonic() - sent_at >= RELAY_SECONDS:
            queue.put(("step", description, steps))
            steps, sent_at = 0, time.monotonic()

    try:
        yield advance
    finally:
        if steps:
            queue.put(("step", description, steps))


class RelayedBars:
    """The parent's bars of `rlaif run --workers N`: one per stage, its total and steps those of every
    worker together (each worker announces its share's total, then sends its steps)."""

    def __init__(self, *, quiet: bool = False):
        self._quiet = quiet
        self._display: Progress | None = None
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int | None] = {}

    def handle(self, message: tuple[str, str, int | None]) -> None:
        """Show one message a worker sent (`("bar", stage, total)` or `("step", stage, steps)`)."""
        if self._quiet:
            return
        kind, description, value = message
        if self._display is None:
            self._display = Progress(*COLUMNS, transient=False)
            self._display.start()
        if description not in self._tasks:
            self._tasks[description] = self._display.add_task(description, total=0)
            self._totals[description] = 0
        task = self._tasks[description]
        if kind == "bar":
            known = self._totals[description]
            self._totals[description] = None if value is None or known is None else known + value
            self._display.update(task, total=self._totals[description])
        else:
            self._display.advance(task, value or 0)

    def close(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None


def quiet_libraries() -> None:
    """`--quiet` means every bar, also those `datasets` draws while the export builds and saves its
    datasets. Process-wide, like the flag: `datasets` reads the variable when it is first imported."""
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        datasets.disable_progress_bars()
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"


def server_spinner(
    what: str, *, quiet: bool = False, console: Console | None = None
) -> Callable[[float | None, Path], None] | None:
    """The `on_wait` of a managed server: a spinner with the seconds waited and the log path while it
    starts (a 7B model takes minutes), gone once it is up. None when quiet or not on a terminal, where
    a spinner would only fill a log."""
    console = console or Console(stderr=True)
    if quiet or not console.is_terminal:
        return None
    status: list[Any] = []

    def update(elapsed: float | None, log_path: Path) -> None:
        if elapsed is None:
            if status:
                status.pop().stop()
            return
        text = f"starting {what}: {elapsed:.0f} s (log: {log_path})"
        if status:
            status[0].update(text)
        else:
            spinner = console.status(text)
            with contextlib.suppress(LiveError):  # stage bars are up (a restart mid-stage): they show it
                spinner.start()
                status.append(spinner)

    return update
