"""The tool runtime: the calculator, user tools in worker processes, and every misbehaviour recorded
with its status (raises, hangs, prints megabytes, returns non-JSON or too much; unknown tool; bad
arguments), never an exception."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from rlaif.records import ToolCall, ToolSpec
from rlaif.tools import CALCULATOR, ToolRuntime, calculate
from rlaif.tools.calculator import CalculatorError

ANY = ToolSpec(name="x", parameters={})


def spec(name: str, **properties: str) -> ToolSpec:
    return ToolSpec(
        name=name,
        parameters={"type": "object", "properties": {k: {"type": v} for k, v in properties.items()},
                    "required": list(properties)},
    )  # fmt: skip


def call(name: str, arguments: object = None, raw: str | None = None) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=raw if raw is not None else json.dumps(arguments or {}))


@pytest.mark.parametrize(
    ("expression", "value"),
    [("2+2", 4), ("(3 + 4) * 2", 14), ("7 / 2", 3.5), ("7 // 2", 3), ("-2 ** 2", -4), ("2 ** 10", 1024),
     ("10 % 3", 1), ("1e3 + 1", 1001.0)],
)  # fmt: skip
def test_the_calculator_does_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "why"),
    [("__import__('os').system('true')", "not arithmetic"), ("x + 1", "not arithmetic"),
     ("1 / 0", "division by zero"), ("9 ** 9 ** 9", "exponent"), ("'a' * 3", "not arithmetic"),
     ("2 +", "does not parse"), ("1" * 600, "longer than"), ("(-8) ** 0.5", "not a real number")],
)  # fmt: skip
def test_the_calculator_refuses_what_is_not_bounded_arithmetic(expression: str, why: str) -> None:
    start = time.perf_counter()
    with pytest.raises(CalculatorError, match=why):
        calculate(expression)
    assert time.perf_counter() - start < 1.0


def run(runtime: ToolRuntime, *calls: tuple[ToolCall, list[ToolSpec]]) -> list[object]:
    async def main() -> list[object]:
        try:
            return [await runtime.call(c, offered) for c, offered in calls]
        finally:
            runtime.close()

    return asyncio.run(main())


def test_the_builtin_calculator_answers_in_json_and_records_its_errors() -> None:
    ok, bad, wrong_args, not_json = run(
        ToolRuntime(),
        (call("calculator", {"expression": "6 * 7"}), [CALCULATOR]),
        (call("calculator", {"expression": "1/0"}), [CALCULATOR]),
        (call("calculator", {"expr": "1"}), [CALCULATOR]),
        (call("calculator", raw="{not json"), [CALCULATOR]),
    )
    assert (ok.status, ok.output) == ("ok", "42")  # type: ignore[attr-defined]
    assert bad.status == "error" and json.loads(bad.output) == {
        "error": "error",
        "detail": "division by zero",
    }  # type: ignore[attr-defined]
    assert wrong_args.status == "bad_arguments" and "expression" in wrong_args.output  # type: ignore[attr-defined]
    assert not_json.status == "bad_arguments" and "not JSON" in not_json.output  # type: ignore[attr-defined]


def test_unknown_and_unoffered_tools_are_recorded() -> None:
    runtime = ToolRuntime({"lookup": "tests.support.tools_demo:lookup"})
    unknown, not_offered, no_code = run(
        runtime,
        (call("nope"), [CALCULATOR]),
        (call("lookup", {"city": "Paris"}), [CALCULATOR]),  # runnable, but this prompt did not offer it
        (call("mystery"), [spec("mystery")]),  # offered, but nothing runs it
    )
    assert {r.status for r in (unknown, not_offered, no_code)} == {"unknown_tool"}  # type: ignore[attr-defined]
    assert "calculator" in unknown.output  # type: ignore[attr-defined]


def test_user_tools_run_in_a_worker_and_misbehaviour_gets_a_status() -> None:
    names = ("add", "lookup", "raises", "hangs", "prints_megabytes", "returns_a_set", "returns_too_much")
    functions = {name: f"tests.support.tools_demo:{name}" for name in names}
    runtime = ToolRuntime(functions, timeout=1.0, max_output_chars=1000)
    any_args = {name: ToolSpec(name=name) for name in functions}
    started = time.perf_counter()
    results = run(
        runtime,
        (call("add", {"a": 2, "b": 3.5}), [spec("add", a="number", b="number")]),
        (call("lookup", {"city": "Paris"}), [spec("lookup", city="string")]),
        (call("lookup", {"city": "Paris"}), [spec("lookup", city="string")]),
        (call("lookup", {"city": 3}), [spec("lookup", city="string")]),
        (call("add", {"a": 1}), [ToolSpec(name="add")]),  # the schema allows it; the signature does not
        (call("raises"), [any_args["raises"]]),
        (call("hangs"), [any_args["hangs"]]),
        (call("add", {"a": 1, "b": 1}), [ToolSpec(name="add")]),  # a fresh worker after the killed one
        (call("prints_megabytes"), [any_args["prints_megabytes"]]),
        (call("returns_a_set"), [any_args["returns_a_set"]]),
        (call("returns_too_much"), [any_args["returns_too_much"]]),
    )
    statuses = [r.status for r in results]  # type: ignore[attr-defined]
    assert results[1] == results.pop(2)  # the same call gives the same result
    assert statuses.pop(2) == "ok"
    assert statuses == ["ok", "ok", "bad_arguments", "bad_arguments", "error", "timeout", "ok",
                        "output_limit", "not_json", "output_limit"]  # fmt: skip
    outputs = [r.output for r in results]  # type: ignore[attr-defined]
    assert outputs[0] == "5.5" and json.loads(outputs[1]) == {"city": "Paris", "population": 2102650}
    assert "RuntimeError: the database is down" in outputs[4]
    assert "1 s" in outputs[5] and outputs[6] == "2"
    assert "printed 2,000,200 characters" in outputs[7] and len(outputs[9]) < 200
    assert time.perf_counter() - started < 30  # the hung tool cost its timeout, not an hour
    for output in outputs:
        json.loads(output)  # what the model is shown is always JSON
