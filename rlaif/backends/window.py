"""Bounded in-flight work: a job is made from its iterator only when a slot frees.

A stage of a million prompts must not become a million futures at once (each holds its request and
frame until it runs): `windowed` keeps at most `window` jobs alive, far more than any server's batch
(the backend's own semaphore bounds what is really sent), so the batch stays full while memory stays
flat.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["WINDOW", "window_for", "windowed"]

T = TypeVar("T")

WINDOW = 1024
"""Jobs alive at once: 16 times the default `max_concurrency`, so a slow job never starves the batch."""


def window_for(backend: object) -> int:
    """The window to use with `backend`: its own `window` attribute when it has one. Ray Data sends what
    is waiting as one batch job (a wave, with engines started afresh), so its window is a wave's size."""
    return int(getattr(backend, "window", WINDOW))


async def windowed(
    jobs: Iterable[Coroutine[Any, Any, T]],
    *,
    window: int = WINDOW,
    on_done: Callable[[T], None] | None = None,
) -> int:
    """Run `jobs` (a lazy iterable of coroutines) with at most `window` running; `on_done(result)` as
    each finishes. Returns how many ran. The first job to raise cancels the rest and its error is raised."""
    source = iter(jobs)
    running: set[asyncio.Future[T]] = {asyncio.ensure_future(job) for job in itertools.islice(source, window)}
    count = 0
    try:
        while running:
            finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            errors = [e for f in finished if not f.cancelled() and (e := f.exception()) is not None]
            if errors:
                raise errors[0]
            for future in finished:
                count += 1
                if on_done is not None:
                    on_done(future.result())
            for job in itertools.islice(source, len(finished)):
                running.add(asyncio.ensure_future(job))
    finally:
        # Coroutines are only pulled from `jobs` to be started at once, so none is left unawaited.
        for future in running:
            future.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return count
