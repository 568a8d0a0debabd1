"""What a run config names, loaded once: its constitution and its prompt set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rlaif.config import RunConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.prompt_datasets import load_dataset_prompts
from rlaif.inputs.prompts import load_prompts
from rlaif.records import Constitution, PromptRecord

__all__ = ["constitution_file", "load_inputs", "load_run_constitution", "load_run_prompts"]


def constitution_file(name_or_path: str, base_dir: str | Path) -> Path:
    """The constitution file a config names: a path relative to `base_dir` (the config's folder) or an
    absolute one when such a file exists, else a shipped constitution of that name."""
    candidate = Path(name_or_path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir) / candidate
    return candidate if candidate.is_file() else find_constitution(name_or_path)


def load_run_constitution(config: RunConfig) -> Constitution:
    """The constitution the config names, validated."""
    return load_constitution(constitution_file(config.constitution, config.base_dir))


def load_inputs(config: RunConfig) -> tuple[Constitution, list[PromptRecord]]:
    """The constitution and prompt set the config names, validated."""
    return load_run_constitution(config), load_run_prompts(config)


def load_run_prompts(config: RunConfig, keep: Callable[[str], bool] | None = None) -> list[PromptRecord]:
    """The prompt set the config names: its JSONL file, or its `datasets` source; `keep(id)`: hold
    only those prompts (a `--workers` worker's share)."""
    if config.prompts.path is not None:
        return load_prompts(config.resolve(config.prompts.path), limit=config.prompts.limit, keep=keep)
    return load_dataset_prompts(config.prompts, config.base_dir, keep)
