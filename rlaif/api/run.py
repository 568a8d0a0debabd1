"""`run`: the whole pipeline (`rlaif run`) from a config object, a dict or a file, in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif.config import RunConfig, config_from_dict, load_config
from rlaif.errors import ConfigError
from rlaif.pipeline.reports import RunSummary
from rlaif.pipeline.run import ALL_STAGES, run_pipeline

__all__ = ["run"]


def run(
    config: RunConfig | Mapping[str, Any] | str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    stages: Sequence[str] = ALL_STAGES,
    quiet: bool = False,
    force: bool = False,
) -> RunSummary:
    """Run the pipeline as `rlaif run` does and return its summary (also saved as `summary.json`).

    Args:
        config: A `RunConfig`, a dict of its fields (relative paths resolve against the working
            directory), or a config file.
        overrides: Dotted settings over the config, as the CLI's `--set` (`{"prompts.limit": 4}`).
        stages: The stages to run (default: all: respond, revise, judge, export, and the enabled trainers).
        quiet: No progress bars.
        force: Train even when a quality gate or the review gate refuses (recorded in the manifest).

    Raises:
        ConfigError: the config is invalid (the message names the field).
        QualityGateError: a gate stopped training, or the export is empty; its `summary` is the run's.
    """
    if isinstance(config, str | Path):
        config = load_config(config, dict(overrides or {}))
    elif isinstance(config, RunConfig):
        if overrides:
            dumped = config.model_dump(mode="json")
            config = config_from_dict(dumped, base_dir=config.base_dir, overrides=overrides)
    elif isinstance(config, Mapping):
        config = config_from_dict(config, overrides=overrides)
    else:
        raise ConfigError(f"give a RunConfig, a dict of its fields or a config file's path, not {config!r}")
    return run_pipeline(config, stages=stages, quiet=quiet, force=force)
