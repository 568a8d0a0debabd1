"""Run a principle's check on a response: exact labels where a principle can be checked in code.

A `Check` (see `rlaif.records`) holds rules; `RULES` is the one table of them: the YAML name, what the
rule reads, and the function that runs it. Every rule given must pass. The declarative rules are pure
and fast (`rlaif constitution bench` measures them); their regular expressions run on the `regex`
engine in its re-compatible mode with a timeout per match, so a pattern that backtracks without end
gives a check error instead of hanging the run.

The tool rules (`max_tool_calls`, `tools_succeed`, `confirm_tools`, `quotes_tool_result`) read the tool
calls and results of a tool-using answer: the pipeline passes the conversation with the answer's trace
appended (for principles of `scope: trace`), so they see the JSON of every call.

A `python` rule calls the user's own function, `fn(conversation, response)`, with the conversation as
a list of `{"role", "content"}` dicts: it runs whatever that code does, so use checks only from
constitutions you trust. It returns a bool or a score in [0, 1]. A function that raises, or returns
anything else, gives a check error: never a pass or a fail.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlaif.inputs.constitution import import_check
from rlaif.records import Check, CheckOutcome, Constitution, Message, Principle, compile_pattern

__all__ = ["REGEX_TIMEOUT", "RULES", "Rule", "checkable", "checks_score", "describe_check", "run_check"]

REGEX_TIMEOUT = 0.1
"""Seconds one regular-expression match may take before the check gives up with a check error."""

Conversation = Sequence[Message | Mapping[str, str]]


class CheckError(Exception):
    """A rule could not decide (a timeout, a python check that misbehaved): becomes a check error."""


@dataclass(frozen=True)
class Rule:
    """One kind of check rule."""

    name: str
    """The key in a constitution's `check:` (also the `Check` field's alias or name)."""
    reads: str
    """What the rule looks at, for documentation and `rlaif constitution validate`."""
    run: Callable[[Any, str, Conversation, float], float]
    """(prepared value, response, conversation, regex timeout) → a score in [0, 1]; raises `CheckError`."""
    prepare: Callable[[Any], Any] = lambda value: value
    """Turns the rule's value into what `run` takes, once per check (a pattern into a compiled one)."""


@functools.lru_cache(maxsize=1)  # the rules of one check read the same response in turn
def _words(response: str) -> int:
    return len(response.split())


def _chars(response: str) -> int:
    return len(response.strip())


@functools.lru_cache(maxsize=1024)
def _pattern(pattern: str) -> Any:
    return compile_pattern(pattern)


def _timed_out(name: str, pattern: Any, text: str, timeout: float) -> CheckError:
    shown = pattern.pattern
    return CheckError(
        f"{name}: the pattern {shown!r} took over {timeout:g} s on a {len(text):,}-character response"
    )


def _must_match(pattern: Any, text: str, conversation: Conversation, timeout: float) -> float:
    try:
        return 1.0 if pattern.search(text, timeout=timeout) is not None else 0.0
    except TimeoutError:
        raise _timed_out("must_match", pattern, text, timeout) from None


def _must_not_match(pattern: Any, text: str, conversation: Conversation, timeout: float) -> float:
    try:
        return 0.0 if pattern.search(text, timeout=timeout) is not None else 1.0
    except TimeoutError:
        raise _timed_out("must_not_match", pattern, text, timeout) from None


def _starts_with(pattern: Any, text: str, conversation: Conversation, timeout: float) -> float:
    try:
        return 1.0 if pattern.match(text.lstrip(), timeout=timeout) is not None else 0.0
    except TimeoutError:
        raise _timed_out("starts_with", pattern, text, timeout) from None


def _not_starts_with(pattern: Any, text: str, conversation: Conversation, timeout: float) -> float:
    try:
        return 0.0 if pattern.match(text.lstrip(), timeout=timeout) is not None else 1.0
    except TimeoutError:
        raise _timed_out("not_starts_with", pattern, text, timeout) from None


def _json(_: Any, response: str, conversation: Conversation, timeout: float) -> float:
    try:
        json.loads(response)
    except json.JSONDecodeError:
        return 0.0
    except (RecursionError, ValueError) as exc:  # valid JSON past the parser's limits: undecided
        raise CheckError(f"json: the response could not be parsed ({type(exc).__name__})") from None
    return 1.0


@functools.lru_cache(maxsize=256)
def _function(target: str) -> Callable[..., object]:
    try:
        return import_check(target)
    except (ImportError, TypeError) as exc:
        raise CheckError(f"python: {exc}") from None


def _python(target: str, response: str, conversation: Conversation, timeout: float) -> float:
    function = _function(target)
    turns = [m.model_dump(mode="json") if isinstance(m, Message) else dict(m) for m in conversation]
    try:
        value = function(turns, response)
    except Exception as exc:  # the user's code may raise anything: recorded as a check error, not lost
        detail = " ".join(str(exc).split())[:200]
        raise CheckError(f"python: {target} raised {type(exc).__name__}: {detail}") from None
    kind = type(value)
    if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
        return 1.0 if value else 0.0
    if isinstance(value, numbers.Real):
        score = float(value)
        if math.isfinite(score) and 0.0 <= score <= 1.0:
            return score
        raise CheckError(f"python: {target} returned {value!r}, outside [0, 1]")
    if inspect.iscoroutine(value):
        value.close()  # never awaited: checks are plain functions
    shown = repr(value)[:60]
    raise CheckError(f"python: {target} returned {shown} ({type(value).__name__}); return a bool or a score")


def _turns(conversation: Conversation) -> list[Message]:
    turns = []
    for m in conversation:
        try:
            turns.append(m if isinstance(m, Message) else Message.model_validate(dict(m)))
        except ValueError as exc:
            raise CheckError(f"a turn of the conversation is not a chat message ({exc})") from None
    return turns


def _tool_calls(conversation: Conversation) -> list[tuple[int, str]]:
    """(turn index, tool name) of every call in the conversation (the trace included)."""
    return [(i, c.name) for i, m in enumerate(_turns(conversation)) for c in m.tool_calls]


def _max_tool_calls(n: int, text: str, conversation: Conversation, timeout: float) -> float:
    return 1.0 if len(_tool_calls(conversation)) <= n else 0.0


def _failed_result(content: str) -> bool:
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return False
    return isinstance(value, dict) and set(value) == {"error", "detail"}  # the runtime's failure form


def _tools_succeed(_: Any, text: str, conversation: Conversation, timeout: float) -> float:
    turns = _turns(conversation)
    return 0.0 if any(m.role == "tool" and _failed_result(m.content) for m in turns) else 1.0


CONFIRMING = compile_pattern(r"(?i)\b(yes|yeah|yep|confirm(ed|s)?|go ahead|proceed|do it|approved?)\b")
"""A user turn that agrees (`confirm_tools`)."""


def _confirm_tools(pattern: str, text: str, conversation: Conversation, timeout: float) -> float:
    turns = _turns(conversation)
    for index, name in _tool_calls(turns):
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        asked = False  # a confirmation answers an assistant turn: the request itself is not one
        confirmed = False
        for turn in turns[:index]:
            if turn.role == "assistant":
                asked = True
            elif turn.role == "user" and asked:
                try:
                    confirmed = CONFIRMING.search(turn.content, timeout=timeout) is not None
                except TimeoutError:
                    raise CheckError("confirm_tools: reading a user turn took too long") from None
        if not confirmed:
            return 0.0
    return 1.0


_NUMBER = compile_pattern(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numbers(text: str) -> set[float]:
    found = set()
    for match in _NUMBER.finditer(text[:100_000]):
        try:
            found.add(float(match.group().replace(",", "")))
        except ValueError:
            continue
    return found


def _quotes_tool_result(_: Any, text: str, conversation: Conversation, timeout: float) -> float:
    results = [m.content for m in _turns(conversation) if m.role == "tool" and not _failed_result(m.content)]
    if not results:
        return 0.0
    wanted = _numbers(results[-1])
    said = _numbers(text)
    return 1.0 if any(math.isclose(w, s, rel_tol=1e-9, abs_tol=1e-9) for w in wanted for s in said) else 0.0


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("min_words", "the number of words", lambda n, r, c, t: 1.0 if _words(r) >= n else 0.0),
        Rule("max_words", "the number of words", lambda n, r, c, t: 1.0 if _words(r) <= n else 0.0),
        Rule("min_chars", "the number of characters", lambda n, r, c, t: 1.0 if _chars(r) >= n else 0.0),
        Rule("max_chars", "the number of characters", lambda n, r, c, t: 1.0 if _chars(r) <= n else 0.0),
        Rule("must_match", "the text", _must_match, _pattern),
        Rule("must_not_match", "the text", _must_not_match, _pattern),
        Rule("starts_with", "the start of the text", _starts_with, _pattern),
        Rule("not_starts_with", "the start of the text", _not_starts_with, _pattern),
        Rule("json", "the whole text", _json),
        Rule("python", "the conversation and the text (your code)", _python),
        Rule("max_tool_calls", "the tool calls of the trace", _max_tool_calls),
        Rule("tools_succeed", "the tool results of the trace", _tools_succeed),
        Rule("confirm_tools", "the tool calls and the user turns before them", _confirm_tools),
        Rule("quotes_tool_result", "the last tool result and the text", _quotes_tool_result),
    )
}
"""Rule name → what it reads and how it runs; the names are the `Check` fields' YAML names."""

Plan = tuple[tuple[str, Callable[[Any, str, Conversation, float], float], Any], ...]
_PLANS: dict[int, tuple[Check, Plan]] = {}


def _plan(check: Check) -> Plan:
    """(name, run, prepared value) per rule, in the Check's field order (the cheap rules first); made
    once per check, since checks run for every response of a run."""
    found = _PLANS.get(id(check))
    if found is not None and found[0] is check:
        return found[1]
    if len(_PLANS) > 4096:
        _PLANS.clear()
    plan = tuple((name, RULES[name].run, RULES[name].prepare(value)) for name, value in check.rules().items())
    _PLANS[id(check)] = (check, plan)
    return plan


@functools.lru_cache(maxsize=4096)
def _decided(principle_id: str | None, passed: bool, failed: tuple[str, ...]) -> CheckOutcome:
    # Outcomes are frozen: a pass or fail is the same record every time, so it is made once.
    return CheckOutcome(principle_id=principle_id, score=1.0 if passed else 0.0, passed=passed, failed=failed)


def run_check(
    principle_or_check: Principle | Check,
    conversation: Conversation,
    response: str,
    *,
    timeout: float = REGEX_TIMEOUT,
) -> CheckOutcome:
    """Run every rule of a check on one response.

    Args:
        principle_or_check: A principle with a check, or a bare `Check`.
        conversation: The conversation the response answers (`Message`s or role/content mappings);
            only python rules read it.
        response: The response to check.
        timeout: Seconds each regular-expression match may take.

    Returns:
        A pass (score 1.0), a fail (0.0, `failed` naming the rules that failed), a python check's
        score, or a check error (`error` set; score and passed None) when any rule could not decide.

    Raises:
        ValueError: the principle has no check (see `checkable`).
    """
    if isinstance(principle_or_check, Principle):
        principle_id: str | None = principle_or_check.id
        check = principle_or_check.check
        if check is None:
            raise ValueError(f"principle {principle_id!r} has no check")
    else:
        principle_id, check = None, principle_or_check
    score, failed, errors = 1.0, [], []
    for name, run, value in _plan(check):
        try:
            result = run(value, response, conversation, timeout)
        except CheckError as exc:
            errors.append(str(exc))
            continue
        if result < 0.5:
            failed.append(name)
        if result < score:
            score = result
    if errors:
        return CheckOutcome(principle_id=principle_id, failed=tuple(failed), error="; ".join(errors))
    if score == 1.0 or score == 0.0:
        return _decided(principle_id, score == 1.0, tuple(failed))
    return CheckOutcome(principle_id=principle_id, score=score, passed=score >= 0.5, failed=tuple(failed))


def checkable(constitution: Constitution) -> tuple[Principle, ...]:
    """The principles that carry a check, in the constitution's order."""
    return tuple(p for p in constitution.principles if p.check is not None)


def describe_check(check: Check | None) -> str:
    """The rules of a check as one line, as written in YAML (`max_words: 60; not_starts_with: (?i)sure`);
    "" for none."""
    if check is None:
        return ""
    shown = {True: "true", False: "false"}
    return "; ".join(f"{name}: {shown.get(value, value)}" for name, value in check.rules().items())


def checks_score(principles: Sequence[Principle], conversation: Conversation, response: str) -> float | None:
    """The weighted share of checks passed: each principle's check score (1 pass, 0 fail, or a python
    check's score) weighted by the principle's weight. A check error counts on neither side; None when
    no check decided. Used as a reward (`reward: checks`)."""
    total = weight = 0.0
    for principle in principles:
        outcome = run_check(principle, conversation, response)
        if outcome.score is None:
            continue
        total += principle.weight * outcome.score
        weight += principle.weight
    return total / weight if weight else None
