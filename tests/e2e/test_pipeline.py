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

pytestmark = pytest.mark.e2e


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


def _checked_config(tmp_path: Path, server: object, **extra: object) -> Path:
    """The checkable quickstart at a small size: concise-plain, 6 prompts × 4 samples, checks probed."""
    return _config(
        tmp_path,
        constitution="concise-plain",
        prompts={"path": str(ROOT / "examples" / "concise_train.jsonl"), "limit": 6},
        model={"base_urls": [server.base_url], "served_name": server.served_name},  # type: ignore[attr-defined]
        generation={"samples_per_prompt": 4, "max_tokens": 64},
        revise={"rounds": 1, "max_tokens": 48},
        judge={"checks": "probe"},
        quality={"min_pairs": 1},
        train={"dpo": {"sources": ["check"], "args": {"max_steps": 2, "per_device_train_batch_size": 2,
                                                      "max_length": 256}}},
        **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def checked_run(tmp_path_factory: pytest.TempPathFactory, vllm_server: object) -> tuple[Path, Path, str]:
    tmp_path = tmp_path_factory.mktemp("checked")
    config = _checked_config(tmp_path, vllm_server)
    done = subprocess.run(
        [*RLAIF, "run", str(config), "--quiet"], capture_output=True, text=True, timeout=1500,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return config, tmp_path / "run", done.stdout


def test_the_checkable_pipeline_end_to_end_on_a_running_server(
    checked_run: tuple[Path, Path, str], model_dir: Path
) -> None:
    """Respond, revise, judge with checks (probed), filters, gates, export and DPO on check-labelled pairs."""
    config, run, stdout = checked_run
    summary = json.loads((run / "summary.json").read_text())
    counts, judge = summary["counts"], summary["judge"]
    assert counts["prompts"] == 6 and counts["responses"] == 24
    assert counts["revision_steps"] == 6 and counts["revisions"] == 6
    assert judge["by_kind"]["sampled"] == 6 and judge["by_kind"].get("contrast", 0) >= 1
    assert judge["check_decided"] >= 1
    assert counts["pairs_from_check"] >= 1 and counts["pairs_from_judge"] == 0  # the coin flips dropped
    gates = {g["name"]: g for g in summary["quality"]["gates"]}
    assert gates["pairs"]["passed"] is True and summary["quality"]["passed"] is True
    assert gates["judge order-consistency"]["passed"] is None  # no LLM-judged pair is trained on
    assert "DPO loss first" in stdout and "gate: pairs" in stdout
    assert "judge agreement with the checks" in stdout

    judgments = [json.loads(line) for line in (run / "judgments.jsonl").read_text().splitlines()]
    for judgment in judgments:
        assert judgment["provenance"]["template_hash"]
        if judgment["source"] == "check":
            assert judgment["p_a"] in (0.0, 1.0) and judgment["checks"]
            assert len(judgment["orders"]) == 2  # probed: the LLM was asked in both orders
        else:
            assert len(judgment["orders"]) == 2 and all(o["raw"] for o in judgment["orders"])

    # Export: TRL conversational rows with their labels, the dropped candidates with reasons, a card.
    from datasets import load_from_disk

    pairs = load_from_disk(str(run / "export" / "pairs"))["train"]  # export.test_fraction 0: all in train
    assert len(pairs) == counts["pairs"] and "check" in set(pairs["source"])
    assert all(
        p == 1.0 for p, source in zip(pairs["p_chosen"], pairs["source"], strict=True) if source == "check"
    )
    row = pairs[0]
    assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    candidates = len((run / "pairs.jsonl").read_text().splitlines())
    dropped = [json.loads(line) for line in (run / "export" / "dropped.jsonl").read_text().splitlines()]
    assert all(d["reason"] for d in dropped)
    card = (run / "export" / "README.md").read_text()
    assert "concise-plain" in card and "| gate |" in card and "agreement with them" in card
    assert candidates >= len(pairs) + len(dropped)

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
    dpo = summary["trained"]["dpo"]
    assert dpo["steps"] == 2 and dpo["metrics"]["pairs"] == counts["pairs_from_check"]  # check pairs only

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


def test_compliance_of_the_trained_policy_through_the_cli(checked_run: tuple[Path, Path, str]) -> None:
    config, run, _ = checked_run
    report_path = run.parent / "compliance.json"
    done = subprocess.run(
        [*RLAIF, "evaluate", "compliance", str(config), "--prompts",
         str(ROOT / "examples" / "concise_heldout.jsonl"), "--limit", "4", "--samples", "1", "--engine",
         "transformers", "--max-tokens", "32", "--json", str(report_path), "--quiet"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    names = [row["principle_id"] for row in report["principles"]]
    assert names == ["concise", "no-canned-opener", "no-links", "plain-prose", "every check"]
    for row in report["principles"]:
        assert row["base"]["n"] + row["base"]["errors"] == 4 and row["candidate"]["n"] == 4
    assert report["prompts_seen_in_training"] == 0 and report["kl"]["tokens"] > 0
    assert len(report["answers"]["base"]) == 4 and Path(report["plot"]).stat().st_size > 5000
    assert "every check" in done.stdout and "KL(candidate" in done.stdout


def test_a_gate_stops_training_on_the_bundled_judges_pairs_and_force_goes_on(
    tmp_path: Path, vllm_server
) -> None:
    """The bundled judge answers "A" in every order: DPO on its pairs would train on position bias."""
    dpo = {"sources": ["judge"], "args": {"max_steps": 1, "max_length": 256}}
    config = _config(
        tmp_path, model={"base_urls": [vllm_server.base_url], "served_name": vllm_server.served_name},
        prompts={"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": 8}, revise={"enabled": False},
        judge={"inconsistent": "keep", "min_confidence": 0.5}, quality={"min_pairs": 1}, train={"dpo": dpo},
    )  # fmt: skip
    refused = subprocess.run(
        [*RLAIF, "run", str(config), "--quiet"], capture_output=True, text=True, timeout=900,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert "failed" in refused.stderr and "quality gate" in refused.stderr
    assert "judge order-consistency" in refused.stderr and "--force trains anyway" in refused.stderr
    assert "FAILED" in refused.stdout  # the summary table, red gates first
    run = tmp_path / "run"
    assert not (run / "models" / "dpo").exists()
    assert json.loads((run / "manifest.json").read_text())["status"] == "refused"
    forced = subprocess.run(
        [*RLAIF, "run", str(config), "--quiet", "--force"], capture_output=True, text=True, timeout=900
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["forced"][0]["gates"]
    assert (run / "models" / "dpo" / "config.json").exists()


def _vllm_children(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "vllm" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow  # its own managed server, started twice
@pytest.mark.timeout(450)  # 117 s on the 2-core machine
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
