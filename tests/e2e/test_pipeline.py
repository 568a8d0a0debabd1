"""The whole pipeline through the CLI on a tiny slice: 4 prompts, 1 round, judge, export, 2 DPO steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RLAIF = [sys.executable, "-m", "rlaif.cli"]

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _config(tmp_path: Path, **extra: object) -> Path:
    config = {
        "run_dir": str(tmp_path / "run"),
        "constitution": "harmless",
        "prompts": {"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": 4},
        "generation": {"max_tokens": 48},
        "revise": {"rounds": 1, "max_tokens": 48},
        "train": {"dpo": {"args": {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 384}}},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_pipeline_end_to_end_on_a_running_server(tmp_path: Path, vllm_server, model_dir: Path) -> None:
    config = _config(
        tmp_path, model={"base_urls": [vllm_server.base_url], "served_name": vllm_server.served_name}
    )
    done = subprocess.run(
        [*RLAIF, "run", str(config), "--quiet"], capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    counts = summary["counts"]
    assert counts["prompts"] == 4 and counts["responses"] == 8
    assert counts["revision_steps"] == 4 and counts["revisions"] == 4 and counts["judgments"] == 4
    assert counts["pairs"] == counts["pairs_from_judge"] + counts["pairs_from_revision"] > 0
    assert "DPO loss first" in done.stdout and "judge order-consistency" in done.stdout

    # Every judgment keeps both orders' probabilities and raw answers.
    for line in (run / "judgments.jsonl").read_text().splitlines():
        judgment = json.loads(line)
        assert len(judgment["orders"]) == 2
        assert all(o["raw"] for o in judgment["orders"])
        assert judgment["provenance"]["template_hash"]

    # Export: TRL conversational rows, a datasets folder, and a card.
    from datasets import load_from_disk

    pairs = load_from_disk(str(run / "export" / "pairs"))
    assert len(pairs) == counts["pairs"]
    row = pairs[0]
    assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    assert "harmless" in (run / "export" / "README.md").read_text()

    # DPO saved a model that loads and differs from the base.
    import torch
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(run / "models" / "dpo", dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(trained.state_dict().values(), base.state_dict().values(), strict=True)
    )
    assert changed
    assert summary["trained"]["dpo"]["steps"] == 2

    # Rerunning the generation stages makes nothing new and duplicates nothing.
    before = {
        name: _lines(run / f"{name}.jsonl") for name in ("responses", "revision_steps", "judgments", "pairs")
    }
    again = subprocess.run(
        [*RLAIF, "run", str(config), "--quiet", "--set", "train.dpo.enabled=false"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    after = {name: _lines(run / f"{name}.jsonl") for name in before}
    assert after == before


def _vllm_children(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "vllm" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def test_ctrl_c_stops_the_managed_server_and_a_rerun_resumes(tmp_path: Path) -> None:
    """Ctrl-C in the middle of the respond stage (24 prompts × 2 long answers: tens of seconds of work
    even on a fast machine) exits 130 with the resume hint and stops the managed server; a rerun
    finishes the stage without redoing or duplicating what was stored."""
    config = _config(
        tmp_path, judge={"enabled": False}, revise={"enabled": False},
        prompts={"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": 24},
        generation={"max_tokens": 256, "samples_per_prompt": 2},
    )  # fmt: skip
    run = tmp_path / "run"
    process = subprocess.Popen(
        [*RLAIF, "run", str(config), "--quiet", "--set", "train.dpo.enabled=false"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # As from a terminal: a child inherits an ignored SIGINT, and a library loaded earlier in this
        # pytest process may have set it so (the run then ignores Ctrl-C, as Python does at start).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    servers: list[psutil.Process] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        servers = servers or _vllm_children(process.pid)
        if servers and _lines(run / "responses.jsonl") >= 1:  # mid-run: the first answers are stored
            break
        time.sleep(0.05)
    assert servers, "the managed vLLM server never started"
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "rerun the same command to resume" in stderr
    gone, alive = psutil.wait_procs(servers, timeout=30)
    assert not alive, f"vLLM processes left running: {[p.pid for p in alive]}"
    stored = [json.loads(line) for line in (run / "responses.jsonl").read_text().splitlines()]
    assert 1 <= len(stored) < 48

    resumed = subprocess.run(
        [*RLAIF, "run", str(config), "--quiet", "--set", "train.dpo.enabled=false"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = [json.loads(line) for line in (run / "responses.jsonl").read_text().splitlines()]
    assert len(final) == 48 and len({r["id"] for r in final}) == 48
    assert final[: len(stored)] == stored  # what was stored before Ctrl-C is kept, not redone


def test_python_api_example_runs(tmp_path: Path, vllm_server) -> None:
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "examples" / "python_api.py"),
            f"model.base_urls=[{vllm_server.base_url}]", f"model.served_name={vllm_server.served_name}",
            f"run_dir={tmp_path / 'run'}", "generation.max_tokens=32", "revise.max_tokens=32",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert " pairs, judge consistency " in done.stdout
    assert "chosen:" in done.stdout
