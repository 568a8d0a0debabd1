"""One torch thread for a test module's real training: on a 2-core machine shared with vLLM and other
jobs, two threads are several times slower. Import `one_thread` into a test module to use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
