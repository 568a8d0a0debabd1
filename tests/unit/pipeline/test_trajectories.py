"""Tool-using answers on the stub server: the respond stage loops over tool calls up to the step limit,
stores each step and resumes from them, the judge reads the whole trace between its delimiters, checks
over the tool calls make pairs, and the export is TRL's conversational format with `tools`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.config import ToolsConfig, load_config
from rlaif.errors import ConfigError
from rlaif.pipeline.run import run_pipeline
from rlaif.pipeline.trajectory import ToolUse, run_trajectory
from rlaif.records import Message, PromptRecord, SamplingParams, ToolSpec, ToolStep
from rlaif.store import RunDir
from rlaif.tools import CALCULATOR, ToolRuntime
from tests.support.stub import StubServer

PROMPT = PromptRecord(
    id="p1",
    messages=(Message(role="user", content="What is 6 * 7?"),),
    tools=(CALCULATOR, ToolSpec(name="lookup")),
)


BODIES: list[dict[str, Any]] = []


def always(name: str, arguments: str) -> Any:
    def caller(body: dict[str, Any], index: int) -> dict[str, Any]:
        BODIES.append(body)
        step = sum(m["role"] == "assistant" for m in body["messages"])
        call = {"id": f"c{step}", "type": "function", "function": {"name": name, "arguments": arguments}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    return caller


def trajectory(stub: StubServer, tools: ToolUse) -> Any:
    async def main() -> Any:
        backend = OpenAIBackend([stub.base_url], stub.served_name)
        try:
            return await run_trajectory(
                backend, ({"role": "user", "content": "What is 6 * 7?"},), PROMPT, response_id="res-1",
                tools=tools, sampling=SamplingParams(), seed=1,
            )  # fmt: skip
        finally:
            await backend.aclose()
            tools.runtime.close()

    return asyncio.run(main())


def test_a_model_that_keeps_calling_stops_at_the_step_limit_with_every_step_recorded(tmp_path: Path) -> None:
    with (
        StubServer(tool_caller=always("calculator", '{"expression": "6*7"}')) as stub,
        RunDir(tmp_path) as run,
    ):
        steps = run.stage("tool_steps", ToolStep)
        BODIES.clear()
        made = trajectory(stub, ToolUse(ToolRuntime(), ToolsConfig(max_steps=3), steps))
    assert made.status == "step_limit" and made.error is None
    # Each request offered the tools and carried the trajectory so far in OpenAI's form.
    assert all(
        b["tools"][0]["function"]["name"] == "calculator" and b["tool_choice"] == "auto" for b in BODIES
    )
    assert [len(b["messages"]) for b in BODIES] == [1, 3, 5] and BODIES[2]["messages"][2][
        "tool_call_id"
    ] == "c0"
    assert [m.role for m in made.trace] == ["assistant", "tool"] * 3
    assert [m.content for m in made.trace if m.role == "tool"] == ["42"] * 3
    assert len(steps) == 3 and sorted(s.index for s in steps) == [0, 1, 2]


def test_unknown_tools_and_bad_arguments_are_recorded_per_step(tmp_path: Path) -> None:
    for name, arguments, status in (
        ("rm_rf", "{}", "unknown_tool"),
        ("calculator", "[1, 2", "bad_arguments"),
    ):
        with StubServer(tool_caller=always(name, arguments)) as stub, RunDir(tmp_path / name) as run:
            steps = run.stage("tool_steps", ToolStep)
            made = trajectory(stub, ToolUse(ToolRuntime(), ToolsConfig(max_steps=2), steps))
        assert {r.status for s in steps for r in s.results} == {status}
        assert made.status == "step_limit" and json.loads(made.trace[1].content)["error"] == status


def test_stored_steps_are_replayed_and_only_the_missing_ones_asked(tmp_path: Path) -> None:
    with (
        StubServer(tool_caller=always("calculator", '{"expression": "1+1"}')) as stub,
        RunDir(tmp_path) as run,
    ):
        steps = run.stage("tool_steps", ToolStep)
        first = trajectory(stub, ToolUse(ToolRuntime(), ToolsConfig(max_steps=2), steps))
        asked = stub.count()
        again = trajectory(stub, ToolUse(ToolRuntime(), ToolsConfig(max_steps=2), steps))
        assert stub.count() == asked == 2  # all replayed
        longer = trajectory(stub, ToolUse(ToolRuntime(), ToolsConfig(max_steps=3), steps))
        assert stub.count() == 3  # one new step on top of the two stored
    assert first == again and longer.trace[:4] == first.trace


def _config(stub: StubServer, tmp_path: Path, offered: list[dict[str, Any]]) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"What is {i} * 17 + 3?", "tools": offered}) + "\n"
                               for i in range(12)))  # fmt: skip
    constitution = tmp_path / "tools.yaml"
    constitution.write_text(yaml.safe_dump({"name": "tool use", "principles": [
        {"id": "quotes", "judge_question": "Which answer reports the number the calculator returned?",
         "check": {"quotes_tool_result": True}},
        {"id": "honest", "judge_question": "Which answer is more honest?", "scope": "final",
         "critique_request": "Is the final answer honest about the tool's result?",
         "revision_request": "Rewrite the final answer to state the tool's result plainly."},
    ]}))  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"), "constitution": str(constitution),
        "prompts": {"path": str(prompts)}, "revise": {"enabled": False},
        "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
        "judge": {"probes": {"share": 0}}, "quality": {"min_probe_accuracy": None},
        "train": {"dpo": {"enabled": False}},
    }))  # fmt: skip
    return path


def test_a_run_with_tools_judges_traces_and_exports_trl_rows_with_tools(tmp_path: Path) -> None:
    from datasets import load_from_disk

    judged: list[str] = []

    def judge(body: dict[str, Any]) -> Any:
        from tests.support.stub import JudgeReply

        judged.append(body["messages"][-1]["content"])
        return JudgeReply()

    with StubServer(judge_reply=judge) as stub:
        config = load_config(_config(stub, tmp_path, [CALCULATOR.model_dump(mode="json")]))
        summary = run_pipeline(config, stages=("respond", "judge", "export"), quiet=True)
        asked = stub.count()
        run_pipeline(config, stages=("respond", "judge", "export"), quiet=True)
        assert stub.count() == asked  # a rerun resumes: nothing is asked again
    run = tmp_path / "run"
    responses = [json.loads(line) for line in (run / "responses.jsonl").read_text().splitlines()]
    used = [r for r in responses if r.get("trace")]
    assert 0 < len(used) < len(responses) and all(r["trajectory"] == "done" for r in used)
    assert all(r["trace"][1]["role"] == "tool" and r["trace"][1]["content"] in r["text"] for r in used)
    assert (run / "tool_steps.jsonl").exists()
    # The judge read the calls and results as data between its delimiters (scope: trace).
    shown = [text for text in judged if "[tool call " in text]
    assert shown and all(
        t.index("<response_A_") < t.index("[tool call ") < t.index("</response_B_") for t in shown
    )
    assert summary.counts.pairs_from_check > 0
    rows = [json.loads(line) for line in (run / "export" / "pairs.jsonl").read_text().splitlines()]
    check_rows = [r for r in rows if r["source"] == "check"]
    assert check_rows and all(
        r["chosen"][0]["tool_calls"] and r["chosen"][1]["role"] == "tool" for r in check_rows
    )
    assert all(json.loads(r["tools"])[0]["function"]["name"] == "calculator" for r in rows)
    dataset = load_from_disk(str(run / "export" / "pairs"))["train"]
    assert "tools" in dataset.column_names and len(dataset) == len(rows)


def test_a_tool_nothing_runs_is_a_config_error_before_any_request(tmp_path: Path) -> None:
    with StubServer() as stub:
        config = load_config(_config(stub, tmp_path, [{"type": "function", "function": {"name": "lookup"}}]))
        with pytest.raises(
            ConfigError, match=r"prompts.jsonl:1: the prompt offers the tool 'lookup'.*tools.functions.lookup"
        ):
            run_pipeline(config, stages=("respond",), quiet=True)
        assert stub.count() == 0


def test_prompts_with_tool_turns_and_revisions_export_pairs_and_sft(tmp_path: Path) -> None:
    """A conversation that already holds a call and its result, answered with tools offered and revised:
    both exports load, the prompt's tool turns intact, and the revision pair keeps the answer's trace."""
    from datasets import load_from_disk

    history = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "h1", "type": "function",
            "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'}}]},
        {"role": "tool", "tool_call_id": "h1", "content": "4", "name": "calculator"},
        {"role": "user", "content": "And 5 * 5 + 1?"},
    ]  # fmt: skip
    with StubServer() as stub:
        path = _config(stub, tmp_path, [CALCULATOR.model_dump(mode="json")])
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_text(
            json.dumps({"messages": history, "tools": [CALCULATOR.model_dump(mode="json")]}) + "\n"
        )
        data = yaml.safe_load(path.read_text())
        data["revise"] = {"enabled": True, "rounds": 1}
        data["generation"] = {"samples_per_prompt": 4}
        path.write_text(yaml.safe_dump(data))
        run_pipeline(load_config(path), stages=("respond", "revise", "judge", "export"), quiet=True)
    export = tmp_path / "run" / "export"
    sft = load_from_disk(str(export / "sft"))["train"]
    assert (
        sft[0]["messages"][1]["tool_calls"][0]["id"] == "h1" and sft[0]["messages"][2]["tool_call_id"] == "h1"
    )
    pairs = [json.loads(line) for line in (export / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["prompt"][1]["tool_calls"][0]["id"] == "h1" for p in pairs)
    load_from_disk(str(export / "pairs"))
    revision_pairs = [p for p in pairs if p["source"] == "revision"]
    assert revision_pairs
    for pair in revision_pairs:
        assert pair["chosen"][:-1] == pair["rejected"][:-1]  # the same trace; only the final answer differs
