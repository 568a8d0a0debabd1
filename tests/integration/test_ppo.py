"""PPO on the bundled model against a rule reward: it learns, stays near the reference, saves and resumes.

The reward is +1 when the completion starts with "The" and 0 otherwise. The untrained model does so about
a fifth of the time, so the reward has variance from the first batch, and the behaviour is decided by the
first sampled token, which PPO learns in a few steps. Measured on 2 shared CPU cores: see `STEPS` below.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from rlaif.backends.bundled import ensure_model
from rlaif.train.ppo.config import PPOConfig
from rlaif.train.ppo.trainer import PPOTrainer, train_ppo

pytestmark = pytest.mark.integration

PROMPTS = [
    "Name a color.",
    "What is 2+2?",
    "Say hello.",
    "Name an animal.",
    "What is the capital of France?",
    "Give me a fruit.",
    "Tell me a joke.",
    "What day comes after Monday?",
    "Describe the sea.",
    "Who wrote Hamlet?",
    "What is water made of?",
    "Name a planet.",
]
STEPS = 12
SAVE_EVERY = 6


def starts_with_the(prompts: list[str], completions: list[str]) -> list[float]:
    return [1.0 if c.lstrip().startswith("The") else 0.0 for c in completions]


@pytest.fixture(scope="module")
def model_path() -> Path:
    torch.set_num_threads(2)
    return ensure_model()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> PPOConfig:
    return PPOConfig(
        output_dir=tmp_path_factory.mktemp("ppo"),
        learning_rate=3e-5,
        batch_size=8,
        mini_batch_size=4,
        ppo_epochs=2,
        max_new_tokens=8,
        init_kl_coef=0.05,
        target_kl=2.0,
        kl_horizon=200,
        seed=0,
        total_steps=STEPS,
        save_every=SAVE_EVERY,
    )


@pytest.fixture(scope="module")
def run(model_path: Path, config: PPOConfig) -> dict[str, Any]:
    started = time.perf_counter()
    result = train_ppo(config, model=model_path, prompts=PROMPTS, reward_fn=starts_with_the)
    metrics = result.log_history
    elapsed = time.perf_counter() - started
    print(f"\nPPO: {STEPS} steps in {elapsed:.0f} s ({elapsed / STEPS:.1f} s/step)")
    for m in metrics:
        print(json.dumps({k: round(v, 3) for k, v in m.items()}))
    return {"metrics": metrics, "seconds": elapsed}


def test_reward_rises_and_kl_stays_bounded(run: dict[str, Any]) -> None:
    rewards = [m["reward"] for m in run["metrics"]]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 0.25, f"reward did not rise: first {first:.3f}, last {last:.3f} ({rewards})"
    kls = [m["kl"] for m in run["metrics"]]
    assert max(kls) < 10.0, f"policy drifted from the reference: KL {kls}"


def test_metrics_are_logged_per_step(run: dict[str, Any], config: PPOConfig) -> None:
    lines = (config.output_dir / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert [m["step"] for m in logged] == list(range(1, STEPS + 1))
    expected = {
        "reward",
        "kl",
        "kl_coef",
        "entropy",
        "response_length",
        "clip_fraction",
        "value_loss",
        "policy_loss",
    }
    assert expected <= logged[0].keys()
    assert all(0 < m["response_length"] <= config.max_new_tokens for m in logged)
    # The adaptive controller moved the coefficient away from its start.
    assert logged[-1]["kl_coef"] != pytest.approx(config.init_kl_coef, rel=1e-6)


def test_saved_model_loads_and_differs_from_the_start(
    run: dict[str, Any], model_path: Path, config: PPOConfig
) -> None:
    trained = AutoModelForCausalLM.from_pretrained(config.output_dir / "model", dtype=torch.float32)
    initial = load_file(str(model_path / "model.safetensors"))
    state = trained.state_dict()
    changed = [
        name for name, tensor in initial.items() if not torch.equal(state[name], tensor.to(torch.float32))
    ]
    assert len(changed) > len(initial) // 2, f"only {len(changed)} of {len(initial)} tensors changed"
    assert (config.output_dir / "model" / "tokenizer_config.json").exists()
    # Saved as the base is stored (bf16) unless rounding would erase the update (then fp32, as trained),
    # with the curves and a card beside it.
    final = load_file(str(config.output_dir / "model" / "model.safetensors"))
    assert len({t.dtype for t in final.values()}) == 1 and {t.dtype for t in final.values()} <= {
        torch.bfloat16,
        torch.float32,
    }
    assert (config.output_dir / "model" / "curves.png").read_bytes().startswith(b"\x89PNG")
    card = (config.output_dir / "model" / "README.md").read_text()
    assert f"- base model: `{model_path}`" in card and "- reward: starts_with_the" in card


def test_resume_continues_from_the_last_checkpoint(
    run: dict[str, Any], model_path: Path, config: PPOConfig
) -> None:
    checkpoints = sorted((config.output_dir / "checkpoints").iterdir())
    assert [c.name for c in checkpoints] == ["step-000006", "step-000012"]

    longer = config.model_copy(update={"total_steps": STEPS + 1})
    trainer = PPOTrainer(longer, model=model_path, reward_fn=starts_with_the)
    trainer.load_checkpoint(checkpoints[-1])
    final = load_file(str(config.output_dir / "model" / "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    # The checkpoint keeps fp32 weights (resuming in bf16 would lose small updates); the final model is them,
    # rounded to the base's bf16 where that keeps the update.
    assert trainer.policy.state_dict()[name].dtype == torch.float32
    assert torch.equal(trainer.policy.state_dict()[name].to(final[name].dtype), final[name])
    assert trainer.kl_controller.value != pytest.approx(config.init_kl_coef, rel=1e-6)
    assert trainer.optimizer.state_dict()["state"], "optimizer moments were not restored"

    trainer = PPOTrainer(longer, model=model_path, reward_fn=starts_with_the)
    metrics = trainer.train(PROMPTS, resume=True)
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 2))
    assert metrics[:STEPS] == run["metrics"]
    # The step after the checkpoint uses the controller state the checkpoint carried: Ziegler's update
    # applied to the last step's KL.
    last = run["metrics"][-1]
    error = min(max(last["kl"] / config.target_kl - 1, -0.2), 0.2)
    expected = last["kl_coef"] * (1 + error * config.batch_size / config.kl_horizon)
    assert metrics[STEPS]["kl_coef"] == pytest.approx(expected, rel=1e-9)
    assert trainer.step_count == STEPS + 1


def test_reward_model_scorer_is_padding_invariant(model_path: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlaif.train.ppo.rollout import reward_model_scorer

    # An untrained head is enough: the point is that scores do not depend on batch-mates' lengths.
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, dtype=torch.float32)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(model_path).save_pretrained(tmp_path)
    score = reward_model_scorer(tmp_path, batch_size=3, device="cpu")
    prompts = ["Name a color.", "What is the capital of France? Answer briefly.", "Hi"]
    completions = ["Blue.", "The capital of France is Paris, a city on the Seine.", "Hello! How can I help?"]
    together = score(prompts, completions)
    alone = [score([p], [c])[0] for p, c in zip(prompts, completions, strict=True)]
    assert together == pytest.approx(alone, abs=1e-4)
    assert len(set(together)) == 3
