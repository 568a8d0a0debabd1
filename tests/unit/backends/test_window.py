"""`windowed`: jobs are made only when a slot frees, at most `window` are alive, an error ends the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from rlaif.backends.window import windowed


def test_at_most_window_jobs_exist_and_every_job_runs_once() -> None:
    made = alive = most = 0
    finished: list[int] = []

    async def job(i: int) -> int:
        nonlocal alive, most
        alive += 1
        most = max(most, alive)
        await asyncio.sleep(0.001 * (i % 3))
        alive -= 1
        return i

    def jobs() -> Iterator[object]:
        nonlocal made
        for i in range(500):
            made += 1
            assert made - len(finished) <= 8  # a job is made only when one has finished
            yield job(i)

    count = asyncio.run(windowed(jobs(), window=8, on_done=finished.append))  # type: ignore[arg-type]
    assert count == 500 and sorted(finished) == list(range(500))
    assert most == 8


def test_an_error_cancels_the_running_jobs_and_makes_no_more() -> None:
    made = 0
    cancelled = 0

    async def job(i: int) -> None:
        nonlocal cancelled
        if i == 3:
            raise ValueError("job 3 failed")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise

    def jobs() -> Iterator[object]:
        nonlocal made
        for i in range(1000):
            made += 1
            yield job(i)

    with pytest.raises(ValueError, match="job 3 failed"):
        asyncio.run(windowed(jobs(), window=16))  # type: ignore[arg-type]
    assert made == 16 and cancelled == 15


def test_a_backend_that_sends_in_waves_gets_a_wave_sized_window() -> None:
    """Ray Data starts its engines afresh for each wave of waiting requests: a window of 1,024 would
    make a 100k-prompt stage a hundred waves."""
    from rlaif.backends.ray_data import WAVE
    from rlaif.backends.window import WINDOW, window_for

    class Server:
        pass

    class Waves:
        window = WAVE

    assert window_for(Server()) == WINDOW and window_for(Waves()) == WAVE > 50 * WINDOW
