"""Run configuration: one YAML file, validated when loaded.

Input paths (constitution, prompts) are resolved against the config file's folder; `run_dir` is
resolved against the current directory. TRL settings pass through to TRL's own config classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlaif.errors import ConfigError

__all__ = [
    "DPOSection",
    "GenerationConfig",
    "JudgeConfig",
    "ModelConfig",
    "PromptsConfig",
    "ReviseConfig",
    "RunConfig",
    "ServerConfig",
    "TrainConfig",
    "load_config",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ServerConfig(Section):
    """How a managed local vLLM server is started."""

    max_model_len: int = Field(default=2048, ge=256)
    """Context length of the server."""
    dtype: str = "bfloat16"
    """Weights dtype."""
    kv_cache_gb: int = Field(default=2, ge=1)
    """KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE)."""
    startup_timeout: float = Field(default=600.0, gt=0)
    """Seconds to wait for the server to become healthy."""
    extra_args: list[str] = []
    """More `vllm serve` arguments."""


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
    """Seconds one request may take."""
    unreachable_after: float = Field(default=60.0, gt=0)
    """Seconds of failure on every server before the run stops (a rerun resumes)."""
    server: ServerConfig = ServerConfig()
    """Managed server settings."""


class PromptsConfig(Section):
    """The prompt set."""

    path: str
    """JSONL file: rows with `messages`, `prompt`, or hh-rlhf `chosen` transcripts."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N prompts."""


class GenerationConfig(Section):
    """Sampling for first answers."""

    samples_per_prompt: int = Field(default=2, ge=1)
    """Answers per prompt; sample 0 is revised, samples 0 and 1 are judged."""
    max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)


class ReviseConfig(Section):
    """Critique-and-revise loop."""

    enabled: bool = True
    rounds: int = Field(default=2, ge=1, le=16)
    """Critique/revision rounds per prompt."""
    max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    few_shot: int = Field(default=1, ge=0)
    """How many of the constitution's examples to show before each conversation."""


class JudgeConfig(Section):
    """The AI judge."""

    enabled: bool = True
    both_orders: bool = True
    """Judge A/B and B/A and average: removes position bias from the soft label."""
    principles_per_judgment: int = Field(default=1, ge=1)
    """Principles asked about in one verdict."""
    inconsistent: Literal["keep", "drop"] = "keep"
    """What to do with pairs whose two orders disagree."""
    min_confidence: float = Field(default=0.5, ge=0.5, le=1.0)
    """Emit a pair only when P(chosen) is at least this."""
    model: ModelConfig | None = None
    """A different judge model or server; None uses the policy's."""


class DPOSection(Section):
    """DPO training; `args` go to TRL's DPOConfig unchanged."""

    enabled: bool = True
    sources: list[Literal["judge", "revision"]] = ["judge", "revision"]
    """Which pairs to train on."""
    args: dict[str, Any] = {}
    """TRL `DPOConfig` keyword arguments (max_steps, beta, loss_type, learning_rate, ...)."""


class TrainConfig(Section):
    dpo: DPOSection = DPOSection()


class RunConfig(Section):
    """A whole pipeline run."""

    run_dir: str = "runs/default"
    """Where everything is written."""
    constitution: str = "harmless"
    """A constitution file, or a shipped name (`harmless`, `helpful-honest`)."""
    prompts: PromptsConfig
    seed: int = 0
    """Root of every per-request seed and principle draw."""
    model: ModelConfig = ModelConfig()
    generation: GenerationConfig = GenerationConfig()
    revise: ReviseConfig = ReviseConfig()
    judge: JudgeConfig = JudgeConfig()
    train: TrainConfig = TrainConfig()
    base_dir: str = Field(default=".", exclude=True)
    """Folder relative input paths are resolved against (the config file's folder)."""

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run config; errors name the file, line and field."""
    from rlaif.yamlfile import describe_error, load_yaml

    path = Path(path)
    data, locate = load_yaml(path, ConfigError, what="config")
    overrides = overrides or {}
    for key, value in overrides.items():
        try:
            _set_dotted(data, key, value)
        except (AttributeError, TypeError):
            raise ConfigError(
                f"{path}: cannot apply the override {key}={value!r}: a part of {key} is not a section; "
                "check the dotted name"
            ) from None

    def line(loc: tuple[Any, ...]) -> int | None:
        # An overridden value is not in the file: pointing at a line there would mislead.
        dotted = ".".join(str(part) for part in loc)
        overridden = any(dotted == key or dotted.startswith(f"{key}.") for key in overrides)
        return None if overridden else locate(loc)

    try:
        config = RunConfig.model_validate({**data, "base_dir": str(path.resolve().parent)})
    except ValidationError as exc:
        raise ConfigError(describe_error(path, exc, line, model=RunConfig)) from None
    return config


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
