"""Checks on principles: every rule passing and failing, edge cases, timeouts and python checks."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rlaif.judging.checks import RULES, checkable, describe_check, run_check
from rlaif.records import Check, CheckOutcome, Constitution, Message, Principle

HERE = "tests.unit.judging.test_checks"
SEEN: list[tuple[Any, str]] = []


# --- python checks used below (named as f"{HERE}:name") ---


def short(conversation: list[dict[str, str]], response: str) -> bool:
    return len(response) < 20


def share_of_vowels(conversation: list[dict[str, str]], response: str) -> float:
    return sum(c in "aeiou" for c in response) / max(len(response), 1)


def remember(conversation: list[dict[str, str]], response: str) -> bool:
    SEEN.append((conversation, response))
    return True


def too_big(conversation: list[dict[str, str]], response: str) -> float:
    return 1.5


def not_a_number(conversation: list[dict[str, str]], response: str) -> float:
    return float("nan")


def text(conversation: list[dict[str, str]], response: str) -> str:
    return "yes"


def nothing(conversation: list[dict[str, str]], response: str) -> None:
    return None


def broken(conversation: list[dict[str, str]], response: str) -> bool:
    raise KeyError("no such thing")


async def asynchronous(conversation: list[dict[str, str]], response: str) -> bool:
    return True


NOT_CALLABLE = 3


def outcome(response: str, conversation: Any = (), **rules: Any) -> CheckOutcome:
    return run_check(Check(**rules), conversation, response)


def passes(response: str, **rules: Any) -> bool:
    result = outcome(response, **rules)
    assert result.error is None, result.error
    assert result.passed is not None
    return result.passed


# --- one rule at a time ---


@pytest.mark.parametrize(
    ("rules", "good", "bad"),
    [
        ({"min_words": 3}, "one two three", "one two"),
        ({"max_words": 3}, "one two three", "one two three four"),
        ({"min_chars": 5}, "abcde", "abcd"),
        ({"max_chars": 5}, "abcde", "abcdef"),
        ({"must_match": r"\d"}, "room 101", "no digits"),
        ({"must_not_match": "(?i)https?://"}, "see the docs", "see HTTPS://example.org"),
        ({"starts_with": "(?i)yes"}, "Yes, it is.", "Well, yes."),
        ({"not_starts_with": "(?i)(sure|certainly)"}, "Paris.", "Certainly! Paris."),
        ({"json": True}, '{"a": [1, 2]}', "{'a': 1}"),
        ({"python": f"{HERE}:short"}, "brief", "a response well over twenty characters"),
    ],
)
def test_each_rule_passes_and_fails(rules: dict[str, Any], good: str, bad: str) -> None:
    assert passes(good, **rules)
    assert not passes(bad, **rules)
    assert outcome(bad, **rules).failed == (next(iter(rules)),)
    assert outcome(good, **rules).score == 1.0


def test_every_rule_of_the_model_has_a_runner_and_back() -> None:
    names = {field.alias or name for name, field in Check.model_fields.items()}
    assert set(RULES) == names
    assert all(rule.reads for rule in RULES.values())


def test_all_rules_must_pass_and_every_failure_is_named() -> None:
    rules = {"max_words": 5, "must_not_match": "(?i)https?://", "not_starts_with": "(?i)sure"}
    assert passes("Paris is the capital.", **rules)
    result = outcome("Sure, see http://example.org for the full list of capitals", **rules)
    assert (result.passed, result.score) == (False, 0.0)
    assert result.failed == ("max_words", "must_not_match", "not_starts_with")
    assert result.status == "fail"


def test_limits_are_inclusive() -> None:
    assert passes("a b c", min_words=3, max_words=3)
    assert passes("abc", min_chars=3, max_chars=3)


# --- edge cases ---


def test_empty_response() -> None:
    assert passes("", max_words=3)
    assert not passes("", min_words=1)
    assert not passes("   \n", min_chars=1)
    assert not passes("", must_match=".")
    assert passes("", must_not_match="x")
    assert not passes("", starts_with="(?i)yes")
    assert passes("", not_starts_with="(?i)sure")
    assert not passes("", json=True)


def test_whitespace_around_the_text_is_not_counted() -> None:
    assert passes("  abc \n", max_chars=3)
    assert passes("\n\n  Yes indeed", starts_with="Yes")
    assert not passes("\n  Sure thing", not_starts_with="(?i)sure")
    assert passes('  {"a": 1}\n', json=True)


def test_unicode() -> None:
    assert passes("東京は日本の首都です。", max_words=1, max_chars=11)  # no spaces: one word
    assert passes("naïve café ☕", max_words=3, min_chars=12, max_chars=12)
    assert passes("😀😀", max_chars=2)
    assert passes("Ça va", starts_with="(?i)ça")
    assert passes("Привет", must_match=r"^\w+$")
    assert not passes("« Sûrement »", must_not_match=r"\bSûrement\b")


def test_multi_line() -> None:
    listed = "Here are three:\n- one\n- two\n  3. three"
    no_list = r"(?m)^\s*(?:[-*+•]|\d+[.)])\s"
    assert not passes(listed, must_not_match=no_list)
    assert passes("One line.\nAnother line, with a - dash.", must_not_match=no_list)
    assert passes("first\nsecond\nthird", max_words=3, must_match="(?m)^third$")
    assert not passes("first\nsecond", must_match="^second")  # without (?m), ^ is the start of the text


def test_json_forms() -> None:
    for good in ("[]", "42", '"text"', "null", '{"nested": {"a": [true, false]}}'):
        assert passes(good, json=True), good
    for bad in ("```json\n{}\n```", "{", '{"a": 1} trailing', "Sure: {}"):
        assert not passes(bad, json=True), bad


def test_json_too_deep_to_parse_is_a_check_error() -> None:
    result = outcome("[" * 100_000 + "]" * 100_000, json=True)
    assert result.status == "check_error"
    assert result.error is not None and "json" in result.error


def test_principle_id_and_conversation_of_messages() -> None:
    principle = Principle(id="brief", judge_question="Which is shorter?", check=Check(max_words=2))
    assert run_check(principle, [Message(role="user", content="hi")], "Hello there").principle_id == "brief"
    assert run_check(principle, (), "Hello there friend").failed == ("max_words",)
    with pytest.raises(ValueError, match="no check"):
        run_check(Principle(id="plain", judge_question="q"), (), "text")


# --- a regular expression cannot hang the run ---


def test_catastrophic_pattern_times_out_as_a_check_error() -> None:
    text = "a" * 20_000 + "b"
    for rules in ({"must_match": "(a+)+$"}, {"must_not_match": "(a+)+$"}, {"starts_with": "(a|aa)+$"}):
        start = time.perf_counter()
        result = run_check(Check(**rules), (), text, timeout=0.05)
        assert time.perf_counter() - start < 2
        assert (result.status, result.score, result.passed) == ("check_error", None, None)
        assert result.error is not None and "took over 0.05 s" in result.error


def test_a_timeout_wins_over_a_failed_rule() -> None:
    result = run_check(Check(max_words=1, must_match="(a+)+$"), (), "a a " + "a" * 20_000 + "b", timeout=0.05)
    assert result.status == "check_error"
    assert result.failed == ("max_words",)


# --- python checks ---


def test_python_check_gets_the_conversation_as_dicts() -> None:
    SEEN.clear()
    conversation = [Message(role="user", content="Hi"), {"role": "assistant", "content": "Hello"}]
    result = run_check(Check(python=f"{HERE}:remember"), conversation, "the answer")
    assert result.passed is True
    assert SEEN == [
        ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "the answer")
    ]


def test_python_check_scores() -> None:
    high = outcome("aeiou", python=f"{HERE}:share_of_vowels")
    assert (high.score, high.passed) == (1.0, True)
    middle = outcome("abcd", python=f"{HERE}:share_of_vowels")
    assert (middle.score, middle.passed, middle.failed) == (0.25, False, ("python",))
    assert outcome("aexy", python=f"{HERE}:share_of_vowels").passed is True  # 0.5 passes


def test_python_score_with_a_failed_declarative_rule_fails() -> None:
    result = outcome("aeiou aeiou", python=f"{HERE}:share_of_vowels", max_words=1)
    assert (result.score, result.failed) == (0.0, ("max_words",))


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("too_big", "1.5, outside [0, 1]"),
        ("not_a_number", "nan, outside [0, 1]"),
        ("text", "returned 'yes' (str)"),
        ("nothing", "returned None"),
        ("broken", "raised KeyError"),
        ("asynchronous", "coroutine"),
        ("NOT_CALLABLE", "not a function"),
        ("no_such_function", "no attribute 'no_such_function'"),
    ],
)
def test_python_check_misbehaving_is_a_check_error(name: str, needle: str) -> None:
    result = outcome("text", python=f"{HERE}:{name}", max_words=100)
    assert (result.status, result.score, result.passed) == ("check_error", None, None)
    assert result.error is not None and needle in result.error, result.error
    assert result.failed == ()


def test_python_check_in_a_module_that_does_not_import() -> None:
    result = outcome("text", python="no_such_module_anywhere:fn")
    assert result.status == "check_error"
    assert result.error is not None and "cannot import 'no_such_module_anywhere'" in result.error


def test_numpy_results_are_scores() -> None:
    numpy = pytest.importorskip("numpy")
    import sys

    module = sys.modules[__name__]
    module.np_true = lambda conversation, response: numpy.bool_(True)  # type: ignore[attr-defined]
    module.np_float = lambda conversation, response: numpy.float32(0.75)  # type: ignore[attr-defined]
    assert outcome("x", python=f"{HERE}:np_true").score == 1.0
    assert outcome("x", python=f"{HERE}:np_float").score == 0.75


# --- helpers ---


def test_checkable_and_describe() -> None:
    constitution = Constitution(
        name="c",
        principles=(
            Principle(id="a", judge_question="q"),
            Principle(id="b", judge_question="q", check=Check(max_words=60, not_starts_with="(?i)sure")),
            Principle(id="c", critique_request="c", revision_request="r", check=Check(json=True)),
        ),
    )
    assert [p.id for p in checkable(constitution)] == ["b", "c"]
    assert describe_check(constitution.principle("b").check) == "max_words: 60; not_starts_with: (?i)sure"
    assert describe_check(constitution.principle("c").check) == "json: true"
    assert describe_check(None) == ""
