"""`model:` (and a judge's own `judge.model:`): which model generates, where it is served, a managed
server's settings, or Ray Data instead of a server."""

from __future__ import annotations

import urllib.parse
from typing import Any

from pydantic import Field, field_validator, model_validator

from rlaif.config.base import Section

__all__ = ["ModelConfig", "RayConfig", "ServerConfig"]


class ServerConfig(Section):
    """How a managed local vLLM server is started."""

    max_model_len: int = Field(default=2048, ge=256)
    """Context length of the server."""
    dtype: str = "auto"
    """Weights dtype (`--dtype`): `auto` is bfloat16 on a GPU and on a CPU with hardware bf16, float32
    on other CPUs (where bf16 is emulated: 5–6 times slower, and it rounds judge log-probs into ties)."""
    kv_cache_gb: int = Field(default=2, ge=1)
    """KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE)."""
    startup_timeout: float = Field(default=600.0, gt=0)
    """Seconds to wait for the server to become healthy."""
    extra_args: list[str] = []
    """More `vllm serve` arguments."""
    max_restarts: int = Field(default=3, ge=0)
    """Restarts of a managed server that dies or freezes mid-run; the run goes on from its stored records."""
    frozen_after: float = Field(default=60.0, gt=0)
    """Seconds without an answer to the health check (probed every 5 s) after which a running
    managed server counts as frozen: it is killed and restarted like one that died."""


class RayConfig(Section):
    """Generation as Ray Data batch jobs on vLLM engines (`ray.data.llm`) instead of a server.

    Needs `pip install 'rlaif-toolkit[ray]'`. Used by the pipeline's respond, revise and judge stages;
    commands that judge on the side (evaluate, win rate, online RL) still start a server.
    """

    address: str | None = None
    """Ray cluster to join (e.g. "auto" on a cluster node); None starts a local Ray."""
    num_cpus: int | None = None
    """Logical CPUs of a local Ray (each Ray Data stage holds one; the default is the machine's)."""
    replicas: int = Field(default=1, ge=1)
    """vLLM engine replicas (one per GPU, typically)."""
    batch_size: int = Field(default=64, ge=1)
    """Rows per batch sent to an engine."""
    resources_per_replica: dict[str, float] | None = None
    """Ray resources one engine holds; None: {GPU: 1, CPU: 1} when CUDA is present, else {CPU: 1}."""
    engine_kwargs: dict[str, Any] = {}
    """More vLLM engine arguments (e.g. tensor_parallel_size, max_model_len, dtype)."""
    kv_cache_gb: int = Field(default=2, ge=1)
    """KV cache size of a CPU engine (VLLM_CPU_KVCACHE_SPACE)."""
    gather_seconds: float = Field(default=0.2, gt=0)
    """A wave starts once no new request has come for this long."""


class ModelConfig(Section):
    """Which model generates, and where it is served."""

    path: str | None = None
    """Hugging Face model folder or hub id; None means the bundled SmolLM2-135M-Instruct."""
    base_urls: list[str] = []
    """Running OpenAI-compatible servers (e.g. `http://host:8000/v1`); empty starts a managed server."""
    served_name: str | None = None
    """Model name on those servers; None asks the first server."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the servers' API key (the key itself never goes in a file)."""
    max_concurrency: int = Field(default=64, ge=1)
    """Most requests in flight; keeps vLLM's batch full."""
    request_timeout: float = Field(default=300.0, gt=0)
    """Seconds one request may take in all."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to open a connection to a server."""
    first_byte_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for the first byte of a one-token answer (answers are not streamed, so it comes
    when the answer is complete); each token of the request's max_tokens adds `first_byte_per_token`.
    Capped at request_timeout. Generous, because a request may queue behind a full batch."""
    first_byte_per_token: float = Field(default=0.25, ge=0)
    """Seconds added to first_byte_timeout per token of max_tokens."""
    unreachable_after: float = Field(default=60.0, gt=0)
    """Seconds of failure on every server before the run stops (a rerun resumes)."""
    workers: int = Field(default=1, ge=1)
    """Client processes that generate together on one run directory (`rlaif run --workers N`): the
    prompts are split among them by id, each keeps `max_concurrency` requests in flight, and the
    export is the one a single process makes. One Python client spends about 2 ms of CPU a request;
    see the Scale guide for how many a GPU node needs. More workers than prompts run one per prompt."""
    server: ServerConfig = ServerConfig()
    """Managed server settings."""
    ray: RayConfig | None = None
    """When set, the pipeline generates through Ray Data instead of a server (see `RayConfig`)."""

    @model_validator(mode="after")
    def _one_engine(self) -> ModelConfig:
        if self.ray is not None and self.base_urls:
            raise ValueError("set either base_urls (running servers) or ray (Ray Data batch jobs), not both")
        if self.ray is not None and self.workers > 1:
            raise ValueError(
                "workers > 1 splits the prompts among client processes of one server; Ray Data schedules "
                "its own engines: set workers to 1 or remove ray"
            )
        return self

    @field_validator("base_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")) or len(url.split()) != 1:
                raise ValueError(f"{url!r} is not an http(s) URL; write it like http://127.0.0.1:8000/v1")
            # Parsed in full here: a port over 65535 or a missing host crashed the run's first request.
            parts = urllib.parse.urlsplit(url)
            try:
                parts.port  # noqa: B018 - reading it checks the range
            except ValueError:
                raise ValueError(
                    f"{url!r} has a port that is not a number from 1 to 65535; "
                    "write it like http://127.0.0.1:8000/v1"
                ) from None
            if not parts.hostname or parts.port == 0:
                what = "no host" if not parts.hostname else "port 0"
                raise ValueError(f"{url!r} has {what}; write it like http://127.0.0.1:8000/v1")
        return urls
