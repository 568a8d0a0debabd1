"""The built-in calculator: arithmetic on numbers, read from the expression's syntax tree, never `eval`.

Numbers, `+ - * / // % **`, unary signs and parentheses; anything else (names, calls, attributes,
strings) is refused. Powers and sizes are bounded so no expression can hang the run or fill memory.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from rlaif.records import ToolSpec

__all__ = ["CALCULATOR", "CalculatorError", "calculate", "calculator"]

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression (+ - * / // % ** and parentheses) and return the number.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "for example (3 + 4) * 2"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)
"""The calculator's definition, as offered to the model."""

MAX_LENGTH = 500
"""Longest expression read, in characters."""
MAX_EXPONENT = 1000
"""Largest exponent of `**` (a bigger one could run for minutes)."""
MAX_DIGITS = 4300
"""Largest integer result, in digits (Python's own limit for printing one)."""


class CalculatorError(ValueError):
    """The expression is not arithmetic the calculator does, or its result is out of bounds."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"the exponent {right} is larger than {MAX_EXPONENT}")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
        if isinstance(result, complex):
            raise CalculatorError("the result is not a real number")
        if isinstance(result, int) and result.bit_length() > MAX_DIGITS * 3.33:
            raise CalculatorError(f"the result has more than {MAX_DIGITS} digits")
        return result  # type: ignore[no-any-return]
    shown = ast.unparse(node)[:40] if isinstance(node, ast.expr) else type(node).__name__
    raise CalculatorError(f"{shown!r} is not arithmetic (numbers, + - * / // % ** and parentheses only)")


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression; `CalculatorError` says why not."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be text")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise CalculatorError(f"{expression[:40]!r} does not parse as arithmetic") from None
    result = _value(tree.body)
    if isinstance(result, float) and not math.isfinite(result):
        raise CalculatorError("the result is not a finite number")
    return result


def calculator(expression: str) -> int | float:
    """The tool: `calculator(expression="(3 + 4) * 2")` returns 14."""
    return calculate(expression)
