"""`with_restarts`: a managed server that died is restarted and the work rerun, within its allowance."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif.backends.serving import with_restarts
from rlaif.errors import ServerUnreachable


class FakeServer:
    def __init__(self, alive: bool = False):
        self._alive = alive
        self.restarts = 0
        self.port = 1
        self.log_path = Path("server.log")
        self.process = None

    def alive(self) -> bool:
        return self._alive

    def state(self) -> str:
        return "exited (code -9)"

    def restart(self) -> FakeServer:
        self.restarts += 1
        self._alive = True
        return self


def test_with_restarts_restarts_a_dead_server_and_reruns() -> None:
    server = FakeServer()
    calls: list[int] = []

    def work() -> str:
        calls.append(server.restarts)
        if not server.alive():
            raise ServerUnreachable("gone")
        return "done"

    assert with_restarts(work, {server: 2}) == ("done", 1)  # type: ignore[dict-item]
    assert calls == [0, 1]


def test_with_restarts_gives_up_after_the_allowed_restarts() -> None:
    server = FakeServer()

    def work() -> str:
        server._alive = False  # dies every time
        raise ServerUnreachable("gone again")

    with pytest.raises(ServerUnreachable, match="gone again"):
        with_restarts(work, {server: 2})  # type: ignore[dict-item]
    assert server.restarts == 2


def test_with_restarts_does_not_restart_a_live_or_external_server() -> None:
    live = FakeServer(alive=True)

    def work() -> str:
        raise ServerUnreachable("slow but alive")

    with pytest.raises(ServerUnreachable):
        with_restarts(work, {live: 3})  # type: ignore[dict-item]
    with pytest.raises(ServerUnreachable):
        with_restarts(work, {})  # an external server: nothing of ours to restart
    assert live.restarts == 0


def test_auto_dtype_is_float32_on_a_cpu_without_hardware_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlaif.backends import vllm_server

    monkeypatch.setattr(vllm_server, "_on_cpu", lambda: True)
    monkeypatch.setattr(vllm_server, "native_bf16", lambda: False)
    assert vllm_server.server_dtype("auto") == "float32"
    assert vllm_server.server_dtype("bfloat16") == "bfloat16"  # what a user asks for is kept
    monkeypatch.setattr(vllm_server, "native_bf16", lambda: True)
    assert vllm_server.server_dtype("auto") == "bfloat16"
    monkeypatch.setattr(vllm_server, "_on_cpu", lambda: False)
    assert vllm_server.server_dtype("auto") == "bfloat16"
    server = vllm_server.VLLMServer("/models/m", log_path=Path("/tmp/x.log"), cache_dir=Path("/tmp/c"))
    assert server.command()[server.command().index("--dtype") + 1] == "bfloat16"
