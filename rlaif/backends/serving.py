"""The serving lifecycle: a managed vLLM server (or running servers, or Ray Data) for a model config,
restarts of a managed server that died, and the backend built from what was served.

Every command that generates text (the pipeline, evaluations, benchmarks, online RL) goes through
`served_backend` and `make_backend`, so a model config means the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlaif.backends.bundled import BUNDLED_NAME, cache_dir, ensure_model
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.vllm_server import VLLMServer
from rlaif.config import ModelConfig
from rlaif.errors import ServerUnreachable
from rlaif.store import RunDir

if TYPE_CHECKING:
    from rlaif.backends.ray_data import RayDataBackend

__all__ = ["make_backend", "model_label", "model_path", "served_backend", "with_restarts"]

R = TypeVar("R")
log = logging.getLogger(__name__)


def model_path(model: ModelConfig) -> Path | str:
    """The model folder to serve or train: the configured one, or the bundled model (converted once)."""
    return model.path if model.path else ensure_model()


@contextlib.contextmanager
def served_backend(
    model: ModelConfig,
    run: RunDir | Path,
    *,
    name: str = "policy",
    servers: dict[VLLMServer, int] | None = None,
    ray: bool = False,
    on_wait: Callable[[float | None, Path], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Start a managed vLLM server unless the config names running servers; always stop it.

    Yields the arguments for `make_backend` (call it inside the event loop). The server log goes to
    the run directory's `logs/`, or into `run` itself when it is a folder path. A managed server is
    added to `servers` with the restarts it is allowed (see `with_restarts`). With `ray`, a model
    whose config has a `ray` section gets Ray Data instead of a server.
    """
    api_key = os.environ.get(model.api_key_env)
    common = {
        "api_key": api_key,
        "max_concurrency": model.max_concurrency,
        "timeout": model.request_timeout,
        "connect_timeout": model.connect_timeout,
        "first_byte_timeout": model.first_byte_timeout,
        "first_byte_per_token": model.first_byte_per_token,
        "unreachable_after": model.unreachable_after,
    }
    if model.base_urls:
        yield {"base_urls": model.base_urls, "model": model.served_name, "label": model.served_name, **common}
        return
    path = model_path(model)
    label = BUNDLED_NAME if not model.path else str(model.path)
    if ray and model.ray is not None:
        yield {"ray": model.ray, "model_path": str(path), "label": label}
        return
    server = VLLMServer(
        path,
        log_path=run / f"vllm-{name}.log" if isinstance(run, Path) else run.layout.log(f"vllm-{name}.log"),
        cache_dir=cache_dir("vllm"),
        max_model_len=model.server.max_model_len,
        dtype=model.server.dtype,
        kv_cache_gb=model.server.kv_cache_gb,
        extra_args=model.server.extra_args,
        startup_timeout=model.server.startup_timeout,
        frozen_after=model.server.frozen_after,
        on_wait=on_wait,
    )
    with server:
        if servers is not None:
            servers[server] = model.server.max_restarts
        yield {
            "base_urls": [server.base_url], "model": server.served_name, "label": label,
            "alive": server.alive, **common,
        }  # fmt: skip
        if servers is not None:
            servers.pop(server, None)


def with_restarts(work: Callable[[], R], servers: dict[VLLMServer, int]) -> tuple[R, int]:
    """Run `work`; when it stops because a managed server died, restart that server and run it again.

    `servers` maps each managed server to the restarts it has left. The stages skip what is already
    stored, so running `work` again only redoes the requests that were in flight. Returns what
    `work` returned and how many restarts it took.
    """
    restarts = 0
    while True:
        try:
            return work(), restarts
        except ServerUnreachable:
            dead = [server for server in servers if not server.alive()]
            if not dead or any(servers[server] <= 0 for server in dead):
                raise
            for server in dead:
                servers[server] -= 1
                restarts += 1
                log.warning(
                    "the vLLM server on port %s %s; restarting it (%s restarts left), see %s",
                    server.port, server.state(), servers[server], server.log_path,
                )  # fmt: skip
                server.restart()


def model_label(model: ModelConfig) -> str | None:
    """How a model config is named in reports: the served name, the model folder, or the bundled model."""
    return model.served_name if model.base_urls else str(model.path or BUNDLED_NAME)


def make_backend(args: dict[str, Any], *, quiet: bool = False) -> OpenAIBackend | RayDataBackend:
    """The backend `served_backend` yielded the arguments of."""
    if "ray" in args:
        from rlaif.backends.ray_data import RayDataBackend

        return RayDataBackend(args["model_path"], label=args["label"], config=args["ray"], quiet=quiet)
    return OpenAIBackend(**args)
