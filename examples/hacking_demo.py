"""Reward hacking, caught: PPO on a reward model that learned "longer is better", with and without guards.

1. The bundled model answers 48 training prompts; each answer makes a pair where the whole answer is
   chosen and its first sentence rejected, so the only thing a reward model can learn is length. The
   pairs' prompts and PPO's ask for one short sentence (`ASK`): a reward model that still prefers the
   longer answer is the classic hackable reward, and the policy's answers start short enough to grow.
2. An ensemble of reward models (3 members, bootstrap resamples, rlaif's `train_reward`, TRL's
   RewardTrainer) is trained on those pairs.
3. Our PPO optimises that reward in separate runs from the same start and seed (`ARMS`):
   - unguarded: the members' mean; the monitors measure and warn, nothing stops the run;
   - conservative: mean - 1.0 * std of the members (`train.ppo.uncertainty_penalty`);
   - early stop: the mean, with `train.monitors.stop_on_alert`: the run ends at the first alert.
4. Answer length (words), reward and KL per step go to examples/results/hacking.json and a chart, hacking.png.

    python examples/hacking_demo.py [--steps 12] [--out examples/results]

On 2 quiet CPU cores the whole demo takes about 20 minutes; on a GPU a few. Nothing here is scored by a
person or a judge: length is counted, which is exactly why it is a clean signal of this hack.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "examples" / "concise_train.jsonl"
PPO_PROMPTS = 32
PAIR_PROMPTS = 48
MAX_NEW_TOKENS = 96
ANSWER_TOKENS = 128
"""The reward model's pairs come from answers to the plain prompts (no `ASK`), up to this long."""
ASK = "Answer in one short sentence: "
"""Put before every prompt: the base model then answers in ~26 words (measured on 16 prompts)."""
DRIFT = 0.3
"""The length monitor's alert: mean answer length moved 30% from the run's first step."""


def _prompts() -> list[str]:
    rows = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["prompt"] for row in rows]


def _generate(model_path: Path, prompts: list[str], *, seed: int = 0) -> list[str]:
    """One sampled answer per prompt from the base model, in batches (transformers `generate`)."""
    import torch

    from rlaif.train.common import load_policy

    torch.manual_seed(seed)
    model, tokenizer = load_policy(model_path)
    tokenizer.padding_side = "left"
    answers: list[str] = []
    for start in range(0, len(prompts), 16):
        batch = prompts[start : start + 16]
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in batch
        ]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **encoded, max_new_tokens=ANSWER_TOKENS, do_sample=True, temperature=0.8, top_p=0.95,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        width = encoded["input_ids"].shape[1]
        answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]
    return answers


def _first_sentence(text: str) -> str:
    """The answer cut to its first sentence (or its first third of words when it is one long sentence)."""
    match = re.match(r"(.+?[.!?])(\s|$)", text, flags=re.S)
    words = text.split()
    if match and len(match.group(1).split()) < len(words) * 0.6:
        return match.group(1).strip()
    return " ".join(words[: max(3, len(words) // 3)])


def _length_pairs(prompts: list[str], answers: list[str], folder: Path) -> int:
    """A pairs dataset where the longer answer always wins, in the export's columns."""
    from datasets import Dataset

    rows = []
    for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        short = _first_sentence(answer)
        if len(answer.split()) < 12 or len(short.split()) >= len(answer.split()):
            continue
        rows.append(
            {
                "id": f"len-{i}", "prompt_id": f"p{i}", "source": "judge", "score": 1.0,
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": answer}],
                "rejected": [{"role": "assistant", "content": short}],
            }
        )  # fmt: skip
    Dataset.from_list(rows).save_to_disk(str(folder))
    return len(rows)


def _words(texts: list[str]) -> float:
    return statistics.mean(len(t.split()) for t in texts) if texts else 0.0


MEMBERS = 3
ARMS: dict[str, tuple[float, bool]] = {
    "unguarded": (0.0, False),
    "conservative": (1.0, False),
    "early stop": (0.0, True),
}
"""Each arm's (uncertainty penalty, stop on alert); the PPO settings, start and seed are shared."""


def _ppo(
    arm: str, model_path: Path, prompts: list[str], reward_dir: Path, out: Path, steps: int
) -> dict[str, Any]:
    from rlaif.config import MonitorsConfig
    from rlaif.train.ppo.config import PPOConfig
    from rlaif.train.ppo.rollout import reward_model_scorer
    from rlaif.train.ppo.trainer import train_ppo

    penalty, stop = ARMS[arm]
    reward_fn = reward_model_scorer(reward_dir, max_length=512, uncertainty_penalty=penalty)
    config = PPOConfig(
        output_dir=out / arm.replace(" ", "-"), batch_size=4, mini_batch_size=2,
        ppo_epochs=2, max_new_tokens=MAX_NEW_TOKENS, init_kl_coef=0.02, seed=0, total_steps=steps,
        learning_rate=3e-5,
    )  # fmt: skip
    monitors = MonitorsConfig(probe_every=0, length_drift=DRIFT, stop_on_alert=stop)
    started = time.perf_counter()
    result = train_ppo(config, model=model_path, prompts=prompts, reward_fn=reward_fn, monitors=monitors)
    history = result.log_history
    lengths = [h["monitor/length_mean"] for h in history]
    first_alert = next((h["step"] for h in history if h.get("monitor/alerts")), None)
    seconds = time.perf_counter() - started
    return {
        "steps": len(history),
        "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(1, len(history)), 1),
        # ru_maxrss only grows: this is the process's peak up to the end of this arm (KiB on Linux).
        "peak_rss_gib_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "stopped_by_monitor": bool(result.metrics.get("stopped_by_monitor")),
        "first_alert_step": first_alert,
        "length_words": lengths,
        "length_drift_last": history[-1].get("monitor/length_drift") if history else None,
        "length_first_3": statistics.mean(lengths[:3]),
        "length_last_3": statistics.mean(lengths[-3:]),
        "reward": [h["reward"] for h in history],
        "reward_mean": [h.get("reward/model_mean", h["reward"]) for h in history],
        "ensemble_std": [h.get("reward/ensemble_std") for h in history],
        "kl": [h["kl"] for h in history],
    }


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for arm, run in results["arms"].items():
        steps = range(1, run["steps"] + 1)
        axes[0].plot(steps, run["length_words"], marker="o", ms=3, label=arm)
        axes[1].plot(steps, run["reward_mean"], marker="o", ms=3, label=arm)
        axes[2].plot(steps, run["ensemble_std"], marker="o", ms=3, label=arm)
        axes[3].plot(steps, run["kl"], marker="o", ms=3, label=arm)
    start = results["base_length_words"]
    axes[0].axhline(
        start * (1 + results["length_drift_threshold"]), color="red", ls="--", lw=1, label="alert"
    )
    for ax, title in zip(
        axes,
        ("answer length (words)", "reward models' mean score", "members' disagreement (std)", "KL to start"),
        strict=True,
    ):
        ax.set_title(title)
        ax.set_xlabel("PPO step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("PPO on a reward model that learned 'longer is better'")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "results")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "hacking-demo")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms to run")
    parser.add_argument("--replot", action="store_true", help="redraw OUT/hacking.png from OUT/hacking.json")
    args = parser.parse_args(argv)
    if args.replot:
        _plot(json.loads((args.out / "hacking.json").read_text()), args.out / "hacking.png")
        return 0

    import torch

    # Everything is imported up front: a run takes a while, and modules loaded late would be whatever
    # the checkout holds by then.
    import rlaif.train.ppo.trainer  # noqa: F401
    from rlaif.backends.bundled import ensure_model
    from rlaif.train.reward import train_reward

    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    model_path = ensure_model()
    prompts = _prompts()
    ppo_prompts = [ASK + p for p in prompts[:PPO_PROMPTS]]
    pair_prompts = prompts[PPO_PROMPTS : PPO_PROMPTS + PAIR_PROMPTS]

    print(f"[1/3] the base model answers {len(pair_prompts)} prompts", file=sys.stderr)
    cached = args.work / "answers.json"  # generating is the slow part on a CPU; a rerun reuses it
    answers = json.loads(cached.read_text()) if cached.exists() else _generate(model_path, pair_prompts)
    cached.write_text(json.dumps(answers))
    pairs = _length_pairs([ASK + p for p in pair_prompts], answers, args.work / "pairs")
    print(f"[2/3] {MEMBERS} reward models on {pairs} pairs where the longer answer wins", file=sys.stderr)
    reward_dir = args.work / "reward"
    started = time.perf_counter()
    trained = train_reward(
        args.work / "pairs", model_path=model_path, output_dir=reward_dir, eval_fraction=0.25,
        ensemble=MEMBERS, bootstrap=True,
        args={"max_steps": 6, "per_device_train_batch_size": 8, "max_length": 256, "learning_rate": 3e-5},
    )  # fmt: skip

    results: dict[str, Any] = {
        "pairs": pairs,
        "reward_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_gib_after_reward": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "ensemble_heldout_accuracy": trained.metrics.get("eval_accuracy"),
        "member_heldout_accuracy": trained.metrics.get("member_eval_accuracy"),
        "pair_answer_words": _words(answers),
        "length_drift_threshold": DRIFT,
        "ppo_prompts": len(ppo_prompts),
        "max_new_tokens": MAX_NEW_TOKENS,
        "arms": {},
    }
    chosen = [a.strip() for a in args.arms.split(",") if a.strip()]
    for i, arm in enumerate(chosen, 1):
        print(f"[3/3] PPO, {arm} ({i}/{len(chosen)}), {args.steps} steps", file=sys.stderr)
        results["arms"][arm] = _ppo(arm, model_path, ppo_prompts, reward_dir, args.work, args.steps)
        run = results["arms"][arm]
        print(
            f"  {arm}: length {run['length_first_3']:.1f} -> {run['length_last_3']:.1f} words over "
            f"{run['steps']} steps; first alert at step {run['first_alert_step']}",
            file=sys.stderr,
        )
    # Every arm starts from the same model, seed and prompts, so their first steps sample the same answers.
    results["base_length_words"] = statistics.mean(run["length_words"][0] for run in results["arms"].values())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hacking.json").write_text(json.dumps(results, indent=2) + "\n")
    _plot(results, args.out / "hacking.png")
    print(f"wrote {args.out / 'hacking.json'} and {args.out / 'hacking.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
