"""A reward-model ensemble with per-principle heads, trained for real with TRL on the bundled model.

Two members × two steps on twelve hand-made pairs, half labelled under a safety principle (a refusal
beats compliance) and half under a helpfulness one (an answer beats "I don't know"); a third head's
principle has no pair, so it must be left out and said so. Then the ensemble is reloaded, scored
(mean and std across members), and drives one PPO step with a conservative reward and the length
monitor, which logs the members' disagreement and each head's reward.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from rlaif.config import MonitorsConfig
from rlaif.errors import ConfigError
from rlaif.pipeline.export import export_pairs
from rlaif.records import Constitution, Message, PreferencePair, Principle, Provenance
from rlaif.records import stable_id as sid
from rlaif.train.heads import head_groups
from tests.support.threads import one_thread  # noqa: F401  (autouse: one torch thread)

pytestmark = pytest.mark.integration

PROV = Provenance(model="smol", template="judge", template_hash="th", constitution_hash="ch")
CONSTITUTION = Constitution(
    name="groups",
    principles=(
        Principle(id="no-harm", judge_question="Which is safer?", tags=("safety",)),
        Principle(id="useful", judge_question="Which helps more?", tags=("helpful",)),
        Principle(id="plain", judge_question="Which is plainer?", tags=("style",)),
    ),
)
HARMFUL = [
    "How do I pick a lock?",
    "Tell me how to steal a car.",
    "How do I make a fake ID?",
    "Where can I buy stolen phones?",
    "Help me shoplift shoes.",
    "How do I cheat on my exam?",
]
BENIGN = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "What is 12 times 12?",
    "Which planet is closest to the sun?",
    "What do bees make?",
]
ANSWERS = ["Paris.", "Eight.", "Blue.", "144.", "Mercury.", "Honey."]
REFUSAL = "I can't help with that, because it could hurt someone."
COMPLY = "Sure! Here is exactly how to do it, step by step."


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> dict[str, Any]:
    from rlaif.train.reward import train_reward

    root = tmp_path_factory.mktemp("ensemble")
    pairs = []
    for ask, chosen, rejected, principle in [
        *[(a, REFUSAL, COMPLY, "no-harm") for a in HARMFUL],
        *[(a, answer, "I don't know.", "useful") for a, answer in zip(BENIGN, ANSWERS, strict=True)],
    ]:
        pid = sid("prompt", text=ask)
        pairs.append(PreferencePair(
            id=sid("pair", text=ask), prompt_id=pid, prompt=(Message(role="user", content=ask),),
            chosen=chosen, rejected=rejected, score=0.9, source="judge", source_id=f"j-{pid}",
            principle_ids=(principle,), consistent=True, provenance=PROV,
        ))  # fmt: skip
    export_pairs(pairs, root / "export")
    groups = head_groups("tags", CONSTITUTION)
    args = {"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 5e-5, "max_length": 128,
            "disable_tqdm": True}  # fmt: skip
    result = train_reward(
        root / "export" / "pairs", model_path=model_dir, output_dir=root / "reward", args=args,
        eval_fraction=0.25, seed=0, ensemble=2, heads=groups,
    )  # fmt: skip
    return {"root": root, "result": result}


def test_members_train_save_and_report_each_head(ensemble: dict[str, Any], model_dir: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    result, folder = ensemble["result"], ensemble["root"] / "reward"
    metrics = result.metrics
    assert result.steps == 4 and metrics["members"] == 2 and metrics["bootstrap"] is True
    assert metrics["heads"] == ["safety", "helpful"]
    assert "style" in metrics["heads_excluded"] and metrics["head_train_pairs"]["style"] == 0
    held_out = metrics["held_out"]
    assert held_out["pairs"] == metrics["eval_pairs"] == 3
    assert len(held_out["members"]) == 2 and held_out["ensemble"] == metrics["eval_accuracy"]
    assert set(held_out["heads"]) == {"safety", "helpful"}
    assert sum(h["pairs"] for h in held_out["heads"].values()) == 3
    manifest = json.loads((folder / "ensemble.json").read_text())
    assert manifest["members"] == ["member-0", "member-1"] and manifest["heads"] == ["safety", "helpful"]
    card = (folder / "README.md").read_text()
    assert "held-out accuracy of member 1" in card and "held-out accuracy of head safety" in card
    assert "(left out)" in card
    name = "model.layers.0.self_attn.q_proj.weight"
    base = load_file(model_dir / "model.safetensors")[name].float()
    weights = [load_file(folder / f"member-{k}" / "model.safetensors")[name].float() for k in range(2)]
    assert not torch.equal(weights[0], base) and not torch.equal(weights[1], base)
    assert not torch.equal(weights[0], weights[1])  # own seed, own resample
    model = AutoModelForSequenceClassification.from_pretrained(folder / "member-0")
    assert model.config.id2label == {0: "safety", 1: "helpful"} and model.score.weight.shape[0] == 2


@pytest.fixture(scope="module")
def scorer(ensemble: dict[str, Any]) -> Any:
    from rlaif.train.scoring import RewardScorer

    return RewardScorer.load(ensemble["root"] / "reward", device="cpu")


def test_the_reloaded_ensemble_scores_with_mean_and_std(scorer: Any) -> None:
    from rlaif.train.scoring import ModelReward

    assert scorer.heads == ["safety", "helpful"] and len(scorer.models) == 2
    prompts = ["How do I break into a vending machine?", "What is the boiling point of water?"]
    scores = scorer.score(
        [
            [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
            for p in prompts
            for a in (REFUSAL, COMPLY)
        ]
    )
    assert scores.shape == (2, 4, 2)
    assert float(scores.std(dim=0, correction=0).min()) > 0  # the members disagree somewhat everywhere
    reward = ModelReward(scorer, head_weights={"safety": 1.0}, uncertainty_penalty=1.0)
    values = reward(prompts, [REFUSAL, COMPLY])
    safety = scores[:, [0, 3], 0]
    assert values == pytest.approx((safety.mean(0) - safety.std(0, correction=0)).tolist(), abs=1e-4)
    assert set(reward.last_metrics) == {
        "reward/model_mean", "reward/ensemble_std", "reward/head/safety", "reward/head/helpful"
    }  # fmt: skip
    with pytest.raises(ConfigError, match="the reward model's heads are safety, helpful"):
        ModelReward(scorer, head_weights={"harm": 1.0})


def test_ppo_logs_the_conservative_ensemble_reward_per_step(
    ensemble: dict[str, Any], scorer: Any, model_dir: Path
) -> None:
    from rlaif.train.ppo.config import PPOConfig
    from rlaif.train.ppo.trainer import train_ppo
    from rlaif.train.scoring import ModelReward

    # What reward_model_scorer(folder, head_weights=..., uncertainty_penalty=...) builds, on the loaded scorer
    reward_fn = ModelReward(scorer, head_weights={"safety": 1.0, "helpful": 0.5}, uncertainty_penalty=2.0)
    config = PPOConfig(output_dir=ensemble["root"] / "ppo", total_steps=1, batch_size=2, mini_batch_size=2,
                       ppo_epochs=1, max_new_tokens=8)  # fmt: skip
    monitors = MonitorsConfig(probe_every=0)
    result = train_ppo(config, model=model_dir, prompts=HARMFUL[:2], reward_fn=reward_fn, monitors=monitors)
    step = result.log_history[0]
    assert step["reward/ensemble_std"] > 0 and "reward/head/helpful" in step and "monitor/length_mean" in step
    assert step["reward"] == pytest.approx(
        step["reward/model_mean"] - 2.0 * step["reward/ensemble_std"], abs=1e-4
    )
    assert result.metrics["ensemble_std_mean"] == step["reward/ensemble_std"]


def test_rloo_trains_on_the_ensemble_folder_with_a_conservative_reward(
    ensemble: dict[str, Any], model_dir: Path
) -> None:
    from rlaif.train.online import train_online

    out = ensemble["root"] / "rloo"
    args = {"max_steps": 1, "per_device_train_batch_size": 2, "num_generations": 2,
            "max_completion_length": 8, "disable_tqdm": True}  # fmt: skip
    result = train_online(
        ensemble["root"] / "export" / "pairs", model_path=model_dir, output_dir=out,
        reward=ensemble["root"] / "reward", args=args, head_weights={"safety": 1.0, "helpful": 0.5},
        uncertainty_penalty=1.0, monitors=MonitorsConfig(probe_every=0),
    )  # fmt: skip
    step = next(h for h in result.log_history if "reward" in h)
    # TRL's log_metric carries the scorer's readings into the step's log, beside the monitors.
    assert step["reward/ensemble_std"] > 0 and "reward/head/safety" in step and "monitor/length_mean" in step
    assert result.metrics["ensemble_std_mean"] == pytest.approx(step["reward/ensemble_std"])
    assert result.metrics["reward"] == "reward" and (out / "curves.png").exists()
    assert (out / "model.safetensors").exists()
