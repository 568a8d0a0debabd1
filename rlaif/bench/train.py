"""`rlaif train bench`: seconds per step and peak memory of every trainer, beside plain TRL on the same data.

Each measurement runs in its own process (so one trainer's memory never counts against another's)
on the run's export, with the config's `train.<name>.args` and `max_steps` set to the bench's
steps; the models go to a scratch folder, never into the run. DPO and the reward model are also
trained by `bench_plain_trl.py`, a plain TRL script with no rlaif code, given the exact settings our
trainer resolves (our defaults, then the config's args), so the two step times compare like for
like. A step's time is the median over the steps after the first (the first pays for warm-up).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif.bench.reports import TrainBench, TrainerComparison, TrainerMeasurement
from rlaif.config import RunConfig
from rlaif.errors import RlaifError
from rlaif.store import RunLayout
from rlaif.train.registry import TRAINERS as REGISTRY

__all__ = ["COMPARED", "TRAINERS", "bench_trainers"]

TRAINERS = tuple(REGISTRY)
"""Every trainer of the registry, in training order."""
COMPARED = ("reward", "dpo")
"""Trainers also measured as plain TRL scripts."""


def bench_trainers(
    config: RunConfig,
    *,
    steps: int = 6,
    trainers: Sequence[str] = TRAINERS,
    plain: bool = True,
    repeats: int = 1,
    threads: int | None = None,
    export_dir: Path | None = None,
    json_path: Path | None = None,
) -> TrainBench:
    """Measure each trainer (and plain TRL for `COMPARED`), `repeats` times each; returns the report.

    Args:
        config: the run config: its export (RUN_DIR/export unless `export_dir`) and `train` sections.
        steps: optimizer steps per measurement (at least 2: the first is left out of the median).
        trainers: which of sft, reward, dpo, kto, online, ppo.
        plain: also run the plain TRL script for reward and dpo.
        repeats: measurements per trainer, alternating ours and plain TRL; the report keeps each
            one and compares the medians.
        threads: torch threads in every measurement (None: torch's default).
        export_dir: the export folder (with `pairs/` and `sft/`).
        json_path: write the report here.
    """
    from rlaif.backends.serving import model_path
    from rlaif.bench.generation import hardware

    unknown = set(trainers) - set(TRAINERS)
    if unknown:
        raise RlaifError(f"unknown trainer(s) {sorted(unknown)}; choose from {', '.join(TRAINERS)}")
    if steps < 2:
        raise RlaifError("--steps must be at least 2 (the first step is warm-up and left out)")
    export = Path(export_dir) if export_dir else RunLayout(Path(config.run_dir)).export
    scratch = Path(tempfile.mkdtemp(prefix="rlaif-bench-train-"))
    try:
        # The scratch folder is a run directory whose export is the one measured.
        RunLayout(scratch).export.symlink_to(export.resolve(), target_is_directory=True)
        if not RunLayout(scratch).export_pairs.exists():
            raise RlaifError(
                f"no exported pairs in {export}; run `rlaif run CONFIG` (or `rlaif export`) first"
            )
        report = TrainBench(
            hardware=hardware(), steps=steps, threads=threads, repeats=repeats, export=str(export),
            model=str(model_path(config.model)),
        )  # fmt: skip
        model = report.model
        ordered = [t for t in TRAINERS if t in trainers]
        online = config.train.online
        if (
            "online" in ordered
            and online.reward == "model"
            and not online.reward_model
            and "reward" not in ordered
        ):
            ordered.insert(0, "reward")  # online RL scores with the reward model this bench trains
        for name in ordered:
            for _ in range(repeats):
                ours = _child(_ours_spec(config, name, steps, scratch, model, threads), scratch)
                report.trainers.setdefault(name, []).append(ours)
                if plain and name in COMPARED:
                    theirs = _child(_plain_spec(config, name, steps, scratch, model, threads), scratch)
                    report.plain_trl.setdefault(name, []).append(theirs)
        for name in COMPARED:
            ours_runs, plain_runs = report.trainers.get(name, []), report.plain_trl.get(name, [])
            a_times = [r.seconds_per_step for r in ours_runs if r.seconds_per_step is not None]
            b_times = [r.seconds_per_step for r in plain_runs if r.seconds_per_step is not None]
            if a_times and b_times:
                a, b = statistics.median(a_times), statistics.median(b_times)
                report.comparison[name] = TrainerComparison(
                    rlaif_seconds_per_step=a,
                    plain_trl_seconds_per_step=b,
                    ratio=a / b,
                    within_5_percent=abs(a / b - 1) <= 0.05,
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return report


def _ours_spec(
    config: RunConfig, name: str, steps: int, scratch: Path, model: str, threads: int | None
) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["base_dir"] = config.base_dir
    if name != "ppo":
        section = data["train"][name]
        section["args"] = {**section["args"], "max_steps": steps, "save_strategy": "no", "logging_steps": 1}
        if name == "reward":
            section["eval_fraction"] = 0.0  # the same rows as plain TRL's, and no evaluation passes
    return {"kind": "rlaif", "trainer": name, "config": data, "run_path": str(scratch), "model": model,
            "steps": steps, "threads": threads}  # fmt: skip


def _plain_spec(
    config: RunConfig, name: str, steps: int, scratch: Path, model: str, threads: int | None
) -> dict[str, Any]:
    """The exact TRL keywords our trainer resolves for `name`, for the plain script."""
    import dataclasses

    from trl import DPOConfig, RewardConfig

    from rlaif.train import dpo, reward
    from rlaif.train.common import training_defaults

    config_class, ours = (DPOConfig, dpo.DEFAULTS) if name == "dpo" else (RewardConfig, reward.DEFAULTS)
    section = getattr(config.train, name)
    merged = {**training_defaults(scratch), **ours, **({"seed": config.seed} if name == "reward" else {})}
    names = {f.name for f in dataclasses.fields(config_class)}
    settings = {k: v for k, v in merged.items() if k in names and k != "output_dir"}
    settings.update(section.args)
    settings.update({"max_steps": steps, "save_strategy": "no", "logging_steps": 1})
    return {"kind": "plain", "trainer": name, "data": str(RunLayout(scratch).export_pairs),
            "sources": list(section.sources), "model": model, "output": str(scratch / "plain" / name),
            "settings": settings, "threads": threads}  # fmt: skip


def _child(spec: dict[str, Any], scratch: Path) -> TrainerMeasurement:
    """Run one measurement in a fresh process; its result, or why it failed."""
    spec_path = scratch / f"spec-{spec['kind']}-{spec['trainer']}.json"
    result_path = scratch / f"result-{spec['kind']}-{spec['trainer']}.json"
    result_path.unlink(missing_ok=True)
    spec = {**spec, "result": str(result_path)}
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    if spec["kind"] == "plain":
        command = [sys.executable, str(Path(__file__).with_name("plain_trl.py")), str(spec_path)]
    else:
        command = [sys.executable, "-m", "rlaif.bench.train", str(spec_path)]
    env = dict(os.environ)
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    log_path = scratch / f"log-{spec['kind']}-{spec['trainer']}.txt"
    started = time.perf_counter()
    with log_path.open("w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - started
    if code != 0 or not result_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        return TrainerMeasurement(error=f"exit code {code}", log_tail=tail, wall_seconds=wall)
    result = TrainerMeasurement.model_validate_json(result_path.read_text())
    timed = result.step_seconds[1:]
    if timed:
        result.seconds_per_step = statistics.median(timed)
        result.seconds_per_step_mean = statistics.fmean(timed)
    result.wall_seconds = wall
    return result


def _run_ours(spec: dict[str, Any]) -> TrainerMeasurement:
    """In the child: train one of our trainers and describe it."""
    from rlaif.memory import PeakMemory, peak_rss_gib

    config = RunConfig.model_validate(spec["config"])
    run_path = Path(spec["run_path"])
    with PeakMemory() as memory:
        if spec["trainer"] == "ppo":
            result = _run_ppo(config, run_path, spec["model"], spec["steps"])
        else:
            from rlaif.train.registry import train_stage

            trained = train_stage(spec["trainer"], config, run_path, model=spec["model"])
            result = TrainerMeasurement(
                steps=trained.steps, seconds=trained.seconds, step_seconds=trained.step_seconds,
                losses=trained.losses, metrics=trained.metrics,
            )  # fmt: skip
    result.peak_rss_gib = peak_rss_gib()
    result.peak_tree_gib = memory.peak_gib
    return result


def _run_ppo(config: RunConfig, run_path: Path, model: str, steps: int) -> TrainerMeasurement:
    """Our PPO on the export's prompts, scored by the reward model this bench trained when there is one,
    else by a length rule (the bench measures time and memory, not learning)."""
    from rlaif.train.common import load_export
    from rlaif.train.ppo.config import PPOConfig
    from rlaif.train.ppo.rollout import pair_prompts, reward_model_scorer
    from rlaif.train.ppo.trainer import train_ppo
    from rlaif.train.scoring import is_reward_model

    layout = RunLayout(run_path)
    prompts = pair_prompts(load_export(layout.export_pairs))
    folder = layout.model("reward")
    if is_reward_model(folder):
        reward_fn = reward_model_scorer(folder)
    else:

        def reward_fn(prompts: list[str], completions: list[str]) -> list[float]:
            return [min(len(c.split()), 40) / 40 for c in completions]

    ppo = PPOConfig(
        output_dir=layout.model("ppo"), total_steps=steps, batch_size=4, mini_batch_size=2,
        ppo_epochs=2, max_new_tokens=32, seed=config.seed,
    )  # fmt: skip
    metrics = train_ppo(ppo, model=model, prompts=prompts, reward_fn=reward_fn)
    settings = ppo.model_dump(
        mode="json", include={"batch_size", "mini_batch_size", "ppo_epochs", "max_new_tokens"}
    )
    return TrainerMeasurement(
        steps=len(metrics),
        seconds=sum(m.get("seconds", 0.0) for m in metrics),
        step_seconds=[m.get("seconds", 0.0) for m in metrics],
        settings=settings,
    )


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec.get("threads"):
        import torch

        torch.set_num_threads(spec["threads"])
    result = _run_ours(spec)
    Path(spec["result"]).write_text(result.model_dump_json(fallback=str), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
