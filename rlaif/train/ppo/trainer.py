"""PPO from AI feedback, on plain torch and transformers (TRL 1.16 ships no PPO trainer).

One step: sample completions → score them → penalise those without EOS → log-probs of policy and reference,
values → per-token rewards (score minus KL penalty) → GAE → whitened advantages → `ppo_epochs` passes of
clipped policy and value losses over minibatches → KL controller update. The value head is a Linear on the
policy's last hidden state (shared backbone: one model in memory, not two). The arithmetic is in
`train.ppo.math`; rollout generation and scoring are pluggable (`train.ppo.rollout`).
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from rlaif.config import MonitorsConfig
from rlaif.errors import ConfigError
from rlaif.train.common import CURVES, save_dtype, save_pretrained_as
from rlaif.train.curves import plot_curves
from rlaif.train.model_card import write_model_card
from rlaif.train.monitors import Monitor
from rlaif.train.ppo.config import PPOConfig
from rlaif.train.ppo.math import (
    AdaptiveKLController,
    FixedKLController,
    KLController,
    entropy_from_logits,
    gae,
    kl_k1,
    masked_mean,
    masked_whiten,
    policy_loss,
    shape_rewards,
    value_loss,
)
from rlaif.train.ppo.rollout import HFGenerator, RewardFn, RolloutGenerator, step_metrics
from rlaif.train.reports import TrainResult

__all__ = ["PPOTrainer", "train_ppo"]

METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"


class PPOTrainer:
    """Holds the policy, value head, frozen reference, optimizer and KL controller of one run."""

    def __init__(
        self,
        config: PPOConfig,
        *,
        model: str | Path,
        reward_fn: RewardFn,
        generator: RolloutGenerator | None = None,
        monitors: MonitorsConfig | None = None,
        prompt_tags: dict[str, str] | None = None,
    ) -> None:
        """Load `model` (a Hugging Face folder or hub id) as policy and, frozen, as reference.

        `generator` defaults to `HFGenerator` on the policy; a replacement must follow the policy's weights.
        `monitors` turns on the reward-hacking monitors (`train.monitors`); `prompt_tags` (prompt -> tag)
        gives them KL per tag.
        """
        self.config = config
        self.reward_fn = reward_fn
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch.manual_seed(config.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.base_model = model  # the final model is saved as the base was where that keeps the update
        # fp32: updates of lr ~1e-5 vanish in bf16 weights.
        self.policy: PreTrainedModel = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        self.policy.to(self.device).eval()  # eval: no dropout, so rollout and update log-probs agree
        self.ref = copy.deepcopy(self.policy).requires_grad_(False)
        # Zero init: values start at 0 and send no gradient into the shared backbone at first.
        self.value_head = torch.nn.Linear(self.policy.config.get_text_config().hidden_size, 1).to(self.device)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)
        self.params = [*self.policy.parameters(), *self.value_head.parameters()]
        # fused: one kernel for all tensors, ~5x faster than the default on CPU.
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, eps=1e-5, fused=True)
        self.kl_controller: KLController = (
            FixedKLController(config.init_kl_coef)
            if config.target_kl is None
            else AdaptiveKLController(config.init_kl_coef, config.target_kl, config.kl_horizon)
        )
        self.eos_token_ids = _eos_ids(self.policy, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = self.eos_token_ids[0] if pad is None else pad
        self.generator = generator or HFGenerator(
            self.policy,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            eos_token_ids=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
        )
        self.step_count = 0
        self.monitor = (
            Monitor(monitors, answer=self._answer, tags=prompt_tags)
            if monitors is not None and monitors.enabled
            else None
        )

    def _answer(self, prompts: list[str]) -> list[str]:
        self.policy.eval()
        completions = self.generator.generate([self.encode_prompt(p) for p in prompts])
        return list(self.tokenizer.batch_decode(completions, skip_special_tokens=True))

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of `prompt` as the policy sees it (a user turn, if `use_chat_template`)."""
        if self.config.use_chat_template and self.tokenizer.chat_template is not None:
            prompt = str(
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
                )
            )
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def step(self, prompts: list[str]) -> dict[str, float]:
        """One PPO step on these prompts (one rollout each); returns the step's metrics."""
        cfg = self.config
        started = time.perf_counter()
        prompt_ids = [self.encode_prompt(p) for p in prompts]
        self.policy.eval()
        completions = self.generator.generate(prompt_ids)
        texts = self.tokenizer.batch_decode(completions, skip_special_tokens=True)
        scores = self._score(prompts, texts)
        readings = step_metrics(self.reward_fn)  # e.g. an ensemble's disagreement, per-head rewards
        ended = torch.tensor([bool(c) and c[-1] in self.eos_token_ids for c in completions])
        penalised = scores.clone()
        if cfg.missing_eos_penalty is not None:
            penalised[~ended] -= cfg.missing_eos_penalty

        batch = _collate(prompt_ids, completions, self.pad_token_id, self.device)
        mask = batch["response_mask"]
        with torch.no_grad():
            logprobs, values, entropy = self._forward(self.policy, batch, with_values=True, with_entropy=True)
            ref_logprobs, _, _ = self._forward(self.ref, batch)
        assert values is not None and entropy is not None
        kl_coef = self.kl_controller.value
        rewards = shape_rewards(penalised.to(self.device), logprobs, ref_logprobs, mask, kl_coef=kl_coef)
        advantages, returns = gae(rewards, values, mask, gamma=cfg.gamma, lam=cfg.lam)
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, mask)

        totals: dict[str, float] = {
            "policy_loss": 0.0,
            "value_loss": 0.0,
            "clip_fraction": 0.0,
            "value_clip": 0.0,
        }
        updates = 0
        for _ in range(cfg.ppo_epochs):
            for rows in torch.randperm(len(prompts)).split(cfg.mini_batch_size):
                rows = rows.to(self.device)
                sub = {key: value[rows] for key, value in batch.items() if key != "context"}
                sub["context"] = batch["context"]
                new_logprobs, new_values, new_entropy = self._forward(
                    self.policy, sub, with_values=True, with_entropy=cfg.ent_coef > 0
                )
                assert new_values is not None
                pg_loss, clip_fraction = policy_loss(
                    new_logprobs, logprobs[rows], advantages[rows], mask[rows], clip=cfg.cliprange
                )
                vf_loss, value_clip = value_loss(
                    new_values, values[rows], returns[rows], mask[rows], clip=cfg.cliprange_value
                )
                loss = pg_loss + cfg.vf_coef * vf_loss
                if new_entropy is not None:
                    loss = loss - cfg.ent_coef * masked_mean(new_entropy, mask[rows])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                for key, value in (
                    ("policy_loss", pg_loss),
                    ("value_loss", vf_loss),
                    ("clip_fraction", clip_fraction),
                    ("value_clip", value_clip),
                ):
                    totals[key] += value.item()
                updates += 1

        # Sequence KL (summed k1), the quantity Ziegler et al.'s controller targets.
        kl_rows = (kl_k1(logprobs, ref_logprobs) * mask).sum(dim=1)
        kl = float(kl_rows.mean())
        self.kl_controller.update(kl, n_steps=len(prompts))
        self.step_count += 1
        monitored = {}
        if self.monitor is not None:
            monitored = self.monitor.observe(self.step_count, prompts, texts, kl_rows=kl_rows.tolist())
        return {
            "step": self.step_count,
            "reward": float(scores.mean()),
            "reward_std": float(scores.std()) if len(prompts) > 1 else 0.0,
            "kl": kl,
            "kl_coef": kl_coef,
            "entropy": float(masked_mean(entropy, mask)),
            "response_length": float(mask.sum(dim=1).mean()),
            "eos_fraction": float(ended.float().mean()),
            **{key: total / updates for key, total in totals.items()},
            **readings,
            **monitored,
            "seconds": time.perf_counter() - started,
        }

    def train(self, prompts: Sequence[str], *, resume: bool = False) -> list[dict[str, float]]:
        """Run to `total_steps`, logging to `output_dir/metrics.jsonl`; returns every step's metrics.

        With `resume=True` the newest checkpoint (if any) is loaded first and metrics logged after it are
        dropped, so a run killed anywhere and resumed logs each step exactly once.
        """
        cfg = self.config
        if not prompts:
            raise ConfigError("train_ppo got no prompts; pass at least one prompt string")
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = self.latest_checkpoint() if resume else None
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        elif not resume:
            # A fresh run in a used directory: an old run's checkpoints must not be resumed into this one.
            shutil.rmtree(cfg.output_dir / CHECKPOINTS_DIR, ignore_errors=True)
        history = [m for m in _read_metrics(cfg.output_dir / METRICS_FILE) if m["step"] <= self.step_count]
        _write_metrics(cfg.output_dir / METRICS_FILE, history)
        if self.monitor is not None:
            self.monitor.resume(history)
        while self.step_count < cfg.total_steps and not (self.monitor and self.monitor.stop):
            # Prompt choice depends only on (seed, step): a resumed run picks what the original would have.
            rng = random.Random(cfg.seed * 1_000_003 + self.step_count)
            if len(prompts) >= cfg.batch_size:
                batch = rng.sample(list(prompts), cfg.batch_size)
            else:
                batch = rng.choices(list(prompts), k=cfg.batch_size)
            metrics = self.step(batch)
            history.append(metrics)
            with (cfg.output_dir / METRICS_FILE).open("a") as file:
                file.write(json.dumps(metrics) + "\n")
            if cfg.save_every and self.step_count % cfg.save_every == 0:
                self.save_checkpoint()
        self.save_model(cfg.output_dir / "model", dtype=save_dtype(self.policy, self.base_model))
        plot_curves(history, cfg.output_dir / "model" / CURVES, title="PPO")
        return history

    def save_model(self, path: str | Path, *, dtype: torch.dtype | None = None) -> Path:
        """Write the policy (in `dtype`; None: as it is in memory) and tokenizer as a Hugging Face folder
        that `AutoModelForCausalLM` loads."""
        path = Path(path)
        save_pretrained_as(self.policy, path, dtype)
        self.tokenizer.save_pretrained(path)
        torch.save(self.value_head.state_dict(), path / "value_head.pt")
        return path

    def save_checkpoint(self) -> Path:
        """Save everything needed to continue: weights, optimizer, KL controller, step and RNG states."""
        root = self.config.output_dir / CHECKPOINTS_DIR
        final = root / f"step-{self.step_count:06d}"
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        self.save_model(partial / "policy")
        state = {
            "step": self.step_count,
            "value_head": self.value_head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "kl_controller": self.kl_controller.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "python": random.getstate(),
            },
        }
        torch.save(state, partial / "trainer_state.pt")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)  # a checkpoint directory without ".partial" is always complete
        for old in sorted(root.glob("step-??????"))[: -self.config.keep_checkpoints]:
            shutil.rmtree(old)
        return final

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint in `output_dir`, if any."""
        found = sorted((self.config.output_dir / CHECKPOINTS_DIR).glob("step-??????"))
        return found[-1] if found else None

    def load_checkpoint(self, path: Path) -> None:
        """Restore the state written by `save_checkpoint`."""
        loaded = AutoModelForCausalLM.from_pretrained(path / "policy", dtype=torch.float32)
        self.policy.load_state_dict(loaded.state_dict())
        del loaded
        state = torch.load(path / "trainer_state.pt", map_location=self.device, weights_only=True)
        self.value_head.load_state_dict(state["value_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_controller.load_state_dict(state["kl_controller"])
        self.step_count = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        random.setstate(state["rng"]["python"])

    def _score(self, prompts: list[str], completions: list[str]) -> torch.Tensor:
        scores = [float(s) for s in self.reward_fn(prompts, completions)]
        if len(scores) != len(completions):
            raise ConfigError(
                f"the reward function returned {len(scores)} scores for {len(completions)} completions; "
                "it must return one float per completion"
            )
        tensor = torch.tensor(scores, dtype=torch.float32)
        if not torch.isfinite(tensor).all():
            raise ConfigError(f"the reward function returned a non-finite score: {scores}")
        return tensor

    def _forward(
        self,
        model: PreTrainedModel,
        batch: dict[str, Any],
        *,
        with_values: bool = False,
        with_entropy: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Per-response-token log-probs (at the sampling temperature), and optionally values and entropy."""
        context, response = batch["context"], batch["response_ids"]
        width = response.shape[1]
        output = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            output_hidden_states=with_values,
            logits_to_keep=width + 1,  # the logits that predict response tokens, and no prompt ones
            use_cache=False,
        )
        logits = output.logits[:, :-1].float() / self.config.temperature
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        values = None
        if with_values:
            hidden = output.hidden_states[-1][:, context - 1 : context - 1 + width]
            values = self.value_head(hidden.float()).squeeze(-1)
        entropy = entropy_from_logits(logits) if with_entropy else None
        return logprobs, values, entropy


def train_ppo(
    config: PPOConfig,
    *,
    model: str | Path,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    generator: RolloutGenerator | None = None,
    resume: bool = False,
    monitors: MonitorsConfig | None = None,
    prompt_tags: dict[str, str] | None = None,
    constitution: str | None = None,
) -> TrainResult:
    """Train `model` with PPO against `reward_fn` on `prompts`; the model goes to `config.output_dir/model`
    (in the base model's dtype) with its curves (`curves.png`) and a model card (`constitution`: the run's).

    The result's `log_history` holds every step's metrics (also in `config.output_dir/metrics.jsonl`),
    with the `monitor/*` readings when `monitors` is given (drawn with the curves).
    """
    trainer = PPOTrainer(
        config,
        model=model,
        reward_fn=reward_fn,
        generator=generator,
        monitors=monitors,
        prompt_tags=prompt_tags,
    )
    metrics = trainer.train(prompts, resume=resume)
    first, last = (metrics[0], metrics[-1]) if metrics else ({}, {})
    spread = [m["reward/ensemble_std"] for m in metrics if "reward/ensemble_std" in m]
    result = TrainResult(
        trainer="ppo",
        output_dir=Path(config.output_dir) / "model",
        steps=len(metrics),
        seconds=sum(m.get("seconds", 0.0) for m in metrics),
        losses=[m["policy_loss"] for m in metrics if "policy_loss" in m],
        log_history=list(metrics),
        metrics={
            "prompts": len(prompts),
            "reward_first": first.get("reward"),
            "reward_last": last.get("reward"),
            "kl_last": last.get("kl"),
            "ensemble_std_mean": sum(spread) / len(spread) if spread else None,
            "kl_coef_last": last.get("kl_coef"),
            "monitor_alerts": int(sum(m.get("monitor/alerts") or 0 for m in metrics)),
            "stopped_by_monitor": bool(trainer.monitor and trainer.monitor.stop),
        },
        step_seconds=[m.get("seconds", 0.0) for m in metrics],
    )
    write_model_card(
        result, label="PPO", base_model=model, trainer="rlaif's own PPO (clipped policy and value losses, "
        f"GAE, {'adaptive' if config.target_kl is not None else 'fixed'} KL penalty to the start model)",
        summary="A policy trained by rlaif with PPO against a reward (a reward model trained on AI-feedback "
        "pairs, the constitution's checks, or a function).",
        data={"prompts": len(prompts), "reward": getattr(reward_fn, "__name__", type(reward_fn).__name__),
              "log history": f"{Path(config.output_dir) / METRICS_FILE}"},
        constitution=constitution or "not recorded", settings=config.model_dump(mode="json"),
    )  # fmt: skip
    return result


def _collate(
    prompts: list[list[int]], completions: list[list[int]], pad_token_id: int, device: torch.device
) -> dict[str, Any]:
    """`[pad… prompt | completion …pad]` rows: every response starts at column `context`.

    Masks come from the lengths, never from comparing ids with the pad id (pad may equal EOS).
    """
    context = max(len(p) for p in prompts)
    width = max(1, max(len(c) for c in completions))
    rows = len(prompts)
    input_ids = torch.full((rows, context + width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    response_mask = torch.zeros((rows, width), dtype=torch.float32)
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        start = context - len(prompt)
        input_ids[row, start : context + len(completion)] = torch.tensor(
            prompt + completion, dtype=torch.long
        )
        attention_mask[row, start : context + len(completion)] = 1
        response_mask[row, : len(completion)] = 1.0
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    return {
        "context": context,
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "position_ids": position_ids.to(device),
        "response_ids": input_ids[:, context:].to(device),
        "response_mask": response_mask.to(device),
    }


def _eos_ids(model: PreTrainedModel, tokenizer: Any) -> list[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    ids = [i for i in [*ids, tokenizer.eos_token_id] if i is not None]
    if not ids:
        raise ConfigError("the model has no EOS token id; set eos_token_id in its generation_config.json")
    return list(dict.fromkeys(ids))


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_metrics(path: Path, metrics: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(m) + "\n" for m in metrics))
