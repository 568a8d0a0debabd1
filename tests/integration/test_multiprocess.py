"""Training on several processes, for real: `torchrun --nproc_per_node 2` on this CPU machine (gloo),
the bundled model, the tiny export of `test_trainers`, one step. Rank 0 locks the run folder and
writes; rank 1 waits for its word, trains beside it and writes nothing. The world size each rank's
trainer saw is read from its log line and from the summary and card, not inferred from the exit code.

And LoRA (`train.model.use_peft`) on the bundled model: the adapter is saved, the base is unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.integration.test_trainers import run_dir, write_config  # noqa: F401  (the export fixture)
from tests.support.threads import one_thread  # noqa: F401  (autouse: one torch thread)

pytestmark = pytest.mark.slow  # several real processes, each loading the model: minutes

ARGS = {"max_steps": 1, "max_length": 64, "per_device_train_batch_size": 1, "disable_tqdm": True}


def torchrun(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`torchrun --standalone --nproc_per_node 2 -m rlaif.cli.main ARGS`, one torch thread per rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "rlaif.cli.main", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def assert_both_ranks_trained(done: subprocess.CompletedProcess[str], name: str, root: Path) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for rank in (0, 1):
        assert (
            f"rlaif: rank {rank} of 2: trained {name}, 1 steps; the trainer's world size was 2" in done.stderr
        )
    assert done.stdout.count("rlaif run summary") == 1  # rank 0 alone prints it
    assert "in use by another rlaif process" not in done.stderr
    trained = json.loads((root / "summary.json").read_text())["trained"][name]
    assert trained["metrics"]["world_size"] == 2 and trained["steps"] == 1


def test_dpo_on_two_processes_then_rerun(run_dir: Path) -> None:  # noqa: F811
    config = write_config(run_dir, train={"dpo": {"args": ARGS}})
    done = torchrun("train", "dpo", str(config), "--quiet")
    assert_both_ranks_trained(done, "dpo", run_dir)
    folder = run_dir / "models" / "dpo"
    card = (folder / "README.md").read_text()
    assert "- processes: 2 (world size); effective batch 1 × 1 × 2 = 2" in card
    assert json.loads((folder / "trainer_state.json").read_text())["global_step"] == 1
    # "Rerun to resume": the same launch again takes the lock again (rank 0 only) and trains.
    first = (folder / "model.safetensors").stat().st_mtime_ns
    again = torchrun("train", "dpo", str(config), "--quiet")
    assert_both_ranks_trained(again, "dpo", run_dir)
    assert (folder / "model.safetensors").stat().st_mtime_ns != first


def test_reward_model_on_two_processes(run_dir: Path) -> None:  # noqa: F811
    config = write_config(run_dir, train={"reward": {"eval_fraction": 0.25, "args": ARGS}})
    done = torchrun("train", "reward", str(config), "--quiet")
    assert_both_ranks_trained(done, "reward", run_dir)
    folder = run_dir / "models" / "reward"
    assert json.loads((folder / "config.json").read_text())["architectures"] == [
        "LlamaForSequenceClassification"
    ]
    metrics = json.loads((run_dir / "summary.json").read_text())["trained"]["reward"]["metrics"]
    assert metrics["eval_pairs"] > 0 and metrics["eval_accuracy"] is not None  # evaluated across both ranks


def test_rank_0_refusing_is_one_line_on_every_rank(run_dir: Path) -> None:  # noqa: F811
    config = write_config(run_dir, train={"model": {"load_in_4bit": True}})
    done = torchrun("train", "dpo", str(config), timeout=300)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, done.stderr
    errors.sort(key=lambda line: "rank 1 of 2" in line)  # the two ranks write in either order
    assert errors[0].startswith("error: train.model.load_in_4bit needs bitsandbytes")
    assert errors[1].startswith("error: rank 1 of 2: rank 0 stopped before training: train.model.")
    ours = done.stderr.split("torch/distributed/elastic")[0]  # then torchrun's own report of the exit
    assert "Traceback" not in ours and "terminate called" not in done.stderr


def test_dpo_with_lora_saves_the_adapter_and_keeps_the_base(
    run_dir: Path,  # noqa: F811
    model_dir: Path,
) -> None:
    """LoRA through `rlaif train dpo`: an adapter folder, the base weights untouched (the adapter off
    gives the base's logits exactly), the adapter on moves them, and the card says LoRA and how."""
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lora = {"use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
            "lora_target_modules": ["q_proj", "v_proj"]}  # fmt: skip
    args = {**ARGS, "max_steps": 2, "learning_rate": 1e-3}
    config = write_config(run_dir, train={"model": lora, "dpo": {"args": args}})
    from typer.testing import CliRunner

    from rlaif.cli.main import app

    folder = run_dir / "models" / "dpo"
    shutil.copytree(model_dir, folder, dirs_exist_ok=True)  # full weights from an earlier run
    result = CliRunner().invoke(app, ["train", "dpo", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["peft_type"]) == (4, 8, "LORA")
    assert not (folder / "model.safetensors").exists()  # an adapter, not a copy of the base
    assert not (folder / "config.json").exists()  # else transformers reads it as a full model
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        names = list(weights.keys())  # noqa: SIM118 (not a dict)
        assert names and all("lora_" in n for n in names)
        assert any(weights.get_tensor(n).abs().sum() > 0 for n in names if "lora_B" in n)  # B starts at 0
    card = (folder / "README.md").read_text()
    assert "- model loading: LoRA (peft " in card
    assert "r 4, alpha 8, dropout 0.0, target modules ['q_proj', 'v_proj']; the reference is the base" in card

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer("How do I pick a lock?", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        before = base(**ids).logits
        tuned = PeftModel.from_pretrained(base, folder)
        after = tuned(**ids).logits
        with tuned.disable_adapter():
            off = tuned(**ids).logits
    assert torch.equal(off, before)
    assert not torch.allclose(after, before)
    with torch.no_grad():  # transformers loads the adapter folder as a model (the base from its config)
        loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)(**ids).logits
    assert torch.allclose(loaded, after, atol=1e-5)


LORA_ARGS = {
    "sft": ARGS,
    "kto": {**ARGS, "per_device_train_batch_size": 2},  # TRL's KTO refuses a batch of 1
    "reward": ARGS,
    "online": {
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "num_generations": 2,
        "max_completion_length": 8,
        "disable_tqdm": True,
    },  # fmt: skip
}
"""One step of every other TRL trainer; online RL scored by the concise constitution's checks."""


@pytest.mark.parametrize("name", sorted(LORA_ARGS))
def test_every_trl_trainer_takes_lora(run_dir: Path, name: str) -> None:  # noqa: F811
    """`train.model.use_peft` reaches SFT, KTO, the reward model and online RL: each saves an adapter
    (the reward model's a sequence-classification one with its score head) and says so in its card."""
    from typer.testing import CliRunner

    from rlaif.cli.main import app

    lora = {"use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_target_modules": ["q_proj", "v_proj"]}
    section: dict[str, object] = {"args": LORA_ARGS[name]}
    extra: dict[str, object] = {}
    if name == "reward":
        section["eval_fraction"] = 0
    if name == "online":
        section["reward"] = "checks"
        extra["constitution"] = "concise-plain"
    config = write_config(run_dir, train={"model": lora, name: section}, **extra)
    result = CliRunner().invoke(app, ["train", name, str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    folder = run_dir / "models" / name
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["task_type"] == ("SEQ_CLS" if name == "reward" else "CAUSAL_LM")
    assert (folder / "adapter_model.safetensors").exists() and not (folder / "model.safetensors").exists()
    if name == "reward":
        from safetensors import safe_open

        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
            assert any("score" in n for n in weights.keys())  # noqa: SIM118 (not a dict)
    assert "- model loading: LoRA (peft " in (folder / "README.md").read_text()
