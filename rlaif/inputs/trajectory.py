"""The trace format: tool definitions and tool turns read at the door, and traces written out as text.

A prompt or labelled row may carry OpenAI-style `tools` and, in its conversation, assistant turns with
`tool_calls` and `tool` turns answering them. They are checked here, once, with one line naming the
field: each `tool` turn answers a call made before it, call ids are unique, and a call names an
offered tool (when tools are offered).

The judge and the critic see a trajectory as text: `render_trace` writes the calls and results as
tagged lines (the judge template then puts them between its delimiters as data, with the final answer),
and `flat_turns` turns tool turns of a conversation into plain turns for templates and chat templates
that know only users and assistants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from rlaif.records import Message, ToolSpec

__all__ = ["check_tool_turns", "flat_turns", "render_trace", "tools_from_row"]


def _where(error: Any) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])


def tools_from_row(value: Any, field: str = "tools") -> tuple[ToolSpec, ...]:
    """A row's `tools` (a list of OpenAI function definitions) as specs; ValueError names the bad field."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"`{field}` must be a list of {{type: function, function: {{name, parameters}}}}")
    specs: list[ToolSpec] = []
    for index, item in enumerate(value):
        try:
            specs.append(ToolSpec.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            raise ValueError(f"{field}[{index}]{_where(error)}: {error['msg']}") from None
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"`{field}` defines {', '.join(twice)} more than once; keep one definition each")
    return tuple(specs)


def check_tool_turns(messages: Sequence[Message], tools: Sequence[ToolSpec], field: str = "messages") -> None:
    """ValueError unless every tool turn answers an earlier call, call ids are unique, and (with `tools`)
    every call names an offered tool."""
    offered = {t.name for t in tools}
    calls: dict[str, str] = {}
    for index, message in enumerate(messages):
        for number, call in enumerate(message.tool_calls):
            if call.id in calls:
                raise ValueError(
                    f"{field}[{index}].tool_calls[{number}].id: the call id {call.id!r} is used twice"
                )
            if offered and call.name not in offered:
                raise ValueError(
                    f"{field}[{index}].tool_calls[{number}].function.name: {call.name!r} is not among the "
                    f"row's tools ({', '.join(sorted(offered))}); add its definition to `tools`"
                )
            calls[call.id] = call.name
        if message.role == "tool" and message.tool_call_id not in calls:
            raise ValueError(
                f"{field}[{index}].tool_call_id: {message.tool_call_id!r} answers no earlier tool call; "
                "a tool turn follows the assistant turn that called it"
            )


def _call_line(message: Message) -> list[str]:
    return [f"[tool call {c.id}] {c.name}({c.arguments})" for c in message.tool_calls]


def render_trace(trace: Sequence[Message], final: str) -> str:
    """A trajectory as the judge reads it: each call and result on a tagged line, then the final answer.

    A plain answer (no trace) is returned as it is, so judging one is unchanged."""
    if not trace:
        return final
    lines: list[str] = []
    for message in trace:
        if message.role == "tool":
            lines.append(f"[tool result {message.tool_call_id}] {message.content}")
        elif message.role == "assistant":
            if message.content.strip():
                lines.append(f"[assistant] {message.content.strip()}")
            lines += _call_line(message)
        else:
            lines.append(f"[{message.role}] {message.content}")
    lines += ["[final answer]", final]
    return "\n".join(lines)


def flat_turns(messages: Sequence[Message]) -> tuple[Message, ...]:
    """The conversation with tool calls written into the assistant's text and tool results as user-side
    turns (`Tool result ...`), for templates that know only users and assistants; unchanged without tools."""
    if not any(m.tool_calls or m.role == "tool" for m in messages):
        return tuple(messages)
    flat: list[Message] = []
    for message in messages:
        if message.role == "tool":
            flat.append(
                Message(role="user", content=f"[tool result {message.tool_call_id}] {message.content}")
            )
        elif message.tool_calls:
            text = "\n".join([message.content.strip(), *_call_line(message)]).strip()
            flat.append(Message(role="assistant", content=text))
        else:
            flat.append(message)
    return tuple(flat)
