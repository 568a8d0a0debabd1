"""Answers that use tools: the model's turns and the tools' results, step by step, up to a step limit.

Each step (one model turn and the results of its calls) is stored in `tool_steps.jsonl` as soon as it is
done, under an id that hashes the response and every turn before it; a resumed run replays the stored
steps and asks the model only for the ones missing. Calls of one turn run in order, one at a time, so
the trajectory is the same however many answers are in flight.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rlaif.backends.protocol import Backend, ChatRequest
from rlaif.config import ToolsConfig
from rlaif.errors import ConfigError
from rlaif.records import (
    Message,
    PromptRecord,
    SamplingParams,
    ToolCall,
    ToolStep,
    derive_seed,
    stable_id,
)
from rlaif.store import RunDir, Stage
from rlaif.tools import ToolRuntime

__all__ = ["TOOL_STEPS", "ToolUse", "Trajectory", "check_tools", "run_trajectory", "tool_use"]

TOOL_STEPS = "tool_steps"
"""The stage file of the steps of tool-using answers (`tool_steps.jsonl`)."""


@dataclass
class ToolUse:
    """What the respond stage needs to let the model call tools."""

    runtime: ToolRuntime
    config: ToolsConfig
    steps: Stage[ToolStep] | None = None
    """Where each step is stored (None: not stored, nothing to resume)."""

    def fingerprint(self, prompt: PromptRecord) -> dict[str, Any]:
        """What a tool-using response's id hashes beside the request: the runtime and the step limit."""
        return {**self.runtime.fingerprint(), "max_steps": self.config.max_steps}


@dataclass(frozen=True)
class Trajectory:
    """A finished tool-using answer (or the error that stopped it)."""

    text: str = ""
    trace: tuple[Message, ...] = ()
    status: Literal["done", "step_limit"] = "done"
    finish_reason: str | None = None
    error: str | None = None


@contextlib.contextmanager
def tool_use(config: Any, prompts: Sequence[PromptRecord], run: RunDir) -> Iterator[ToolUse | None]:
    """The run's tool runtime (`tools:` of the `RunConfig`) when a prompt offers tools, else None; its
    worker processes are stopped on the way out."""
    if not any(p.tools for p in prompts):
        yield None
        return
    section: ToolsConfig = config.tools
    runtime = ToolRuntime(
        section.functions, timeout=section.timeout, max_output_chars=section.max_output_chars
    )
    try:
        check_tools(prompts, runtime)
        yield ToolUse(runtime, section, run.stage(TOOL_STEPS, ToolStep))
    finally:
        runtime.close()


def check_tools(prompts: Sequence[PromptRecord], runtime: ToolRuntime) -> None:
    """ConfigError naming the first tool a prompt offers that nothing runs."""
    for prompt in prompts:
        for spec in prompt.tools:
            if not runtime.implements(spec.name):
                raise ConfigError(
                    f"{prompt.source or prompt.id}: the prompt offers the tool {spec.name!r}, which nothing "
                    "runs; "
                    f"add `tools.functions.{spec.name}: package.module:function` to the config "
                    "(built-ins: calculator)"
                )


def _calls(raw: Sequence[dict[str, Any]], index: int) -> tuple[ToolCall, ...]:
    calls = []
    for number, call in enumerate(raw):
        function = call.get("function") or {}
        calls.append(
            ToolCall(
                id=call.get("id") or f"call_{index}_{number}",  # a server that gives no id still gets answers
                name=str(function.get("name") or ""),
                arguments=str(function.get("arguments") or ""),
            )
        )
    return tuple(calls)


async def run_trajectory(
    backend: Backend,
    history: Sequence[dict[str, Any]],
    prompt: PromptRecord,
    *,
    response_id: str,
    tools: ToolUse,
    sampling: SamplingParams,
    seed: int,
) -> Trajectory:
    """Ask, run the calls, show the results, ask again, until the model answers without calls or
    `max_steps` turns were taken."""
    offered = tuple(t.model_dump(mode="json") for t in prompt.tools)
    trace: list[Message] = []
    step: ToolStep | None = None
    for index in range(tools.config.max_steps):
        step_id = stable_id(
            "toolstep",
            response_id=response_id,
            index=index,
            before=[m.model_dump(mode="json") for m in trace],
        )
        step = tools.steps.get(step_id) if tools.steps is not None else None
        if step is None:
            request_seed = derive_seed(seed, f"tools:{response_id}:{index}")
            result = await backend.chat(
                ChatRequest(
                    messages=(*history, *(m.model_dump(mode="json") for m in trace)),
                    max_tokens=sampling.max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
                    seed=request_seed, tools=offered,
                )
            )  # fmt: skip
            if result.error:
                return Trajectory(error=f"step {index}: {result.error}")
            calls = _calls(result.tool_calls[0] if result.tool_calls else (), index)
            assistant = Message(role="assistant", content=result.texts[0].strip(), tool_calls=calls)
            results = tuple([await tools.runtime.call(call, prompt.tools) for call in calls])
            step = ToolStep(
                id=step_id, response_id=response_id, index=index, assistant=assistant, results=results,
                finish_reason=result.finish_reasons[0],
            )  # fmt: skip
            if tools.steps is not None:
                tools.steps.append([step])
        if not step.assistant.tool_calls:
            return Trajectory(step.assistant.content, tuple(trace), "done", step.finish_reason)
        trace.append(step.assistant)
        trace += [Message(role="tool", content=r.output, tool_call_id=r.call_id) for r in step.results]
    assert step is not None  # max_steps >= 1
    return Trajectory(step.assistant.content, tuple(trace), "step_limit", step.finish_reason)
