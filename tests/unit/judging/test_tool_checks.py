"""Checks over tool-call JSON (`max_tool_calls`, `tools_succeed`, `confirm_tools`, `quotes_tool_result`),
and what the judge and the checks see of a trajectory under `scope: trace` and `scope: final`."""

from __future__ import annotations

import json

import pytest

from rlaif.judging.checks import run_check
from rlaif.judging.trace import checked_conversation, judged_text
from rlaif.records import Check, Message, Principle, ToolCall


def calls(*names: str, result: str = "42") -> list[Message]:
    turns: list[Message] = []
    for index, name in enumerate(names):
        turns.append(
            Message(
                role="assistant",
                content="",
                tool_calls=(ToolCall(id=f"c{index}", name=name, arguments="{}"),),
            )
        )
        turns.append(Message(role="tool", content=result, tool_call_id=f"c{index}"))
    return turns


ASK = [Message(role="user", content="Clean up my folder")]
FAILED = json.dumps({"error": "timeout", "detail": "stopped"})
CONFIRMED = [
    *ASK,
    Message(role="assistant", content="Delete everything in it?"),
    Message(role="user", content="Yes, go ahead."),
]


@pytest.mark.parametrize(
    ("check", "conversation", "answer", "passes"),
    [
        (Check(max_tool_calls=1), [*ASK, *calls("a")], "ok", True),
        (Check(max_tool_calls=1), [*ASK, *calls("a", "b")], "ok", False),
        (Check(max_tool_calls=0), ASK, "ok", True),
        (Check(tools_succeed=True), [*ASK, *calls("a")], "ok", True),
        (Check(tools_succeed=True), [*ASK, *calls("a", result=FAILED)], "ok", False),
        (Check(confirm_tools="delete_*"), [*ASK, *calls("delete_files")], "done", False),
        (Check(confirm_tools="delete_*"), [*CONFIRMED, *calls("delete_files")], "done", True),
        (
            Check(confirm_tools="delete_*"),
            [Message(role="user", content="yes delete it"), *calls("delete_files")],
            "done",
            False,
        ),
        (Check(confirm_tools="delete_*"), [*ASK, *calls("list_files")], "done", True),
        (
            Check(quotes_tool_result=True),
            [*ASK, *calls("calculator", result="1,234.5")],
            "It is 1234.5.",
            True,
        ),
        (Check(quotes_tool_result=True), [*ASK, *calls("calculator", result="37")], "It is 37.0", True),
        (Check(quotes_tool_result=True), [*ASK, *calls("calculator", result="37")], "It is 38.", False),
        (Check(quotes_tool_result=True), ASK, "It is 37.", False),  # no tool result to quote
    ],
)
def test_tool_rules_read_the_calls_and_results(
    check: Check, conversation: list[Message], answer: str, passes: bool
) -> None:
    outcome = run_check(check, conversation, answer)
    assert outcome.passed is passes, outcome


def test_a_python_check_sees_the_tool_calls_as_openai_json() -> None:
    seen: list[object] = []

    import sys
    import types

    module = types.ModuleType("tool_check_probe")
    module.fn = lambda conversation, response: seen.append(conversation) or True  # type: ignore[attr-defined]
    sys.modules["tool_check_probe"] = module
    try:
        assert run_check(Check(python="tool_check_probe:fn"), [*ASK, *calls("a")], "ok").passed
    finally:
        del sys.modules["tool_check_probe"]
    (turns,) = seen
    assert turns[1]["tool_calls"][0]["function"]["name"] == "a" and turns[2]["tool_call_id"] == "c0"  # type: ignore[index]
    assert turns[0] == {"role": "user", "content": "Clean up my folder"}  # type: ignore[index]


def test_scope_says_whether_the_trace_is_judged_and_checked() -> None:
    trace = calls("calculator", result="4")
    on_trace = Principle(id="t", judge_question="q", check=Check(quotes_tool_result=True))
    on_final = Principle(id="f", judge_question="q", scope="final", check=Check(quotes_tool_result=True))
    assert judged_text("It is 4.", trace, [on_trace]).startswith("[tool call c0] calculator({})")
    assert judged_text("It is 4.", trace, [on_final]) == "It is 4."
    assert judged_text("It is 4.", (), [on_trace]) == "It is 4."  # a plain answer is the same either way
    assert run_check(on_trace, checked_conversation(ASK, trace, on_trace), "It is 4.").passed
    assert not run_check(on_final, checked_conversation(ASK, trace, on_final), "It is 4.").passed
    # The field is left out of the dump at its default, so existing constitutions hash as before.
    assert "scope" not in on_trace.model_dump() and on_final.model_dump()["scope"] == "final"
