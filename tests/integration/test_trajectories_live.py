"""Trajectory pairs end to end: a stub model that calls the calculator half the time answers prompts that
offer it, the tool-call check prefers the answers that quote the tool's number, the export is TRL's
conversational format with tools, and DPO trains on it on the bundled model.

What the bundled model's chat template does with the rows is asserted too: SmolLM2's template knows
neither `tools` nor `tool_calls`, so a call turn renders as an empty assistant turn and the result as a
`tool` turn; the pairs still teach "answer with the tool's number", not how to write a call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rlaif.config import load_config
from rlaif.pipeline.run import run_pipeline
from rlaif.tools import CALCULATOR
from tests.support.stub import StubServer
from tests.support.threads import one_thread  # noqa: F401  (autouse: one torch thread)

pytestmark = pytest.mark.integration


def _run(tmp_path: Path) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    offered = [CALCULATOR.model_dump(mode="json")]
    prompts.write_text("".join(json.dumps({"prompt": f"What is {i} * 17 + 3?", "tools": offered}) + "\n"
                               for i in range(24)))  # fmt: skip
    constitution = tmp_path / "tools.yaml"
    constitution.write_text(yaml.safe_dump({"name": "tool use", "principles": [
        {"id": "quotes", "judge_question": "Which answer reports the number the calculator returned?",
         "check": {"quotes_tool_result": True}}]}))  # fmt: skip
    with StubServer() as stub:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "run_dir": str(tmp_path / "run"), "constitution": str(constitution),
            "prompts": {"path": str(prompts)}, "revise": {"enabled": False},
            "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
            "judge": {"probes": {"share": 0}}, "quality": {"min_probe_accuracy": None},
            "train": {"dpo": {"enabled": False}},
        }))  # fmt: skip
        summary = run_pipeline(load_config(config), stages=("respond", "judge", "export"), quiet=True)
    assert summary.counts.pairs_from_check >= 6
    return tmp_path / "run" / "export" / "pairs"


def test_dpo_trains_on_trajectory_pairs(tmp_path: Path, model_dir: Path) -> None:
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from rlaif.train.dpo import train_dpo

    export = _run(tmp_path)
    rows = load_from_disk(str(export))["train"]
    row = next(r for r in rows if r["chosen"][0]["tool_calls"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(
        row["prompt"] + row["chosen"], tools=json.loads(row["tools"]), tokenize=False
    )
    assert "<|im_start|>tool\n" in text and "calculator" not in text  # the template drops tools and calls
    # Small on purpose (the integration tier's budget): 3 steps of 2 pairs still move the margin clearly.
    args = {"max_steps": 3, "learning_rate": 2e-5, "max_length": 128, "disable_tqdm": True,
            "per_device_train_batch_size": 2}  # fmt: skip
    result = train_dpo(
        export, model_path=model_dir, output_dir=tmp_path / "dpo", args=args, sources=("check",)
    )
    margins = f"{result.metrics['margin_first']:.3f} -> {result.metrics['margin_last']:.3f}"
    losses = f"{result.losses[0]:.3f} -> {result.losses[-1]:.3f}"
    print(f"trajectory DPO on {len(rows)} pairs: margin {margins}, loss {losses}")
    assert result.steps == 3
    assert result.metrics["margin_last"] > result.metrics["margin_first"]
    assert result.losses[-1] < result.losses[0]
