"""The whole file: `RunConfig` (its sections, the seed, the run directory), read and validated from
YAML or a dict, with dotted overrides, and written back."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from rlaif.config.base import Section
from rlaif.config.export import ExportConfig
from rlaif.config.generation import GenerationConfig
from rlaif.config.iterate import IterateConfig
from rlaif.config.judge import JudgeConfig
from rlaif.config.model import ModelConfig
from rlaif.config.prompts import PromptsConfig
from rlaif.config.quality import QualityConfig
from rlaif.config.review import ReviewConfig
from rlaif.config.revise import ReviseConfig
from rlaif.config.templates import TemplatesConfig
from rlaif.config.tools import ToolsConfig
from rlaif.config.train import TrainConfig
from rlaif.errors import ConfigError
from rlaif.records import SavedCalibration
from rlaif.templates import Templates

__all__ = ["RunConfig", "config_from_dict", "dump_config", "load_config", "set_dotted"]


class RunConfig(Section):
    """A whole pipeline run."""

    run_dir: str = Field(default="runs/default", min_length=1, pattern=r"\S")
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
    review: ReviewConfig = ReviewConfig()
    quality: QualityConfig = QualityConfig()
    templates: TemplatesConfig = TemplatesConfig()
    export: ExportConfig = ExportConfig()
    tools: ToolsConfig = ToolsConfig()
    iterate: IterateConfig | None = None
    """Rounds of the whole loop, for `rlaif iterate` (`rlaif run` makes one pass and ignores it)."""
    base_dir: str = Field(default=".", exclude=True)
    """Folder relative input paths are resolved against (the config file's folder)."""

    @model_validator(mode="after")
    def _judge_has_two_samples(self) -> RunConfig:
        if self.judge.enabled and self.generation.samples_per_prompt < 2:
            raise ValueError(
                "generation.samples_per_prompt is 1, but the judge compares two samples of each prompt; "
                "set samples_per_prompt: 2 or more, or judge.enabled: false"
            )
        return self

    @model_validator(mode="after")
    def _probe_gate_has_probes(self) -> RunConfig:
        probes = self.judge.probes
        if (
            self.judge.enabled
            and self.quality.min_probe_accuracy is not None
            and not (probes.share and probes.kinds)
        ):
            what = "judge.probes.share is 0" if not probes.share else "judge.probes.kinds is empty"
            raise ValueError(
                f"{what}, but the gate quality.min_probe_accuracy ({self.quality.min_probe_accuracy}) "
                "needs probes; set judge.probes.share above 0 (e.g. 0.2), or switch the gate off with "
                "quality.min_probe_accuracy: null"
            )
        return self

    @model_validator(mode="after")
    def _rounds_train(self) -> RunConfig:
        rounds = self.iterate
        if rounds is None:
            return self
        if not getattr(self.train, rounds.trainer).enabled:
            raise ValueError(
                f"iterate.trainer is {rounds.trainer} but train.{rounds.trainer}.enabled is false: a round "
                f"that trains nothing gives the next round nothing new to serve; set "
                f"train.{rounds.trainer}.enabled: true (or choose another iterate.trainer)"
            )
        if rounds.review_each_round and self.review.gate is None:
            raise ValueError(
                "iterate.review_each_round is true but review.gate is not set; give review.gate "
                "(e.g. {min_agreement: 0.7, min_reviewed: 20}) or set review_each_round: false"
            )
        if rounds.reference == "base" and rounds.trainer != "dpo":
            raise ValueError(
                f"iterate.reference: base applies to DPO's reference model; iterate.trainer is "
                f"{rounds.trainer}: use reference: previous"
            )
        return self

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    def template_set(self) -> Templates:
        """The templates this run renders: the shipped ones, with the files of `templates:` in their place."""
        chosen = self.templates.model_dump(exclude_none=True)
        return Templates({name: self.resolve(path) for name, path in chosen.items()})


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run config; errors name the file, line and field."""
    from rlaif.yamlfile import load_yaml

    path = Path(path)
    data, locate = load_yaml(path, ConfigError, what="config")
    overrides = overrides or {}
    _override(data, overrides, path)

    def line(loc: tuple[Any, ...]) -> int | None:
        # An overridden value is not in the file: pointing at a line there would mislead.
        dotted = ".".join(str(part) for part in loc)
        overridden = any(
            dotted == key or dotted.startswith(f"{key}.") or key.startswith(f"{dotted}.") for key in overrides
        )
        return None if overridden else locate(loc)

    return _validated(data, path, line, base_dir=path.resolve().parent)


def config_from_dict(
    data: Mapping[str, Any], *, base_dir: str | Path = ".", overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """A run config given in code (the Python API), validated and checked as a file is; relative paths
    resolve against `base_dir`, `overrides` are dotted settings as with `--set`, and an error names the
    field."""
    where = Path("run config")
    data = copy.deepcopy(dict(data))  # the overrides must not write into the caller's dict
    _override(data, overrides or {}, where)
    return _validated(data, where, lambda loc: None, base_dir=Path(base_dir).resolve())


def _override(data: dict[str, Any], overrides: Mapping[str, Any], where: Path) -> None:
    for key, value in overrides.items():
        try:
            set_dotted(data, key, value)
        except (AttributeError, TypeError):
            raise ConfigError(
                f"{where}: cannot apply the override {key}={value!r}: a part of {key} is not a section; "
                "check the dotted name"
            ) from None


def _validated(
    data: dict[str, Any], path: Path, line: Callable[[tuple[Any, ...]], int | None], *, base_dir: Path
) -> RunConfig:
    from rlaif.yamlfile import describe_error, format_error

    try:
        config = RunConfig.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        raise ConfigError(describe_error(path, exc, line, model=RunConfig)) from None
    templates = config.template_set()
    for name, file in templates.files.items():
        if not file.is_file():
            problem, fix = (
                f"template file {file} not found",
                "give a .jinja file, relative to the config's folder",
            )
            at = line(("templates", name))
            raise ConfigError(format_error(path, problem, fix, line=at, field=f"templates.{name}"))
    templates.check()
    _check_calibration_file(config, path, line)
    return config


def _check_calibration_file(
    config: RunConfig, path: Path, line: Callable[[tuple[Any, ...]], int | None]
) -> None:
    """`judge.calibration: FILE` must be a file `rlaif evaluate judge --save-calibration` wrote."""
    from rlaif.yamlfile import format_error

    if config.judge.calibration in ("auto", "off"):
        return
    file = config.resolve(config.judge.calibration)
    try:
        SavedCalibration.model_validate_json(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        why = "not found" if isinstance(exc, FileNotFoundError) else "does not parse as a saved calibration"
        fix = "give a file from `rlaif evaluate judge --save-calibration FILE`, or auto, or off"
        at = line(("judge", "calibration"))
        raise ConfigError(
            format_error(path, f"calibration file {file} {why}", fix, line=at, field="judge.calibration")
        ) from None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` (dotted, e.g. `judge.mode`) to `value` in a config's raw data, making the sections on
    the way: what `--set KEY=VALUE` and `overrides` do before the config is validated."""
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def dump_config(config: RunConfig) -> str:
    """The config as YAML (what a run manifest stores); it loads back to the same config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
