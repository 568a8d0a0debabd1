"""Run the model's tool calls: built-ins in process, the user's `module:function` tools in a worker process.

Every call gives a `ToolResult` with a status, never an exception: arguments that are not a JSON object
or not what the tool's schema and signature take (`bad_arguments`), a tool nobody offered
(`unknown_tool`), a tool that raises (`error`), runs past `timeout` (`timeout`: its process is killed and
a fresh one serves the next call), returns or prints more than `max_output_chars` (`output_limit`), or
returns something JSON cannot hold (`not_json`). The output is JSON text with sorted keys, so the same
call gives the same text, which is what the model is shown next.

User tools run in separate processes so that a hung or crashing tool cannot take the run with it; they
run whatever their code does, so use tools you trust (as with `python` checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from rlaif.callables import load_callable
from rlaif.records import ToolCall, ToolResult, ToolSpec
from rlaif.tools.calculator import CALCULATOR, CalculatorError, calculator

__all__ = ["BUILTINS", "BUILTIN_SPECS", "ToolRuntime", "import_tool"]

BUILTINS: dict[str, Callable[..., Any]] = {"calculator": calculator}
"""Tools that need no `tools.functions` entry: name -> function (run in process: they are bounded)."""
BUILTIN_SPECS: dict[str, ToolSpec] = {"calculator": CALCULATOR}
"""Their definitions, for prompts to offer."""

STARTUP_S = 60
"""Seconds a worker process may take to start (not counted in a call's `timeout`)."""

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def import_tool(target: str) -> Callable[..., Any]:
    """The function `package.module:function` (or `path/to/file.py:function`) names, through the loader
    checks and hooks use; ImportError or TypeError say why not."""
    return load_callable(target)


def _failed(call: ToolCall, status: str, detail: str) -> ToolResult:
    output = json.dumps({"error": status, "detail": detail}, sort_keys=True, ensure_ascii=False)
    return ToolResult(call_id=call.id, name=call.name, status=status, output=output)  # type: ignore[arg-type]


def _schema_problem(arguments: dict[str, Any], schema: Mapping[str, Any]) -> str | None:
    """What is wrong with the arguments under the tool's (object) schema, at the top level; None if fine."""
    properties = schema.get("properties", {})
    missing = [k for k in schema.get("required", []) if k not in arguments]
    if missing:
        return f"missing required argument(s): {', '.join(missing)}"
    if schema.get("additionalProperties") is False:
        extra = sorted(set(arguments) - set(properties))
        if extra:
            return f"unknown argument(s): {', '.join(extra)}"
    for key, value in arguments.items():
        kind = properties.get(key, {}).get("type") if isinstance(properties.get(key), dict) else None
        kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
        allowed = tuple(t for k in kinds for t in _JSON_TYPES.get(k, (object,)))
        if allowed and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            return f"argument {key!r} must be {' or '.join(kinds)}, got {type(value).__name__}"
    return None


def _encode(value: Any, limit: int) -> tuple[str, str]:
    """(status, output) for a tool's return value."""
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        detail = (
            f"returned {type(value).__name__}, which JSON cannot hold ({' '.join(str(exc).split())[:120]})"
        )
        return "not_json", json.dumps({"error": "not_json", "detail": detail}, sort_keys=True)
    if len(text) > limit:
        detail = f"returned {len(text):,} characters of JSON, over the limit of {limit:,}"
        return "output_limit", json.dumps({"error": "output_limit", "detail": detail}, sort_keys=True)
    return "ok", text


class _CappedText(io.TextIOBase):
    """A stdout that keeps nothing and counts characters, so a tool printing megabytes costs no memory."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, text: str) -> int:
        self.written += len(text)
        return len(text)

    def writable(self) -> bool:
        return True


def _serve(conn: Connection) -> None:
    """The worker process: call tools as asked, one at a time, and send back (status, output)."""
    cache: dict[str, Callable[..., Any]] = {}
    conn.send("ready")  # the parent times calls, not this process's start
    while True:
        try:
            target, arguments, limit = conn.recv()
        except EOFError:
            return
        conn.send(_run_one(cache, target, arguments, limit))


def _run_one(
    cache: dict[str, Callable[..., Any]], target: str, arguments: dict[str, Any], limit: int
) -> tuple[str, str]:
    def failed(status: str, detail: str) -> tuple[str, str]:
        return status, json.dumps({"error": status, "detail": detail}, sort_keys=True, ensure_ascii=False)

    try:
        function = cache.get(target) or cache.setdefault(target, import_tool(target))
    except (ImportError, TypeError) as exc:
        return failed("error", str(exc))
    try:
        inspect.signature(function).bind(**arguments)
    except TypeError as exc:
        return failed("bad_arguments", str(exc))
    except ValueError:
        pass  # a builtin without a signature: let the call decide
    printed = _CappedText()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            value = function(**arguments)
    except Exception as exc:  # the user's tool may raise anything: recorded as its result
        return failed("error", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    if printed.written > limit:
        return failed("output_limit", f"printed {printed.written:,} characters, over the limit of {limit:,}")
    return _encode(value, limit)


class _Worker:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(STARTUP_S) or self.conn.recv() != "ready":
            self.kill()
            raise RuntimeError(f"a tool worker process did not start in {STARTUP_S} s")

    def ask(
        self, target: str, arguments: dict[str, Any], limit: int, timeout: float
    ) -> tuple[str, str] | None:
        """The worker's answer, or None when it gave none in `timeout` seconds (or died)."""
        self.conn.send((target, arguments, limit))
        try:
            if not self.conn.poll(timeout):
                return None
            answer: tuple[str, str] = self.conn.recv()
        except (EOFError, OSError):
            return None
        return answer

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class ToolRuntime:
    """Runs tool calls with limits.

    Args:
        functions: Tool name -> `package.module:function` for the user's tools (built-ins need none).
        timeout: Seconds a user tool may run before its process is killed.
        max_output_chars: Most characters a tool may return (as JSON) or print.
        workers: Most user tools running at once.
    """

    def __init__(
        self,
        functions: Mapping[str, str] | None = None,
        *,
        timeout: float = 5.0,
        max_output_chars: int = 4000,
        workers: int = 2,
    ):
        self.functions = dict(functions or {})
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self._idle: list[_Worker] = []
        # Spawned workers get this process's sys.path, so they import what it can.
        self._slots = asyncio.Semaphore(workers)

    def implements(self, name: str) -> bool:
        """Whether a call of `name` can run here (a configured function or a built-in)."""
        return name in self.functions or name in BUILTINS

    def fingerprint(self) -> dict[str, Any]:
        """What a trajectory's id hashes about the runtime: the functions and the limits."""
        return {
            "functions": self.functions,
            "timeout": self.timeout,
            "max_output_chars": self.max_output_chars,
        }

    async def call(self, call: ToolCall, offered: Sequence[ToolSpec]) -> ToolResult:
        """Run one call of the model's against the tools it was offered."""
        spec = next((s for s in offered if s.name == call.name), None)
        if spec is None or not self.implements(call.name):
            names = ", ".join(s.name for s in offered) or "none"
            return _failed(call, "unknown_tool", f"no tool {call.name!r}; the tools are: {names}")
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            return _failed(call, "bad_arguments", f"the arguments are not JSON ({exc})")
        if not isinstance(arguments, dict):
            return _failed(
                call, "bad_arguments", f"the arguments must be a JSON object, got {type(arguments).__name__}"
            )
        problem = _schema_problem(arguments, spec.parameters)
        if problem is not None:
            return _failed(call, "bad_arguments", problem)
        if call.name not in self.functions:
            return self._builtin(call, arguments)
        async with self._slots:
            try:
                worker = self._idle.pop() if self._idle else await asyncio.to_thread(_Worker)
            except RuntimeError as exc:
                return _failed(call, "error", str(exc))
            target = self.functions[call.name]
            answer = await asyncio.to_thread(
                worker.ask, target, arguments, self.max_output_chars, self.timeout
            )
            if answer is None:
                await asyncio.to_thread(worker.kill)
                return _failed(
                    call, "timeout", f"{target} gave no answer in {self.timeout:g} s and was stopped"
                )
            self._idle.append(worker)
        status, output = answer
        return ToolResult(call_id=call.id, name=call.name, status=status, output=output)  # type: ignore[arg-type]

    def _builtin(self, call: ToolCall, arguments: dict[str, Any]) -> ToolResult:
        function = BUILTINS[call.name]
        try:
            inspect.signature(function).bind(**arguments)
        except TypeError as exc:
            return _failed(call, "bad_arguments", str(exc))
        try:
            value = function(**arguments)
        except CalculatorError as exc:
            return _failed(call, "error", str(exc))
        status, output = _encode(value, self.max_output_chars)
        return ToolResult(call_id=call.id, name=call.name, status=status, output=output)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the worker processes."""
        while self._idle:
            self._idle.pop().kill()
