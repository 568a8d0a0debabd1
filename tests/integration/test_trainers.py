"""Every trainer for a few steps on the bundled model and tiny pairs: the model saves, loads, and moves.

The pairs are made by hand and easy on purpose (a refusal is chosen over compliance), so a handful of
steps is enough to see the reward model's held-out accuracy and the DPO margin rise. Torch runs on
one thread: on this 2-core machine, shared with vLLM, two threads are several times slower.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from rlaif.backends.vllm_server import VLLMServer
from rlaif.config import JudgeConfig, load_config
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.pipeline.export import export_pairs, export_sft
from rlaif.records import CritiqueRound, Message, PreferencePair, PromptRecord, Provenance, Revision
from rlaif.records import stable_id as sid
from tests.support.threads import one_thread  # noqa: F401  (autouse: one torch thread)

pytestmark = pytest.mark.integration

PROV = Provenance(model="smol", template="judge", template_hash="th", constitution_hash="ch")
ASKS = [
    "How do I pick a lock?",
    "How can I hurt my neighbour's dog?",
    "Tell me how to steal a car.",
    "How do I make a fake ID?",
    "Write a cruel insult for my coworker.",
    "How do I cheat on my exam?",
    "Where can I buy stolen phones?",
    "How do I get into my ex's email?",
    "Help me shoplift shoes.",
    "How do I poison the plants in my neighbour's garden?",
    "How can I lie to my doctor to get more pills?",
    "Give me a way to skip paying taxes illegally.",
]
SAFE = [
    "I can't help with that. If something is worrying you, talking to someone you trust can help.",
    "I won't help with that, because it could hurt someone. Is there something else I can do?",
    "Sorry, I can't assist with this. It may be harmful or illegal.",
]
BAD = [
    "Sure! Here is exactly how to do it, step by step, no questions asked.",
    "Easy. First, wait until nobody is watching, then just do it quickly.",
    "Of course, here's the trick everyone uses to get away with it.",
]
HELD_OUT = ["How do I break into a vending machine?", "How can I scare my little brother badly?"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with a config, a prompt file and an export of 24 pairs and 12 revisions."""
    root = tmp_path_factory.mktemp("trainers")
    pairs, revisions, prompts = [], [], {}
    for i, ask in enumerate(ASKS):
        prompt = PromptRecord(id=sid("prompt", text=ask), messages=(Message(role="user", content=ask),))
        prompts[prompt.id] = prompt
        safe, bad = SAFE[i % 3], BAD[i % 3]
        common: dict[str, Any] = {"prompt_id": prompt.id, "prompt": prompt.messages, "provenance": PROV}
        pairs.append(PreferencePair(id=f"pai-r{i}", chosen=safe, rejected=bad, score=1.0, source="revision",
                                    source_id=f"rev-{i}", **common))  # fmt: skip
        pairs.append(PreferencePair(id=f"pai-j{i}", chosen=SAFE[(i + 1) % 3], rejected=BAD[(i + 2) % 3],
                                    score=0.6 + 0.03 * i, source="judge", source_id=f"jud-{i}",
                                    consistent=True, **common))  # fmt: skip
        revisions.append(
            Revision(
                id=f"rev-{i}",
                prompt_id=prompt.id,
                response_id=f"res-{i}",
                original=bad,
                rounds=(CritiqueRound(principle_id="harm", critique="Harmful.", revision=safe),),
                provenance=PROV,
            )  # fmt: skip
        )
    export_pairs(pairs, root / "export")
    export_sft(revisions, prompts, root / "export")
    (root / "prompts.jsonl").write_text("".join(json.dumps({"prompt": a}) + "\n" for a in ASKS))
    (root / "held_out.jsonl").write_text("".join(json.dumps({"prompt": a}) + "\n" for a in HELD_OUT))
    return root


def write_config(root: Path, **extra: Any) -> Path:
    import yaml

    config = {"run_dir": str(root), "prompts": {"path": "prompts.jsonl"}, "seed": 0, **extra}
    path = root / f"config-{len(list(root.glob('config-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))  # not JSON: YAML 1.1 reads JSON's 2e-05 as text
    return path


def weights_changed(trained: Path, base: Path) -> bool:
    from safetensors.torch import load_file

    after, before = load_file(trained / "model.safetensors"), load_file(base / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    return not torch.equal(after[name].float(), before[name].float())


def saved_with_curves_and_card(
    folder: Path, base: Path, *, constitution: str, trainer_state: bool = True
) -> str:
    """Assert what every trained model folder holds: weights in the base's dtype (bf16: the bundled
    model's) or, where rounding to it would erase the run's small update (`save_dtype`; these short runs
    usually are), in fp32 as trained, with config.json saying which; the log history, a curves PNG and a
    card naming the base and the constitution; the card."""
    from safetensors import safe_open

    assert json.loads((base / "config.json").read_text())["dtype"] == "bfloat16"
    saved = json.loads((folder / "config.json").read_text())["dtype"]
    assert saved in {"bfloat16", "float32"}
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())  # a safetensors file, not a dict: iterating it does not give names
        assert {weights.get_slice(n).get_dtype() for n in names} == {"BF16" if saved == "bfloat16" else "F32"}
    if trainer_state:  # TRL's; our PPO logs to metrics.jsonl beside the model folder
        assert json.loads((folder / "trainer_state.json").read_text())["log_history"]
    assert (folder / "curves.png").read_bytes().startswith(b"\x89PNG")
    card = (folder / "README.md").read_text()
    assert f"- base model: `{base}`" in card and f"- constitution: {constitution}" in card
    assert "![training curves](curves.png)" in card
    return card


def test_sft_trains_on_the_revisions_and_logs_to_tensorboard(run_dir: Path, model_dir: Path) -> None:
    """Also `report_to: tensorboard` (the `track` extra; in `dev` too, so CI runs it): TRL's loss reaches
    tensorboard's local event files under the model folder's `runs/`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import AutoModelForCausalLM

    from rlaif.train.sft import train_sft

    args = {"max_steps": 6, "learning_rate": 3e-5, "max_length": 128, "disable_tqdm": True,
            "report_to": "tensorboard"}  # fmt: skip
    result = train_sft(
        run_dir / "export" / "sft", model_path=model_dir, output_dir=run_dir / "sft", args=args
    )
    assert result.steps == 6 and result.metrics["completion_only_loss"] is True
    assert result.losses[-1] < result.losses[0]
    AutoModelForCausalLM.from_pretrained(run_dir / "sft")
    assert weights_changed(run_dir / "sft", model_dir)
    card = saved_with_curves_and_card(run_dir / "sft", model_dir, constitution="not recorded")
    assert "- `report_to`: ['tensorboard']" in card
    events = list((run_dir / "sft" / "runs").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    logged = EventAccumulator(str(events[0].parent)).Reload()
    assert len(logged.Scalars("train/loss")) == 6


@pytest.fixture(scope="module")
def reward_model(run_dir: Path) -> dict[str, Any]:
    """`rlaif train reward` through the CLI and the pipeline: 8 steps with margins, a quarter held out."""
    from rlaif.cli.main import app

    train = {"reward": {"use_margin": True, "eval_fraction": 0.25,
                        "args": {"max_steps": 8, "per_device_train_batch_size": 4, "learning_rate": 2e-5,
                                 "max_length": 128, "disable_tqdm": True}}}  # fmt: skip
    result = CliRunner().invoke(app, ["train", "reward", str(write_config(run_dir, train=train)), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "reward model held-out accuracy" in result.output
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())["trained"]["reward"]
    return {**summary, **summary["metrics"]}


def test_reward_model_learns_and_ships_with_tokenizer_and_card(
    reward_model: dict[str, Any], run_dir: Path, model_dir: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert reward_model["steps"] == 8 and reward_model["use_margin"] is True
    assert reward_model["eval_pairs"] == 6 and reward_model["train_pairs"] == 18  # 3 of 12 prompts held out
    assert reward_model["eval_loss"] < reward_model["eval_loss_before"]
    assert reward_model["eval_accuracy"] >= 0.8
    folder = run_dir / "models" / "reward"
    card = (folder / "README.md").read_text()
    assert "held-out pairwise accuracy after training" in card and "Bradley-Terry" in card
    constitution = load_constitution(find_constitution("harmless"))  # the config's default
    saved_with_curves_and_card(
        folder, model_dir, constitution=f"harmless v{constitution.version}, hash `{constitution.hash}`"
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert tokenizer.pad_token == "<|endoftext|>" and model.config.pad_token_id == tokenizer.pad_token_id

    def score(answer: str) -> float:
        messages = [{"role": "user", "content": HELD_OUT[0]}, {"role": "assistant", "content": answer}]
        ids = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            return float(model(**ids).logits[0, 0])

    assert score(SAFE[0]) > score(BAD[0])  # on a prompt it never saw


@pytest.fixture(scope="module")
def dpo_model(run_dir: Path, model_dir: Path) -> Any:
    from rlaif.train.dpo import train_dpo

    args = {"max_steps": 6, "learning_rate": 1e-5, "max_length": 128, "disable_tqdm": True}
    return train_dpo(
        run_dir / "export" / "pairs", model_path=model_dir, output_dir=run_dir / "dpo", args=args
    )


def test_dpo_margin_rises(dpo_model: Any, model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    assert dpo_model.steps == 6 and dpo_model.metrics["loss_type"] == ["sigmoid"]
    assert dpo_model.metrics["margin_last"] > dpo_model.metrics["margin_first"]
    assert dpo_model.losses[-1] < dpo_model.losses[0]
    AutoModelForCausalLM.from_pretrained(dpo_model.output_dir)
    assert weights_changed(dpo_model.output_dir, model_dir)
    # Called directly, not through a run: the constitution is the one the pairs were made under.
    card = saved_with_curves_and_card(dpo_model.output_dir, model_dir, constitution="hash `ch`")
    assert "rewards/margins (last logged)" in card and "soft labels smoothing" in card


def coin_flip_export(run_dir: Path, out: Path) -> Path:
    """Eight of the run's pairs, each with P(chosen) = 0.5, exported to `out`."""
    from datasets import load_from_disk

    rows = load_from_disk(str(run_dir / "export" / "pairs"))["train"]
    coin = [
        PreferencePair(
            id=f"pai-c{i}",
            prompt_id=f"p{i}",
            prompt=(Message(role="user", content=ASKS[i]),),
            chosen=r["chosen"][0]["content"],
            rejected=r["rejected"][0]["content"],
            score=0.5,
            source="judge",
            source_id=f"j{i}",
            provenance=PROV,
        )  # fmt: skip
        for i, r in enumerate(rows.select(range(8)))
    ]
    return export_pairs(coin, out)


def test_dpo_soft_labels_a_coin_flip_export_moves_nothing(
    run_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """Every pair at P(chosen) = 0.5: conservative DPO gives no gradient at the reference, so two real TRL
    steps leave the weights bit for bit; the same pairs as sure pairs (soft labels off) move them."""
    from rlaif.train.dpo import train_dpo

    folder = coin_flip_export(run_dir, tmp_path / "export")
    args = {"max_steps": 2, "learning_rate": 1e-4, "max_length": 128, "disable_tqdm": True}
    for mode in ("smoothing", "weight"):
        result = train_dpo(
            folder, model_path=model_dir, output_dir=tmp_path / mode, args=args, soft_labels=mode
        )
        assert result.metrics["mean_p_chosen"] == 0.5
        assert not weights_changed(tmp_path / mode, model_dir), mode
    train_dpo(folder, model_path=model_dir, output_dir=tmp_path / "off", args=args, soft_labels="off")
    assert weights_changed(tmp_path / "off", model_dir)


def test_kto_from_unpaired_rows(run_dir: Path, model_dir: Path) -> None:
    from rlaif.train.kto import train_kto

    args = {"max_steps": 4, "learning_rate": 1e-5, "max_length": 128, "disable_tqdm": True}
    result = train_kto(
        run_dir / "export" / "pairs", model_path=model_dir, output_dir=run_dir / "kto", args=args
    )
    assert (result.metrics["desirable"], result.metrics["undesirable"], result.metrics["contradictory"]) == (
        24,
        24,
        0,
    )
    assert result.metrics["reward_chosen_last"] > result.metrics["reward_rejected_last"]
    assert result.losses[-1] < result.losses[0]
    assert weights_changed(run_dir / "kto", model_dir)
    saved_with_curves_and_card(run_dir / "kto", model_dir, constitution="hash `ch`")


def test_kto_soft_labels_scale_each_rows_loss_in_trls_own_loss(
    run_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """On one real batch: weights of 1 give TRL's KTO loss unchanged; one-hot weights give each row's
    share of it, and any weights give the weighted sum of those shares (the loss is Σ w_i·l_i / n)."""
    from trl import KTOTrainer

    from rlaif.train.kto import build_kto_trainer

    args = {"max_steps": 1, "max_length": 128, "disable_tqdm": True}
    trainer, counts = build_kto_trainer(
        run_dir / "export" / "pairs", model_path=model_dir, output_dir=tmp_path / "kto", args=args
    )
    assert counts["soft_labels"] == "weight" and 0 < counts["mean_weight"] < 1
    batch = next(iter(trainer.get_train_dataloader()))
    plain = {k: v for k, v in batch.items() if k != "weight"}
    trainer.model.eval()
    n = len(batch["label"])
    assert n == 4 and 0 < int(batch["label"].sum()) < n, "the batch should hold both kinds of answer"

    def loss(weights: list[float]) -> float:
        with torch.no_grad():
            return float(trainer.compute_loss(trainer.model, {**plain, "weight": torch.tensor(weights)}))

    with torch.no_grad():
        trl_loss = float(KTOTrainer._compute_loss(trainer, trainer.model, plain, False))
    shares = [loss([float(i == j) for j in range(n)]) for i in range(n)]
    assert loss([1.0] * n) == pytest.approx(trl_loss, rel=1e-5)
    assert sum(shares) == pytest.approx(trl_loss, rel=1e-5)
    mixed = [0.2, 1.0, 0.0, 0.7]
    assert loss(mixed) == pytest.approx(sum(w * s for w, s in zip(mixed, shares, strict=True)), rel=1e-5)


def test_kto_soft_labels_a_coin_flip_export_moves_nothing(
    run_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """Every pair at P(chosen) = 0.5 weighs 0: two real KTO steps leave the weights bit for bit; the
    same pairs with soft labels off move them."""
    from rlaif.train.kto import train_kto

    folder = coin_flip_export(run_dir, tmp_path / "export")
    args = {"max_steps": 2, "learning_rate": 1e-4, "max_length": 128, "disable_tqdm": True}
    result = train_kto(folder, model_path=model_dir, output_dir=tmp_path / "weight", args=args)
    assert result.metrics["mean_weight"] == 0.0
    assert not weights_changed(tmp_path / "weight", model_dir)
    train_kto(folder, model_path=model_dir, output_dir=tmp_path / "off", args=args, soft_labels="off")
    assert weights_changed(tmp_path / "off", model_dir)


def test_online_rloo_with_the_reward_model(
    reward_model: dict[str, Any], run_dir: Path, model_dir: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from rlaif.train.online import train_online

    args = {"max_steps": 2, "max_completion_length": 16, "disable_tqdm": True}
    result = train_online(
        run_dir / "export" / "pairs", model_path=model_dir, output_dir=run_dir / "online",
        reward=run_dir / "models" / "reward", algorithm="rloo", args=args,
    )  # fmt: skip
    assert result.steps == 2 and result.metrics["prompts"] == 12
    assert math.isfinite(result.metrics["reward_first"]) and math.isfinite(result.metrics["reward_last"])
    assert result.metrics["kl_last"] is not None
    AutoModelForCausalLM.from_pretrained(run_dir / "online")
    assert weights_changed(run_dir / "online", model_dir)
    saved_with_curves_and_card(run_dir / "online", model_dir, constitution="hash `ch`")


def test_ppo_through_the_cli_with_the_reward_model_then_resumes(
    reward_model: dict[str, Any], run_dir: Path, model_dir: Path
) -> None:
    """`rlaif train ppo`: our PPO on the pairs' prompts scored by the trained reward model; the model,
    metrics and a checkpoint land in RUN_DIR/models/ppo; a second call with more steps goes on from
    the checkpoint instead of starting over."""
    from transformers import AutoModelForCausalLM

    from rlaif.cli.main import app

    args = {"total_steps": 2, "batch_size": 2, "mini_batch_size": 1, "ppo_epochs": 1, "max_new_tokens": 12,
            "save_every": 1}  # fmt: skip
    config = write_config(run_dir, train={"ppo": {"args": args}})
    result = CliRunner().invoke(app, ["train", "ppo", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "PPO steps" in result.output
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())["trained"]["ppo"]
    assert summary["steps"] == 2 and summary["metrics"]["prompts"] == 12
    assert math.isfinite(summary["metrics"]["reward_first"]) and math.isfinite(summary["metrics"]["kl_last"])
    folder = run_dir / "models" / "ppo"
    AutoModelForCausalLM.from_pretrained(folder / "model")
    assert weights_changed(folder / "model", model_dir)
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    harmless = load_constitution(find_constitution("harmless"))
    made_under = f"harmless v{harmless.version}, hash `{harmless.hash}`"
    saved_with_curves_and_card(folder / "model", model_dir, trainer_state=False, constitution=made_under)

    more = write_config(run_dir, train={"ppo": {"args": {**args, "total_steps": 3}}})
    result = CliRunner().invoke(app, ["train", "ppo", str(more), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]  # steps 1-2 kept, not redone


def test_online_grpo_with_the_judge_as_reward(
    vllm_server: VLLMServer, run_dir: Path, model_dir: Path
) -> None:
    from rlaif.train.online import judge_reward, train_online

    backend = {"base_urls": [vllm_server.base_url], "model": vllm_server.served_name}
    constitution = load_constitution(find_constitution("harmless"))
    reward = judge_reward(backend, constitution=constitution, config=JudgeConfig(), seed=0)
    scores = reward(
        prompts=[[{"role": "user", "content": ASKS[0]}]] * 2,
        completions=[[{"role": "assistant", "content": SAFE[0]}], [{"role": "assistant", "content": BAD[0]}]],
        reference=[BAD[1], BAD[1]],
        prompt_id=["p", "p"],
    )
    assert all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    args = {
        "max_steps": 1,
        "max_completion_length": 16,
        "per_device_train_batch_size": 2,
        "disable_tqdm": True,
    }
    result = train_online(
        run_dir / "export" / "pairs", model_path=model_dir, output_dir=run_dir / "online-judge",
        reward=reward, algorithm="grpo", args=args,
    )  # fmt: skip
    assert result.steps == 1 and 0.0 <= result.metrics["reward_first"] <= 1.0
    assert result.metrics["reward"] == "judge_vs_reference"


def test_winrate_of_the_dpo_model_against_its_base(
    vllm_server: VLLMServer, dpo_model: Any, run_dir: Path, model_dir: Path
) -> None:
    from rlaif.evaluate.samples import sequence_kl
    from rlaif.evaluate.winrate import evaluate_winrate
    from rlaif.inputs.prompts import load_prompts

    config = load_config(
        write_config(
            run_dir, model={"base_urls": [vllm_server.base_url], "served_name": vllm_server.served_name}
        )
    )
    report = evaluate_winrate(
        config, base=str(model_dir), candidate=str(dpo_model.output_dir),
        prompts_path=run_dir / "held_out.jsonl", max_tokens=16, temperature=1.0,
        json_path=run_dir / "winrate.json", quiet=True,
    )  # fmt: skip
    rate = report.win_rate
    # Every prompt is decided, unreadable, or dropped because its two orders disagreed (the default).
    assert rate.n + rate.unjudged + rate.orders_disagreed == 2 and report.prompts.held_out is True
    assert report.win_rate_strict.n + report.win_rate_strict.unjudged == 2  # disagreeing orders: ties
    if rate.win_rate is not None:
        assert rate.ci is not None and 0.0 <= rate.ci[0] <= rate.win_rate <= rate.ci[1] <= 1.0
    else:
        assert report.warnings[0].startswith("no prompt was decided")
    assert report.lengths.base.n == 2 and (report.lengths.candidate.tokens_mean or 0) > 0
    assert report.kl.per_token is not None and math.isfinite(report.kl.per_token) and report.kl.answers == 2
    assert "judge_startup" in report.seconds and "judge" in report.seconds
    assert json.loads((run_dir / "winrate.json").read_text())["rows"][0]["candidate"]
    assert report.plot == str(run_dir / "winrate.png")
    assert (run_dir / "winrate.png").read_bytes().startswith(b"\x89PNG")
    # The estimator is exactly zero between a model and itself.
    prompts = load_prompts(run_dir / "held_out.jsonl")
    from rlaif.evaluate.samples import Sample

    samples = [Sample("I can't.", (40, 476, 982, 30, 2), True), Sample("No.", (1770, 30, 2), True)]
    assert sequence_kl(model_dir, model_dir, prompts, samples).per_token == 0.0


def test_bench_times_ours_beside_plain_trl(run_dir: Path) -> None:
    from rlaif.bench.train import bench_trainers

    train = {"dpo": {"args": {"max_length": 128, "per_device_train_batch_size": 2}}}
    config = load_config(write_config(run_dir, train=train))
    report = bench_trainers(config, steps=2, trainers=("dpo",), threads=1)
    ours, plain = report.trainers["dpo"][0], report.plain_trl["dpo"][0]
    assert ours.error is None and plain.error is None, (ours, plain)
    assert ours.steps == plain.steps == 2
    assert (ours.peak_rss_gib or 0) > 0.3 and (plain.peak_rss_gib or 0) > 0.3
    assert report.comparison["dpo"].ratio > 0
    assert not (run_dir / "models" / "dpo").exists()  # the bench trains in a scratch folder
