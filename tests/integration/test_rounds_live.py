"""`rlaif iterate` for real: two tiny rounds on the bundled model, each round served by its own managed
vLLM server (round 2 serves round 1's DPO model), DPO for 2 steps, the held-out compliance with KL, a
red-team ask between the rounds; SIGKILLed inside round 2 (its judging, export or training), then rerun:
round 1 is not redone, no stored record of round 2 is lost or written twice, and the loop ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.chaos import ROOT, environment, line_count, snapshot, stored

pytestmark = [pytest.mark.slow, pytest.mark.chaos]  # its own vLLM servers (three starts) and two trainings


def _config(folder: Path) -> Path:
    config = {
        "run_dir": str(folder / "run"),
        "constitution": "concise-plain",
        "prompts": {"path": str(ROOT / "examples" / "concise_train.jsonl"), "limit": 8},
        "seed": 0,
        "model": {"max_concurrency": 16},
        "generation": {"samples_per_prompt": 4, "max_tokens": 96, "temperature": 0.8},
        "revise": {"enabled": False},
        "judge": {"both_orders": True, "checks": "exact", "probes": {"share": 0.0}},
        "quality": {"min_pairs": 1, "min_probe_accuracy": None},
        "train": {"dpo": {"sources": ["check"], "args": {
            "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 5e-5, "max_length": 160,
            "beta": 0.1, "warmup_steps": 0, "save_strategy": "no"}}},
        "iterate": {
            "rounds": 2, "heldout": str(ROOT / "examples" / "concise_heldout.jsonl"), "heldout_limit": 3,
            "prompts_per_round": 4, "red_team": {"prompts": 2, "max_tokens": 32},
        },
    }  # fmt: skip
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", "iterate", str(config), "--quiet", "--json", str(out)]


def test_two_rounds_killed_inside_round_two_resume_with_nothing_lost_or_redone(tmp_path: Path) -> None:
    started = time.monotonic()
    config, out = _config(tmp_path), tmp_path / "report.json"
    run = tmp_path / "run"
    second = run / "rounds" / "2"
    process = subprocess.Popen(
        _command(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=environment(), cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    killed_in = None
    try:
        while process.poll() is None and time.monotonic() - started < 900:
            if line_count(second / "judgments.jsonl") >= 1 or (second / "export").exists():
                killed_in = "judging" if not (second / "export").exists() else "export or training"
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert killed_in is not None, f"the run ended before round 2 judged: {process.stderr.read()[-2000:]}"  # type: ignore[union-attr]
    first_done = (run / "rounds/1/round.json").read_text()
    first_weights = (run / "rounds/1/models/dpo/model.safetensors").stat().st_mtime_ns
    before = stored(second)
    assert not (second / "round.json").exists() and not out.exists()

    again = subprocess.run(
        _command(config, out), capture_output=True, text=True, env=environment(), cwd=ROOT, timeout=900
    )
    assert again.returncode == 0, again.stderr[-3000:]
    seconds = time.monotonic() - started
    # round 1 was neither regenerated, retrained nor re-evaluated
    assert (run / "rounds/1/round.json").read_text() == first_done
    assert (run / "rounds/1/models/dpo/model.safetensors").stat().st_mtime_ns == first_weights
    # every record round 2 stored before the kill is there once, unchanged
    after = snapshot(second)
    for name, records in before.items():
        for record_id, record in records.items():
            assert after[name].get(record_id) == record, f"{name} {record_id} lost or rewritten"
    report = json.loads(out.read_text())
    assert report["status"] == "done" and [r["round"] for r in report["rounds"]] == [1, 2]
    one, two = report["rounds"]
    assert two["started_from"] == str((run / "rounds/1/models/dpo").resolve())
    assert one["pairs"] >= 1 and two["pairs"] >= 1 and two["train_steps"] == 2
    assert two["kl_per_token"] is not None and one["kl_per_token"] is not None
    every = two["pass_rates"]["every check"]
    assert every["n"] == 3 and report["base_rates"]["every check"]["n"] == 3
    red = two["red_team"]
    assert red["asked"] == 2 and red["kept"] + sum(red["dropped"].values()) == 2
    assert two["prompts"] == 4 + red["kept"]
    assert report["best_round"] in (1, 2) and Path(report["plot"]).stat().st_size > 1000
    # round 2 trained on from round 1's weights, not from the base
    from safetensors.torch import load_file

    name = "model.layers.0.self_attn.q_proj.weight"
    w1 = load_file(run / "rounds/1/models/dpo/model.safetensors")[name].float()
    w2 = load_file(run / "rounds/2/models/dpo/model.safetensors")[name].float()
    assert not bool((w1 == w2).all())
    print(f"two rounds, killed in round 2's {killed_in}, resumed: {seconds:.0f} s")
