"""Loading and validating run configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif.config import RunConfig, load_config
from rlaif.errors import ConfigError

GOOD = """\
run_dir: runs/demo
constitution: my-constitution.yaml
prompts:
  path: data/prompts.jsonl
  limit: 10
seed: 3
revise:
  rounds: 2
  few_shot: 0
judge:
  inconsistent: drop
train:
  dpo:
    args:
      max_steps: 5
"""


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path, overrides: dict[str, object] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert path.name in message
    return message


def test_minimal_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "prompts: {path: p.jsonl}\n"))
    assert isinstance(config, RunConfig)
    assert config.prompts.path == "p.jsonl"
    assert config.revise.rounds == 2
    assert config.constitution == "harmless"


def test_full_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.seed == 3
    assert config.prompts.limit == 10
    assert config.judge.inconsistent == "drop"
    assert config.train.dpo.args == {"max_steps": 5}


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = write(folder, GOOD)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("configs") / "run.yaml")
    assert config.resolve(config.prompts.path) == folder.resolve() / "data" / "prompts.jsonl"
    assert config.resolve(config.constitution) == folder.resolve() / "my-constitution.yaml"
    absolute = tmp_path / "elsewhere.jsonl"
    assert config.resolve(str(absolute)) == absolute
    assert load_config(path).base_dir == str(folder.resolve())


def test_overrides(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), {"revise.rounds": 1, "seed": 9, "model.path": "m"})
    assert config.revise.rounds == 1
    assert config.seed == 9
    assert config.model.path == "m"
    assert config.revise.few_shot == 0  # the rest of the section is kept


def test_bad_override_has_no_line(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD), {"revise.rounds": "many"})
    assert "revise.rounds" in message
    assert ", line " not in message
    assert "'many'" in message


# --- bad configs: each message names the file, the line and the field ---


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("  few_shot: 0", "  few_shots: 0")))
    assert "line 9" in message
    assert "revise.few_shots" in message
    assert "did you mean 'few_shot'" in message
    assert "allowed: enabled, few_shot, max_tokens, rounds, temperature, top_p" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("revise:", "revies:")))
    assert "line 7" in message
    assert "did you mean 'revise'" in message
    assert "base_dir" not in message  # set by the loader, not by users


def test_unknown_key_deep_inside(tmp_path: Path) -> None:
    text = GOOD.replace("judge:\n", "judge:\n  model:\n    server:\n      dtpye: float16\n")
    message = error_for(write(tmp_path, text))
    assert "line 13" in message
    assert "judge.model.server.dtpye" in message
    assert "did you mean 'dtype'" in message


def test_wrong_type_at_a_nested_field(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("rounds: 2", "rounds: many")))
    assert "line 8" in message
    assert "revise.rounds" in message
    assert "(got 'many')" in message
    assert "whole number" in message


def test_out_of_range(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("rounds: 2", "rounds: 0")))
    assert "line 8" in message
    assert "revise.rounds" in message
    assert "1 or more" in message


def test_bad_choice(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("inconsistent: drop", "inconsistent: toss")))
    assert "line 11" in message
    assert "judge.inconsistent" in message
    assert "'keep', 'drop' or 'tie'" in message


def test_section_not_a_mapping(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "prompts: {path: p.jsonl}\nrevise: 3\n"))
    assert "line 2" in message
    assert "revise" in message
    assert "rounds" in message


def test_several_problems(tmp_path: Path) -> None:
    text = GOOD.replace("rounds: 2", "rounds: many").replace("seed: 3", "seed: x")
    message = error_for(write(tmp_path, text))
    assert "line 6, seed" in message
    assert "other problems: revise.rounds (line 8)" in message


def test_missing_prompts(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "seed: 1\nrevise:\n  rounds: 1\n"))
    assert "line 1" in message
    assert "'prompts'" in message
    assert "missing" in message


def test_missing_prompts_path(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "seed: 1\nprompts:\n  limit: 3\n"))
    assert "line 2" in message
    assert "prompts.path" in message


def test_yaml_syntax_error(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "prompts: {path: p.jsonl}\nrevise:\n  rounds: [1\n"))
    assert "YAML error" in message
    assert "line 3" in message or "line 4" in message


def test_not_a_mapping(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "- prompts\n- seed\n"))
    assert "line 1" in message
    assert "mapping" in message


def test_empty_file(tmp_path: Path) -> None:
    assert "empty" in error_for(write(tmp_path, "# nothing\n"))


def test_alias_refused(tmp_path: Path) -> None:
    text = "prompts: &p {path: p.jsonl}\nseed: 1\njudge:\n  model: *p\n"
    message = error_for(write(tmp_path, text))
    assert "line 4" in message
    assert "alias" in message


def test_duplicate_key(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD + "seed: 4\n"))
    assert "line 16" in message
    assert "seed" in message
    assert "twice" in message


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in error_for(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("generation.temperature", float("inf"), "finite number"),
        ("judge.min_confidence", float("nan"), "finite number"),
        ("run_dir", "", "run_dir"),
        ("run_dir", "   ", "run_dir"),
        ("generation.samples_per_prompt", 1, "the judge compares two samples"),
    ],
)
def test_values_that_would_crash_or_mislead_a_run_are_refused(
    tmp_path: Path, key: str, value: object, needle: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("prompts: {path: p.jsonl}\n")
    with pytest.raises(ConfigError, match=needle):
        load_config(path, {key: value})
    load_config(path, {"generation.samples_per_prompt": 1, "judge.enabled": False})  # no judge: fine


# Every public name `rlaif/config.py` had before it became a package: importers need no change.
NAMES_BEFORE_THE_PACKAGE = [
    "DPOSection",
    "ExportConfig",
    "FILTERS",
    "FilterConfig",
    "FilterName",
    "GateConfig",
    "GenerationConfig",
    "JudgeConfig",
    "KTOSection",
    "META_PATTERNS",
    "ModelConfig",
    "MonitorsConfig",
    "OnlineReward",
    "OnlineSection",
    "PPOReward",
    "PPOSection",
    "PairSource",
    "PairTrainerSection",
    "PromptColumns",
    "PromptsConfig",
    "QualityConfig",
    "REFUSAL_PATTERNS",
    "RayConfig",
    "ReviewConfig",
    "ReviewSampleConfig",
    "ReviseConfig",
    "RewardModelUser",
    "RewardSection",
    "RunConfig",
    "SFTSection",
    "Section",
    "ServerConfig",
    "TemplatesConfig",
    "TrainConfig",
    "TrainerSection",
    "config_from_dict",
    "dump_config",
    "load_config",
    "reviewer_problem",
    "rewards",
]


def test_the_package_still_offers_every_name_the_module_did() -> None:
    import rlaif.config

    assert len(NAMES_BEFORE_THE_PACKAGE) == 40
    assert [name for name in NAMES_BEFORE_THE_PACKAGE if name not in rlaif.config.__all__] == []
    assert [name for name in rlaif.config.__all__ if not hasattr(rlaif.config, name)] == []


def test_set_dotted_makes_the_sections_on_the_way() -> None:
    from rlaif.config import set_dotted

    data: dict[str, object] = {"judge": {"mode": "cot"}}
    set_dotted(data, "judge.model.path", "m")
    set_dotted(data, "seed", 4)
    assert data == {"judge": {"mode": "cot", "model": {"path": "m"}}, "seed": 4}


@pytest.mark.parametrize(
    ("section", "field"),
    [("quality.filters", "meta_patterns"), ("train.monitors", "refusal_patterns")],
)
def test_every_list_of_patterns_is_checked_by_the_one_validator(
    tmp_path: Path, section: str, field: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("prompts: {path: p.jsonl}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {f"{section}.{field}": ["ok", "(unclosed"]})
    message = str(info.value)
    assert f"{section}.{field}" in message
    assert "pattern '(unclosed' is not a valid regular expression" in message and "fix or drop it" in message
