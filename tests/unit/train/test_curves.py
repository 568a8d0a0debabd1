"""Curves, model cards, saving in the base model's dtype and `report_to` checks, on hand-made inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from rlaif.errors import ConfigError
from rlaif.train.common import (
    CURVES,
    base_dtype,
    check_report_to,
    rounding_share,
    save_dtype,
    save_pretrained_as,
    trl_config,
)
from rlaif.train.curves import curve_series, plot_curves
from rlaif.train.model_card import card_settings, constitution_of, final_metrics, write_model_card
from rlaif.train.reports import TrainResult

DPO_HISTORY = [
    {"loss": 0.69, "rewards/chosen": 0.0, "rewards/rejected": 0.0, "rewards/margins": 0.0,
     "rewards/accuracies": 0.0, "learning_rate": 1e-5, "step": 1},
    {"loss": 0.52, "rewards/chosen": 0.3, "rewards/rejected": -0.2, "rewards/margins": 0.5,
     "rewards/accuracies": 1.0, "learning_rate": 1e-5, "step": 2},
    {"train_runtime": 9.0, "train_loss": 0.6, "step": 2},
]  # fmt: skip
PPO_HISTORY = [
    {"step": i, "reward": 0.1 * i, "kl": 0.02 * i, "response_length": 8.0 + i, "policy_loss": -0.01,
     "value_loss": 0.5 / i, "monitor/length_mean": 5.0 + i, "monitor/kl/short": 0.1, "monitor/alerts": 0.0,
     "monitor/length_drift": None if i == 1 else 0.1}
    for i in range(1, 4)
]  # fmt: skip


def panels(history: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    return dict(curve_series(history))


def test_dpo_history_gives_loss_rewards_margin_and_accuracy() -> None:
    found = panels(DPO_HISTORY)
    assert list(found) == ["loss", "rewards (chosen, rejected)", "reward margin", "pairwise accuracy"]
    assert found["loss"] == {
        "loss": [(1.0, 0.69), (2.0, 0.52)]
    }  # x is TRL's step; the summary line has no loss
    assert set(found["rewards (chosen, rejected)"]) == {"rewards/chosen", "rewards/rejected"}
    assert found["pairwise accuracy"]["rewards/accuracies"][-1] == (2.0, 1.0)


def test_reward_model_history_draws_train_and_eval_points_together() -> None:
    history = [{"loss": 0.7, "accuracy": 0.5, "margin": 0.0, "step": 1},
               {"eval_loss": 0.6, "eval_accuracy": 0.75, "eval_margin": 0.4, "step": 1},
               {"loss": 0.4, "accuracy": 1.0, "margin": 0.9, "step": 2}]  # fmt: skip
    found = panels(history)
    assert found["loss"] == {"loss": [(1.0, 0.7), (2.0, 0.4)], "eval_loss": [(1.0, 0.6)]}
    assert set(found["pairwise accuracy"]) == {"accuracy", "eval_accuracy"}
    assert set(found["reward margin"]) == {"margin", "eval_margin"}


def test_ppo_history_gets_reward_kl_length_losses_and_a_panel_per_monitor() -> None:
    found = panels(PPO_HISTORY)
    assert list(found)[:4] == ["reward", "KL to the reference", "completion length (tokens)", "PPO losses"]
    assert "alerts" not in found  # a count of warnings, printed already; not a curve
    assert found["kl/short"] == {"monitor/kl/short": [(1.0, 0.1), (2.0, 0.1), (3.0, 0.1)]}
    assert found["length_drift"]["monitor/length_drift"] == [(2.0, 0.1), (3.0, 0.1)]  # None left out


def test_an_ensembles_spread_and_the_reward_heads_get_their_panels() -> None:
    history = [{**h, "reward/ensemble_std": 0.1 * h["step"], "reward/head/helpful": 0.2,
                "reward/head/safety": -0.1} for h in PPO_HISTORY]  # fmt: skip
    found = panels(history)
    assert found["reward-model ensemble spread"]["reward/ensemble_std"][-1] == (3.0, 0.1 * 3)
    assert set(found["reward heads"]) == {"reward/head/helpful", "reward/head/safety"}


def test_unknown_text_and_non_finite_values_are_left_out_and_no_step_means_position() -> None:
    history = [{"reward": float("nan")}, {"reward": 1.0, "note": "x"}, {"reward": "1.5", "grad_norm": 3.0}]
    assert panels(history) == {"reward": {"reward": [(2.0, 1.0)]}}


def test_plot_writes_a_png_or_nothing(tmp_path: Path) -> None:
    path = plot_curves(PPO_HISTORY, tmp_path / "out" / CURVES, title="PPO")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    assert plot_curves([{"learning_rate": 1e-5, "step": 1}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def result(folder: Path, history: list[dict[str, Any]], **metrics: Any) -> TrainResult:
    return TrainResult(output_dir=folder, steps=2, seconds=1.0, losses=[0.69, 0.52], log_history=history,
                       metrics=metrics)  # fmt: skip


def test_final_metrics_has_steps_loss_each_curves_last_value_and_the_metrics() -> None:
    found = final_metrics(result(Path("m"), DPO_HISTORY, pairs=24, margin_first=None))
    assert found["steps"] == 2 and found["training loss first → last"] == "0.6900 → 0.5200"
    assert found["rewards/margins (last logged)"] == 0.5 and found["pairs"] == 24
    assert "margin_first" not in found and "loss (last logged)" not in found


def test_the_card_names_base_model_constitution_data_settings_and_shows_the_curves(tmp_path: Path) -> None:
    plot_curves(DPO_HISTORY, tmp_path / CURVES)
    path = write_model_card(
        result(tmp_path, DPO_HISTORY, pairs=24), label="DPO",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct", trainer="TRL DPOTrainer", summary="A policy.",
        data={"pairs": "export/pairs"},
        constitution="harmless v1, hash `abc`", settings={"beta": 0.1}, results={"held-out": 0.75},
    )  # fmt: skip
    card = path.read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card.split("---")[1]  # Hub metadata
    assert f"# DPO: {tmp_path.name}" in card and "- constitution: harmless v1, hash `abc`" in card
    assert "- pairs: export/pairs" in card and "- `beta`: 0.1" in card and "- held-out: 0.75" in card
    assert "- rewards/margins (last logged): 0.5" in card and f"![training curves]({CURVES})" in card
    assert f'AutoModelForCausalLM.from_pretrained("{tmp_path}")' in card


def test_a_local_base_is_named_but_not_hub_metadata_and_no_curves_no_image(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    card = write_model_card(
        result(tmp_path, []), label="SFT", base_model=tmp_path / "base", trainer="t", summary="s", data={},
        constitution="not recorded", settings={},
    ).read_text()  # fmt: skip
    assert "base_model:" not in card and f"- base model: `{tmp_path / 'base'}`" in card
    assert "![training curves]" not in card


def test_the_constitution_comes_from_the_caller_or_the_datas_hashes() -> None:
    from datasets import Dataset

    data = Dataset.from_dict({"prompt": ["a", "b", "c"], "constitution_hash": ["h2", "h1", "h2"]})
    assert constitution_of(data, "harmless v1, hash `x`") == "harmless v1, hash `x`"
    assert constitution_of(data, None) == "hash `h1`, `h2`"
    assert constitution_of(Dataset.from_dict({"messages": ["m"]}), None) == "not recorded"


def test_card_settings_are_the_usual_fields_and_every_one_the_user_set(tmp_path: Path) -> None:
    from trl import DPOConfig

    args = {"beta": 0.3, "warmup_steps": 2, "max_steps": 5}
    settings = card_settings(trl_config(DPOConfig, "dpo", tmp_path, args), args)
    assert settings["beta"] == 0.3 and settings["warmup_steps"] == 2 and settings["max_steps"] == 5
    assert settings["learning_rate"] == 5e-6 and "num_generations" not in settings  # DPOConfig has none
    card = write_model_card(
        result(tmp_path, []), label="DPO", base_model="b", trainer="t", summary="s", data={},
        constitution="c", settings=settings,
    ).read_text()  # fmt: skip
    assert "- `lr_scheduler_type`: linear" in card  # TRL's enum, by its value


def tiny_model(dtype: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)  # fmt: skip
    return LlamaForCausalLM(config).to(dtype)


def test_saving_in_the_base_dtype_leaves_the_model_in_memory_as_it_was(tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open

    tiny_model(torch.bfloat16).save_pretrained(tmp_path / "base")
    assert base_dtype(tmp_path / "base") == torch.bfloat16
    model = tiny_model(torch.float32)
    save_pretrained_as(model, tmp_path / "out", base_dtype(tmp_path / "base"))
    assert model.dtype == torch.float32 and model.lm_head.weight is model.model.embed_tokens.weight
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
        assert {weights.get_tensor(n).dtype for n in names} == {torch.bfloat16}
    assert "lm_head.weight" not in names  # still tied: saved once
    assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"
    save_pretrained_as(model, tmp_path / "fp32", None)  # None: as in memory (checkpoints)
    assert json.loads((tmp_path / "fp32" / "config.json").read_text())["dtype"] == "float32"


def test_a_cast_that_would_erase_the_update_keeps_the_trained_dtype_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A short fp32 run moves weights by less than bf16 can hold: saving in bf16 would keep the base."""
    import torch

    base = tiny_model(torch.bfloat16)
    base.save_pretrained(tmp_path / "base")
    small, large = tiny_model(torch.float32), tiny_model(torch.float32)
    with torch.no_grad():
        for tuned, step in ((small, 1e-5), (large, 0.05)):
            for weight, start in zip(tuned.parameters(), base.parameters(), strict=True):
                weight.copy_(start.float() + step * torch.randn_like(weight))
    share = rounding_share(small, tmp_path / "base", torch.bfloat16)
    assert share is not None and share > 0.9  # a 1e-5 update is below bf16's resolution: mostly lost
    assert save_dtype(small, tmp_path / "base") is None
    assert "would change" in capsys.readouterr().err
    assert rounding_share(large, tmp_path / "base", torch.bfloat16) < 0.1
    assert save_dtype(large, tmp_path / "base") == torch.bfloat16 and not capsys.readouterr().err
    assert save_dtype(base, tmp_path / "base") is None  # trained in the base's dtype: nothing to cast


def test_a_missing_logger_is_one_config_error_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trl import DPOConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("tensorboard") else real(name, *a),
    )
    with pytest.raises(ConfigError) as error:
        trl_config(DPOConfig, "dpo", tmp_path, {"report_to": ["tensorboard"]})
    message = str(error.value)
    assert message.startswith("train.dpo.args.report_to: tensorboard is not installed")
    assert "pip install 'rlaif-toolkit[track]'" in message and "report_to: none" in message
    with pytest.raises(ConfigError, match=r"train\.online\.args\.report_to: trackio .*-toolkit\[track\]"):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
        check_report_to("trackio", "online")
    check_report_to("none", "dpo")  # nothing to check
    check_report_to(["all", "some-logger"], "dpo")  # transformers checks the ones we do not know
