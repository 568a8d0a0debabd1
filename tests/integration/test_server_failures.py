"""Server failures: retries with backoff, a bounded wait for a server that stays down, a clear
message naming the URL, resume after it is back, and a managed server restarted when it dies.

The retry logic is exercised fast against a stdlib stub (tests/support/stub.py) that answers 500s,
drops connections, hangs or stops listening; the real-server tests cut a real vLLM server off
mid-run (a TCP proxy in front of the session server) and SIGKILL a managed server's process group.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.backends.vllm_server import VLLMServer
from rlaif.errors import BackendError, ServerUnreachable
from tests.support.chaos import (
    PROGRESS,
    ROOT,
    command,
    environment,
    files_containing,
    line_counts,
    run_cli,
    snapshot,
    stage_counts,
    write_config,
)
from tests.support.health import health_only
from tests.support.stub import QUESTION, StubServer, TcpProxy, chat

pytestmark = pytest.mark.chaos


# --- retry logic against the stub --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["error500", "drop"])
def test_failing_server_is_retried_with_backoff_until_it_recovers(mode: str) -> None:
    with StubServer() as stub:
        stub.failure, stub.failures_left = mode, 2  # type: ignore[assignment]
        results = chat({"base_urls": [stub.base_url], "model": stub.served_name, "unreachable_after": 30},
                       [ChatRequest(messages=QUESTION, seed=1)])  # fmt: skip
    assert results[0].error is None and results[0].texts[0].startswith("stub answer")
    assert [m for _, _, m in stub.requests] == [mode, mode, "ok"]
    attempts = [t for t, _, _ in stub.requests]
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert 0.5 <= gaps[0] < gaps[1] < 10, f"no backoff between attempts: {gaps}"


def test_server_that_stays_down_ends_after_unreachable_after_naming_the_url() -> None:
    stub = StubServer().start()
    stub.stop()  # nothing listens on its port any more
    started = time.monotonic()
    with pytest.raises(ServerUnreachable) as info:
        chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 3.0, "timeout": 2.0},
             [ChatRequest(messages=QUESTION)])  # fmt: skip
    elapsed = time.monotonic() - started
    assert 3.0 <= elapsed < 10.0, elapsed  # unreachable_after, plus slack for a loaded machine
    message = str(info.value)
    assert stub.base_url in message and "for 3 s" in message and "rerun to resume" in message
    assert "\n" not in message


def test_hanging_request_times_out_and_the_run_is_bounded() -> None:
    """A server that accepts and never answers: every attempt times out, and the whole call ends
    within unreachable_after plus one request timeout."""
    with StubServer() as stub:
        stub.mode = "hang"
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="APITimeoutError"):
            chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 2.0, "timeout": 1.0},
                 [ChatRequest(messages=QUESTION)])  # fmt: skip
        assert time.monotonic() - started < 2.0 + 1.0 + 5.0  # unreachable_after + one timeout + slack
        assert stub.count(mode="hang") >= 2  # it retried after the first timeout


def test_a_stuck_answer_ends_on_its_first_byte_timeout_and_the_message_says_how_long() -> None:
    """The total timeout is long (300 s) but the first byte of a 16-token answer is due within 1 s:
    the call gives up within unreachable_after plus that one timeout, and says how long it waited."""
    with StubServer() as stub:
        stub.mode = "hang"
        started = time.monotonic()
        with pytest.raises(ServerUnreachable) as info:
            chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 2.0, "timeout": 300,
                  "first_byte_timeout": 0.5, "first_byte_per_token": 1 / 32},
                 [ChatRequest(messages=QUESTION, max_tokens=16)])  # fmt: skip
        elapsed = time.monotonic() - started
    assert 3.0 <= elapsed < 2.0 + 1.0 + 3.0, elapsed  # unreachable_after + one first-byte timeout + slack
    shown = int(re.search(r"for (\d+) s", str(info.value)).group(1))  # type: ignore[union-attr]
    assert abs(shown - elapsed) < 1.5, (shown, elapsed)


def test_the_first_byte_timeout_grows_with_max_tokens_up_to_the_total() -> None:
    backend = OpenAIBackend(["http://127.0.0.1:9/v1"], "m", timeout=60, connect_timeout=2,
                            first_byte_timeout=10, first_byte_per_token=0.5)  # fmt: skip
    assert backend._attempt_seconds(ChatRequest(messages=QUESTION, max_tokens=1), None) == (10.5, 60)
    assert backend._attempt_seconds(ChatRequest(messages=QUESTION, max_tokens=40), None) == (30, 60)
    assert backend._attempt_seconds(ChatRequest(messages=QUESTION, max_tokens=512), None) == (60, 60)
    # Retrying with 5 s left before giving up: the attempt gets those 5 s, not its full timeouts.
    assert backend._attempt_seconds(ChatRequest(messages=QUESTION, max_tokens=40), 5.0) == (5.0, 5.0)
    # The last try gets only the time left, even under the time to connect (issue 31: it got a whole
    # connect timeout more, so a run gave up later than unreachable_after plus one timeout).
    assert backend._attempt_seconds(ChatRequest(messages=QUESTION, max_tokens=40), 0.1) == (0.1, 0.1)
    # Without a first-byte timeout the whole request may take `timeout` (the old behaviour).
    plain = OpenAIBackend(["http://127.0.0.1:9/v1"], "m", timeout=60)
    assert plain._attempt_seconds(ChatRequest(messages=QUESTION, max_tokens=512), None) == (60, 60)


def test_a_model_list_that_never_comes_is_one_bounded_line() -> None:
    with StubServer() as stub:
        stub.mode = "hang"
        started = time.monotonic()
        backend = OpenAIBackend([stub.base_url], first_byte_timeout=1.0)
        with pytest.raises(ServerUnreachable, match=r"no answer from .*/models within 1 s") as info:
            asyncio.run(backend.resolve_model())
        assert time.monotonic() - started < 5
    assert "\n" not in str(info.value)


def test_a_dead_replica_is_skipped_while_the_other_serves() -> None:
    with StubServer() as good, StubServer() as bad:
        bad.mode = "error500"
        requests = [ChatRequest(messages=QUESTION, seed=i) for i in range(12)]
        results = chat({"base_urls": [bad.base_url, good.base_url], "model": good.served_name,
                        "max_concurrency": 4, "unreachable_after": 30}, requests)  # fmt: skip
    assert all(r.error is None for r in results)
    assert good.count() == 12
    assert bad.count() < 6  # backed off after its first failures


def test_dead_managed_server_stops_retries_at_once() -> None:
    """With `alive` saying the managed server's process is gone, the first failure ends the call
    (the pipeline restarts the server) instead of waiting out unreachable_after."""
    stub = StubServer().start()
    stub.stop()
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match="has exited"):
        chat({"base_urls": [stub.base_url], "model": "m", "unreachable_after": 60, "alive": lambda: False},
             [ChatRequest(messages=QUESTION)])  # fmt: skip
    assert time.monotonic() - started < 5


class SleepingServer(VLLMServer):
    """A "server" that never becomes healthy, or exits at once."""

    def __init__(self, tmp_path: Path, script: str, **kwargs: Any):
        super().__init__("unused", log_path=tmp_path / "server.log", cache_dir=tmp_path / "cache", **kwargs)
        self.script = script

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]


HEALTH_ONLY = health_only()


class HealthOnlyServer(SleepingServer):
    """A "server" answering /health only, probed every 0.2 s."""

    probe_every = 0.2

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, str(self.port)]


def test_a_frozen_managed_server_is_found_by_its_health_check_and_killed(tmp_path: Path) -> None:
    """SIGSTOP the server: within frozen_after it is no longer alive, a request waiting on it ends at
    once (not after its 300 s timeout) with a line saying so, and stopping it kills it outright."""
    server = HealthOnlyServer(tmp_path, HEALTH_ONLY, startup_timeout=30, frozen_after=1.5).start()
    try:
        time.sleep(0.6)
        assert server.alive() and not server.frozen()
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="stopped answering its health check"):
            chat({"base_urls": [server.base_url], "model": "m", "timeout": 300, "alive": server.alive},
                 [ChatRequest(messages=QUESTION)])  # fmt: skip
        assert time.monotonic() - started < 1.5 + 2 + 3  # frozen_after + one watch period + slack
        assert not server.alive() and server.frozen()
        assert server.state().startswith("stopped answering its health check for ")
        stopping = time.monotonic()
        process = server.process
        server.stop()
        assert time.monotonic() - stopping < 5  # no 20 s wait for a SIGTERM a stopped process ignores
        assert process.poll() is not None
    finally:
        server.stop()


def test_managed_server_that_never_gets_ready_is_bounded(tmp_path: Path) -> None:
    server = SleepingServer(tmp_path, "import time; time.sleep(600)", startup_timeout=2)
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match="not ready after 2 s"):
        server.start()
    assert time.monotonic() - started < 10
    assert server.process is None  # stopped, not left running


def test_managed_server_that_exits_at_start_shows_its_log(tmp_path: Path) -> None:
    server = SleepingServer(tmp_path, "import sys; print('no model here'); sys.exit(3)", startup_timeout=30)
    with pytest.raises(BackendError, match="exited with code 3") as info:
        server.start()
    assert "no model here" in str(info.value)


# --- the pipeline through the CLI against the stub ---------------------------------------------


def test_cli_run_outage_ends_with_one_line_naming_the_url_then_resumes(tmp_path: Path) -> None:
    """The server goes away mid-run and stays away: the run ends after model.unreachable_after with
    exit 2 and one line naming the URL; the records made before are kept, and a rerun once the
    server is back completes without making any of them again."""
    with StubServer() as stub:
        stub.delay = 0.3  # slow enough to cut it off mid-stage
        config = write_config(
            tmp_path, run_dir=tmp_path / "run", base_url=stub.base_url, served_name=stub.served_name,
            model={"unreachable_after": 3, "request_timeout": 5},
        )  # fmt: skip
        run_dir = tmp_path / "run"
        process = subprocess.Popen(
            command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=environment(), cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while line_counts(run_dir)["responses"] < 3:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stub.stop()
        down_at = time.monotonic()
        stdout, stderr = process.communicate(timeout=120)
        waited = time.monotonic() - down_at
        assert process.returncode == 3, stdout + stderr  # a server failure, not a user mistake
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert stub.base_url in lines[0] and "for 3 s" in lines[0] and "rerun to resume" in lines[0]
        assert 3 <= waited < 3 + 5 + 10, waited  # unreachable_after + one request timeout + slack
        kept = snapshot(run_dir)
        assert 3 <= len(kept["responses"]) < 10

        stub.start()  # back on the same port
        served_before = stub.count()
        done = run_cli(config)
        assert done.returncode == 0, done.stderr
    final = snapshot(run_dir)
    assert set(kept["responses"]) <= set(final["responses"])
    counts = stage_counts(final)
    assert [counts[name] for name in PROGRESS] == [10, 10, 5, 5]
    new_responses = 10 - len(kept["responses"])
    # Both orders of each universal probe judged after the rerun (every prompt is probed here).
    new_probe_orders = 2 * (counts["probes"] - len(kept.get("probes", {})))
    assert counts["probes"] > 0
    # nothing stored was asked again
    assert stub.count() - served_before == new_responses + 20 + 10 + new_probe_orders


def test_cli_run_sends_the_key_but_never_stores_it(tmp_path: Path) -> None:
    """Against a server that requires the key: the run succeeds (the key was sent), and no file of
    the run directory holds it."""
    secret = "sk-stub-never-store-me-4f1c9a"
    with StubServer(api_key=secret) as stub:
        config = write_config(
            tmp_path, run_dir=tmp_path / "run", base_url=stub.base_url, served_name=stub.served_name,
            rounds=1, prompts=2, model={"api_key_env": "RLAIF_TEST_KEY"},
        )  # fmt: skip
        done = run_cli(config, env=environment(RLAIF_TEST_KEY=secret))
        assert done.returncode == 0, done.stderr
        other = write_config(
            tmp_path / "other", run_dir=tmp_path / "other" / "run", base_url=stub.base_url,
            served_name=stub.served_name, rounds=1, prompts=2, model={"api_key_env": "RLAIF_TEST_KEY"},
        )  # fmt: skip
        refused = run_cli(other, env=environment(RLAIF_TEST_KEY="wrong"))
    assert refused.returncode == 2 and "API key" in refused.stderr  # it really was checked
    assert secret not in done.stdout + done.stderr + refused.stdout + refused.stderr
    assert files_containing(tmp_path / "run", secret) == []


# --- real vLLM servers -------------------------------------------------------------------------


def test_real_server_outage_retries_stops_and_resumes(vllm_server: Any, tmp_path: Path) -> None:
    """A real vLLM server cut off mid-run (a TCP proxy stops forwarding and refuses connections):
    first for longer than unreachable_after (exit 2, URL named, records kept), then, on the rerun,
    for less (the requests retry and the run completes): every record once, none lost."""
    proxy = TcpProxy(vllm_server.port).start()
    try:
        config = write_config(
            tmp_path, run_dir=tmp_path / "run", base_url=proxy.base_url(),
            served_name=vllm_server.served_name, prompts=3, rounds=1,
            model={"unreachable_after": 8, "request_timeout": 120},
        )  # fmt: skip
        run_dir = tmp_path / "run"

        def start_and_cut(at_progress: int) -> subprocess.Popen[str]:
            process = subprocess.Popen(
                command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=environment(), cwd=ROOT,
            )  # fmt: skip
            deadline = time.monotonic() + 600
            while sum(line_counts(run_dir)[n] for n in PROGRESS) < at_progress:
                assert process.poll() is None, process.communicate()[1][-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.01)
            proxy.stop()
            return process

        first = start_and_cut(2)  # in respond; stays down
        _, stderr = first.communicate(timeout=300)
        assert first.returncode == 3, stderr[-3000:]
        assert proxy.base_url() in stderr and "for 8 s" in stderr and len(stderr.strip().splitlines()) == 1
        kept = snapshot(run_dir)

        proxy.start()
        second = start_and_cut(sum(len(kept[n]) for n in PROGRESS) + 3)  # mid-run again
        time.sleep(3)  # down for less than unreachable_after
        proxy.start()
        _, stderr = second.communicate(timeout=900)
        assert second.returncode == 0, stderr[-3000:]
    finally:
        proxy.stop()
    final = snapshot(run_dir)
    for name, records in kept.items():
        assert set(records) <= set(final[name])
    counts = stage_counts(final)
    assert [counts[name] for name in PROGRESS] == [6, 3, 3, 3]


def _managed_servers(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "vllm.entrypoints.openai.api_server" in " ".join(p.cmdline())]


def _processes_with(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if text in " ".join(process.cmdline()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.mark.slow  # its own managed server, started three times
@pytest.mark.timeout(450)  # 125 s on the 2-core machine
def test_managed_server_frozen_then_killed_mid_run_is_restarted_and_the_run_completes(tmp_path: Path) -> None:
    """SIGSTOP the managed vLLM server's whole process group mid-run: its health check goes quiet, the
    run kills and restarts it; then SIGKILL the restarted one: restarted again. The run finishes with
    every record once, on the same port, and the API key is in no file, log included."""
    secret = "sk-managed-never-store-me-77a0"
    config = write_config(
        tmp_path, run_dir=tmp_path / "run", base_url=None, served_name=None, prompts=3, rounds=1,
        model={"api_key_env": "RLAIF_TEST_KEY", "unreachable_after": 600,
               "server": {"kv_cache_gb": 1, "startup_timeout": 900, "max_restarts": 2, "frozen_after": 10}},
    )  # fmt: skip
    run_dir = tmp_path / "run"
    log_path = run_dir / "logs" / "vllm-policy.log"
    process = subprocess.Popen(
        command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(RLAIF_TEST_KEY=secret), cwd=ROOT, start_new_session=True,
    )  # fmt: skip

    def wait_for(done: Any, what: str) -> None:
        deadline = time.monotonic() + 900
        while not done():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def startups() -> int:
        return log_path.read_text(errors="replace").count("Application startup complete")

    try:
        wait_for(lambda: line_counts(run_dir)["responses"] >= 2, "the managed server never answered")
        (server,) = _managed_servers(process.pid)
        command_line = server.cmdline()
        served_name = command_line[command_line.index("--served-model-name") + 1]
        frozen_at = time.monotonic()
        os.killpg(server.pid, signal.SIGSTOP)  # its own session: the group holds the engine processes too
        wait_for(lambda: startups() == 2, "the frozen server was never restarted")
        assert time.monotonic() - frozen_at < 10 + 15 + 120  # frozen_after + probes + a start-up
        stored = sum(line_counts(run_dir).values())
        wait_for(lambda: sum(line_counts(run_dir).values()) > stored, "no progress after the restart")
        (server,) = _managed_servers(process.pid)
        victims = [server, *server.children(recursive=True)]
        os.killpg(server.pid, signal.SIGKILL)  # mid-stage: the run is storing records again
        gone, alive = psutil.wait_procs(victims, timeout=30)
        assert not alive
        stdout, stderr = process.communicate(timeout=1200)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == 0, (stdout + stderr)[-3000:]
    assert "stopped answering its health check" in stderr and "exited (code" in stderr, stderr[-3000:]
    assert stderr.count("restarting it") == 2 and "managed server restarts" in stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["server_restarts"] == 2
    counts = stage_counts(snapshot(run_dir))
    assert [counts[name] for name in PROGRESS] == [6, 3, 3, 3]
    assert startups() == 3
    assert log_path.read_text(errors="replace").count(served_name) >= 3  # restarts keep the name and port
    assert _processes_with(served_name) == []  # the restarted server was stopped at the end too
    assert files_containing(run_dir, secret) == []
