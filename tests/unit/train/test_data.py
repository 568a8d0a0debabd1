"""Pure parts of the trainers: pairs to KTO rows, margins, held-out splits, online prompts, TRL configs."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rlaif.config import RunConfig
from rlaif.errors import ConfigError, RlaifError
from rlaif.train.common import split_by_prompt, trl_config
from rlaif.train.kto import balanced_weights, unpair
from rlaif.train.online import online_prompts
from rlaif.train.reward import margin_from_score
from rlaif.train.sft import sft_example


def row(prompt: str, chosen: str, rejected: str, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        **extra,
    }


def test_each_pair_gives_one_desirable_and_one_undesirable_row() -> None:
    rows, counts = unpair([row("p1", "good", "bad"), row("p2", "fine", "rude")])
    assert counts == {"desirable": 2, "undesirable": 2, "duplicates": 0, "contradictory": 0}
    by_answer = {r["completion"][0]["content"]: r for r in rows}
    assert by_answer["good"]["label"] is True and by_answer["bad"]["label"] is False
    assert by_answer["rude"]["prompt"] == [{"role": "user", "content": "p2"}]
    assert set(by_answer["good"]) == {"prompt", "completion", "label", "weight"}
    assert by_answer["good"]["weight"] == 1.0  # no p_chosen: a sure pair


def test_repeated_answers_are_kept_once_and_contradictions_dropped() -> None:
    pairs = [
        row("p", "revised", "original"),  # revision pair
        row("p", "original", "second sample"),  # judge pair: the original wins here
        row("p", "revised", "other"),
    ]
    rows, counts = unpair(pairs)
    answers = sorted((r["completion"][0]["content"], r["label"]) for r in rows)
    assert answers == [("other", False), ("revised", True), ("second sample", False)]
    assert counts == {"desirable": 1, "undesirable": 2, "duplicates": 1, "contradictory": 1}


def test_each_row_weighs_its_pairs_confidence() -> None:
    """2·p - 1 per pair: a coin flip weighs 0; an answer kept once for two pairs takes their mean."""
    rows, _ = unpair(
        [row("p", "a", "b", p_chosen=0.5), row("p", "a", "c", p_chosen=0.9), row("q", "d", "e", p_chosen=1.0)]
    )
    weight = {r["completion"][0]["content"]: r["weight"] for r in rows}
    assert weight["b"] == 0.0 and weight["c"] == pytest.approx(0.8) and weight["d"] == weight["e"] == 1.0
    assert weight["a"] == pytest.approx(0.4)


def test_row_weights_line_up_with_trls_chosen_and_rejected_order() -> None:
    """TRL multiplies desirable_weight with the label-true rows' losses in batch order, and
    undesirable_weight with the others'; the per-row tensors follow that order, then go back."""
    import torch

    from rlaif.train.kto import row_weights

    trainer = SimpleNamespace(desirable_weight=2.0, undesirable_weight=1.0)
    labels = torch.tensor([False, True, True, False, True])
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    with row_weights(trainer, labels, weights):
        assert torch.allclose(trainer.desirable_weight, torch.tensor([0.4, 0.6, 1.0]))
        assert torch.allclose(trainer.undesirable_weight, torch.tensor([0.1, 0.4]))
    assert (trainer.desirable_weight, trainer.undesirable_weight) == (2.0, 1.0)


def test_the_same_answer_to_another_prompt_is_another_row() -> None:
    rows, _ = unpair([row("p1", "ok", "no"), row("p2", "ok", "no")])
    assert len(rows) == 4


def test_rows_are_shuffled_by_the_seed_so_neighbours_are_other_prompts() -> None:
    pairs = [row(f"p{i}", f"good {i}", f"bad {i}") for i in range(20)]
    first, _ = unpair(pairs, seed=1)
    again, _ = unpair(pairs, seed=1)
    other, _ = unpair(pairs, seed=2)
    assert first == again and first != other
    same_prompt_neighbours = sum(a["prompt"] == b["prompt"] for a, b in zip(first, first[1:], strict=False))
    assert same_prompt_neighbours < 10  # in order, every other neighbour would share its prompt


def test_balanced_weights() -> None:
    assert balanced_weights(10, 10) == {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    assert balanced_weights(10, 5) == {"desirable_weight": 1.0, "undesirable_weight": 2.0}
    assert balanced_weights(4, 6) == {"desirable_weight": 1.5, "undesirable_weight": 1.0}
    with pytest.raises(RlaifError, match="both desirable and undesirable"):
        balanced_weights(3, 0)


def test_margin_is_the_bradley_terry_gap_capped() -> None:
    assert margin_from_score(0.5) == 0.0
    assert margin_from_score(0.8) == pytest.approx(math.log(4))
    assert margin_from_score(1.0) == pytest.approx(math.log(0.95 / 0.05))
    assert margin_from_score(0.3) == 0.0  # below 0.5 cannot happen for a chosen answer; never negative
    assert margin_from_score(0.99, cap=0.99) == pytest.approx(math.log(99))


def test_held_out_split_keeps_each_prompt_on_one_side() -> None:
    from datasets import Dataset

    data = Dataset.from_list([{"prompt_id": f"p{i % 10}", "x": i} for i in range(30)])
    train, held = split_by_prompt(data, 0.2, seed=0)
    assert held is not None and len(train) + len(held) == 30
    assert set(train["prompt_id"]).isdisjoint(held["prompt_id"]) and len(set(held["prompt_id"])) == 2
    again, _ = split_by_prompt(data, 0.2, seed=0)
    assert again["x"] == train["x"]
    assert split_by_prompt(data, 0.0)[1] is None
    one = Dataset.from_list([{"prompt_id": "p", "x": 1}, {"prompt_id": "p", "x": 2}])
    assert split_by_prompt(one, 0.5)[1] is None  # never hold out every prompt
    small, held_small = split_by_prompt(data.select(range(2)), 0.01)
    assert held_small is not None and len(set(held_small["prompt_id"])) == 1 and len(small) == 1


def test_online_prompts_prefer_the_revision_as_reference() -> None:
    rows = [
        row("p1", "judge winner", "judge loser", prompt_id="a", source="judge"),
        row("p1", "revision", "original", prompt_id="a", source="revision"),
        row("p2", "only", "other", prompt_id="b", source="judge"),
    ]
    prompts = online_prompts(rows)
    assert [(p["prompt_id"], p["reference"]) for p in prompts] == [("a", "revision"), ("b", "only")]
    assert prompts[0]["prompt"] == [{"role": "user", "content": "p1"}]
    assert online_prompts(rows, reference="rejected")[0]["reference"] == "original"


def test_sft_rows_become_prompt_and_completion() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "pick a lock"},
        {"role": "assistant", "content": "I'd call a locksmith."},
    ]
    example = sft_example(messages)
    assert example["prompt"] == messages[:3] and example["completion"] == messages[3:]
    with pytest.raises(RlaifError):
        sft_example(messages[:3])


def test_trl_config_passes_loss_type_through_and_names_bad_args(tmp_path: Path) -> None:
    from trl import DPOConfig, RLOOConfig

    config = trl_config(DPOConfig, "dpo", tmp_path, {"loss_type": "ipo", "beta": 0.3})
    assert config.loss_type == ["ipo"] and config.beta == 0.3
    assert config.bf16 is False and config.gradient_checkpointing is False  # TRL defaults both on
    rloo = trl_config(RLOOConfig, "online", tmp_path, None, num_generations=2)
    assert rloo.num_generations == 2 and not hasattr(rloo, "max_length")  # defaults it lacks are left out
    with pytest.raises(ConfigError, match=r"train\.dpo\.args: .*betta.*DPOConfig"):
        trl_config(DPOConfig, "dpo", tmp_path, {"betta": 0.3})
    with pytest.raises(ConfigError, match=r"train\.dpo\.args\.learning_rate: '2e-5' is text.*2e-05"):
        trl_config(DPOConfig, "dpo", tmp_path, {"learning_rate": "2e-5"})  # what YAML makes of 2e-5


def test_train_sections_validate() -> None:
    config = RunConfig.model_validate(
        {
            "prompts": {"path": "p.jsonl"},
            "train": {"reward": {"use_margin": True, "eval_fraction": 0.2}, "online": {"reward": "judge"}},
        }
    )
    assert config.train.reward.use_margin and config.train.online.algorithm == "rloo"
    assert not config.train.sft.enabled and config.train.dpo.enabled
    for bad in ({"reward": {"eval_fraction": 1.0}}, {"online": {"algorithm": "ppo"}}, {"kto": {"beta": 1}}):
        with pytest.raises(ValueError):
            RunConfig.model_validate({"prompts": {"path": "p.jsonl"}, "train": bad})


def test_ppo_stage_names_bad_args_and_a_missing_reward_model(tmp_path: Path) -> None:
    from rlaif.train.registry import train_stage

    def config(**ppo: Any) -> RunConfig:
        return RunConfig.model_validate(
            {"base_dir": str(tmp_path), "prompts": {"path": "p.jsonl"}, "train": {"ppo": ppo}}
        )

    with pytest.raises(ConfigError, match=r"train\.ppo\.args: .*batch_size 3 is not a multiple"):
        train_stage("ppo", config(args={"batch_size": 3, "mini_batch_size": 2}), tmp_path, model="m")
    with pytest.raises(ConfigError, match=r"train\.ppo\.args: kl_coef: Extra inputs"):
        train_stage("ppo", config(args={"kl_coef": 0.1}), tmp_path, model="m")
    with pytest.raises(ConfigError, match=r"models/reward has none: train one first"):
        train_stage("ppo", config(), tmp_path, model="m")


def test_ppo_prompts_are_each_prompts_last_user_turn_once_in_first_seen_order() -> None:
    from rlaif.train.ppo.rollout import pair_prompts

    two_turns = row("first question", "a", "b")
    two_turns["prompt"] = [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "follow-up"},
    ]
    rows = [row("p1", "a", "b"), two_turns, row("p1", "c", "d"), row("p2", "e", "f")]
    assert pair_prompts(rows) == ["p1", "follow-up", "p2"]
