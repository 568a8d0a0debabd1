"""Prompt and labelled rows with OpenAI-style tools, tool calls and tool turns: read whole, ids unchanged
for rows without them, and each mistake one line naming the row and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.errors import PromptSetError
from rlaif.inputs.labelled import load_labelled_pairs
from rlaif.inputs.prompts import load_prompts
from rlaif.inputs.trajectory import flat_turns, render_trace
from rlaif.records import Message
from rlaif.tools import CALCULATOR

TOOLS = [CALCULATOR.model_dump(mode="json")]
CALL = {
    "id": "c1",
    "type": "function",
    "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'},
}
TRACE = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "4", "name": "calculator"},
    {"role": "user", "content": "And doubled?"},
]


def write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_prompt_with_tools_and_tool_turns_is_read_whole(tmp_path: Path) -> None:
    (plain,) = load_prompts(write(tmp_path, {"messages": [TRACE[0]]}))
    (offered,) = load_prompts(write(tmp_path, {"messages": [TRACE[0]], "tools": TOOLS}))
    (record,) = load_prompts(write(tmp_path, {"messages": TRACE, "tools": TOOLS}))
    assert plain.id != offered.id and not plain.tools  # the tools are part of the prompt
    assert plain.model_dump().keys() == {"id", "messages", "source"}  # a plain prompt dumps as before
    assert record.tools == (CALCULATOR,)
    assert record.messages[1].tool_calls[0].name == "calculator" and record.messages[1].content == ""
    assert record.messages[2].model_dump() == {
        "role": "tool",
        "content": "4",
        "tool_call_id": "c1",
        "name": "calculator",
    }
    assert record.messages[1].model_dump(mode="json")["tool_calls"] == [CALL]  # OpenAI form back out


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"messages": [TRACE[0]], "tools": {"calculator": 1}}, "`tools` must be a list"),
        (
            {"messages": [TRACE[0]], "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].name: String should match pattern",
        ),
        (
            {"messages": [TRACE[0]], "tools": [{"type": "retrieval", "function": {"name": "x"}}]},
            '`type` must be "function"',
        ),
        (
            {"messages": [TRACE[0]], "tools": [{"function": {"name": "x", "parameters": {"type": "array"}}}]},
            "`parameters` must be an object schema",
        ),
        ({"messages": [TRACE[0]], "tools": TOOLS * 2}, "defines calculator more than once"),
        (
            {"messages": [TRACE[0], TRACE[2], TRACE[3]], "tools": TOOLS},
            "messages[1].tool_call_id: 'c1' answers no earlier tool call",
        ),
        (
            {
                "messages": [
                    TRACE[0],
                    {**TRACE[1], "tool_calls": [{**CALL, "function": {"name": "rm", "arguments": "{}"}}]},
                    TRACE[3],
                ],
                "tools": TOOLS,
            },
            "messages[1].tool_calls[0].function.name: 'rm' is not among the row's tools",
        ),
        (
            {"messages": [{"role": "user", "content": "hi", "tool_calls": [CALL]}]},
            "only an assistant turn carries `tool_calls`",
        ),
        (
            {"messages": [TRACE[0], {"role": "tool", "content": "4"}, TRACE[3]]},
            "a tool turn needs `tool_call_id`",
        ),
    ],
)
def test_a_bad_tool_row_is_one_line_naming_the_row_and_field(
    tmp_path: Path, row: object, message: str
) -> None:
    path = write(tmp_path, {"prompt": "fine"}, row)
    with pytest.raises(PromptSetError) as caught:
        load_prompts(path)
    text = str(caught.value)
    assert f"{path}:2:" in text and message in text and "\n" not in text


def test_labelled_trajectories_are_judged_as_whole_traces(tmp_path: Path) -> None:
    chosen = [TRACE[1], TRACE[2], {"role": "assistant", "content": "It is 4."}]
    path = write(tmp_path, {"prompt": [TRACE[0]], "tools": TOOLS, "chosen": chosen,
                            "rejected": [{"role": "assistant", "content": "It is 5."}]})  # fmt: skip
    (pair,) = load_labelled_pairs(path).pairs
    assert pair.chosen.startswith("[tool call c1] calculator(") and pair.chosen.endswith(
        "[final answer]\nIt is 4."
    )
    assert pair.chosen_reply == "It is 4." and pair.rejected == "It is 5."
    bad = write(tmp_path, {"prompt": [TRACE[0]], "tools": TOOLS, "chosen": [TRACE[1]], "rejected": "x"})
    with pytest.raises(
        PromptSetError, match=r"rows.jsonl:1: `chosen` must end with the assistant's final reply"
    ):
        load_labelled_pairs(bad)


def test_traces_render_as_tagged_lines_and_flatten_for_plain_templates() -> None:
    trace = [Message.model_validate(m) for m in TRACE[1:3]]
    assert render_trace((), "plain") == "plain"
    assert render_trace(trace, "It is 4.").splitlines() == [
        '[tool call c1] calculator({"expression": "2+2"})',
        "[tool result c1] 4",
        "[final answer]",
        "It is 4.",
    ]
    flat = flat_turns([Message.model_validate(TRACE[0]), *trace])
    assert [m.role for m in flat] == ["user", "assistant", "user"] and not any(m.tool_calls for m in flat)
    assert flat[2].content == "[tool result c1] 4"
