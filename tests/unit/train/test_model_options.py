"""`train.model`: TRL's ModelConfig keywords, turned into loading keywords and a LoRA config; a
missing optional package is one line, exit 2, before any model loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.errors import ConfigError
from rlaif.train.model_options import check_packages, model_options
from tests.support.cli import Cli, assert_one_line_error, run_cli

peft = pytest.importorskip("peft")


def test_lora_for_a_policy_and_for_a_reward_model() -> None:
    settings = {"use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                "lora_target_modules": ["q_proj", "v_proj"]}  # fmt: skip
    policy = model_options(settings)
    lora = policy.peft_config
    assert isinstance(lora, peft.LoraConfig)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, lora.task_type) == (4, 8, 0.0, "CAUSAL_LM")
    assert set(lora.target_modules) == {"q_proj", "v_proj"}
    assert policy.init_kwargs == {"dtype": "float32"}  # this machine has no CUDA
    assert policy.describe() == (
        f"LoRA (peft {peft.__version__}): r 4, alpha 8, dropout 0.0, target modules ['q_proj', 'v_proj']; "
        "the reference is the base with the adapter disabled"
    )
    reward = model_options(settings, kind="reward")
    assert reward.peft_config.task_type == "SEQ_CLS"  # peft then trains and saves the score head too


def test_nothing_set_is_full_weights_in_fp32_on_cpu() -> None:
    options = model_options({})
    assert options.peft_config is None and options.describe() is None
    assert options.init_kwargs == {"dtype": "float32"}
    assert model_options({"dtype": "bfloat16", "attn_implementation": "sdpa"}).init_kwargs == {
        "dtype": "bfloat16", "attn_implementation": "sdpa"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "needle"),
    [({"lora_rank": 8}, "train.model: ModelConfig.__init__() got an unexpected keyword argument 'lora_rank'; "
                        "the keys are TRL's ModelConfig's: dtype, attn_implementation, use_peft, lora_r"),
     ({"model_name_or_path": "x/y"},
      "train.model.model_name_or_path: rlaif sets this: the model is model.path"),
     ({"dtype": "int3"}, "train.model.dtype: 'int3'; choose one of auto, bfloat16, float16, float32")],
)  # fmt: skip
def test_bad_settings_are_one_config_error(settings: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        model_options(settings)
    assert needle in str(info.value)


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a)
    )


@pytest.mark.parametrize(
    ("options", "args", "modules", "needle"),
    [({"use_peft": True}, {}, ("peft",),
      "train.model.use_peft needs peft, which is not installed: pip install 'rlaif-toolkit[lora]' (or peft)"),
     ({"load_in_4bit": True}, {}, ("bitsandbytes",),
      "train.model.load_in_4bit needs bitsandbytes, which is not installed: "
      "pip install 'rlaif-toolkit[quant]'"),
     ({"attn_implementation": "flash_attention_2"}, {}, ("flash_attn",),
      "train.model.attn_implementation: flash_attention_2 needs flash-attn, which is not installed: "
      "pip install flash-attn --no-build-isolation"),
     ({}, {"use_liger_kernel": True}, ("liger_kernel",),
      "train.dpo.args.use_liger_kernel needs liger-kernel, which is not installed: "
      "pip install 'rlaif-toolkit[liger]'")],
)  # fmt: skip
def test_a_missing_package_names_itself_and_what_installs_it(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], args: dict[str, Any], modules: tuple[str, ...],
    needle: str,
) -> None:  # fmt: skip
    _missing(monkeypatch, *modules)
    with pytest.raises(ConfigError) as info:
        check_packages(options, args, section="dpo")
    assert needle in str(info.value)


def test_4bit_without_cuda_says_it_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "bitsandbytes"
                        else real(name, *a))  # fmt: skip
    with pytest.raises(ConfigError, match=r"load_in_8bit: bitsandbytes 4/8-bit loading is unavailable here"):
        check_packages({"load_in_8bit": True}, section="dpo")


def test_the_cli_says_it_in_one_line_before_anything_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not "internal error ... a bug in rlaif": exit 2, one line, and no run folder made."""
    _missing(monkeypatch, "flash_attn")
    config = tmp_path / "config.yaml"
    settings = {"run_dir": str(tmp_path / "run"), "prompts": {"path": "p.jsonl"},
                "train": {"model": {"attn_implementation": "flash_attention_2"}}}  # fmt: skip
    config.write_text(yaml.safe_dump(settings))
    rlaif: Cli = run_cli(capsys, monkeypatch)
    line = assert_one_line_error(
        rlaif("train", "dpo", str(config)), "needs flash-attn, which is not installed"
    )
    assert "bug in rlaif" not in line
    assert not (tmp_path / "run").exists()
