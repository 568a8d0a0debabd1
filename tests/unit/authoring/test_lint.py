"""`rlaif constitution lint`: each rule on a small file made to trip it, with the line it points at."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlaif.authoring.lint import RULES, lint_constitution
from rlaif.authoring.preview import load_counter
from rlaif.authoring.reports import LintWarning
from rlaif.cli.main import app
from rlaif.config import JudgeConfig
from rlaif.errors import ConstitutionError
from rlaif.inputs.constitution import find_constitution

ESTIMATE = load_counter("estimate")

CLEAN = """\
name: clean
principles:
  - id: kind
    critique_request: Point out anything unkind in your last answer.
    revision_request: Rewrite the answer so it is kind.
    judge_question: Which response is kinder?
    tags: [tone]
  - id: short
    critique_request: Point out any padding in your last answer.
    revision_request: Rewrite the answer without padding.
    judge_question: Which response says the same in fewer words?
    tags: [tone]
"""


def lint(tmp_path: Path, text: str, **options: object) -> list[LintWarning]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    settings: dict[str, object] = {"counter": ESTIMATE, "max_context": 2048, **options}
    return lint_constitution(path, **settings).warnings  # type: ignore[arg-type]


def rules(warnings: list[LintWarning]) -> list[tuple[str, int | None, str | None]]:
    return [(w.rule, w.line, w.principle_id) for w in warnings]


def test_a_clean_constitution_has_no_warnings(tmp_path: Path) -> None:
    assert lint(tmp_path, CLEAN) == []


def test_a_judge_question_that_does_not_compare(tmp_path: Path) -> None:
    text = CLEAN.replace("Which response is kinder?", "Is the response kind?")
    (warning,) = lint(tmp_path, text)
    assert (warning.rule, warning.line, warning.principle_id) == ("judge-question", 6, "kind")
    assert "Which response" in warning.message


def test_requests_too_long_for_the_context(tmp_path: Path) -> None:
    long = "Point out " + "every single unkind word " * 200 + "in your last answer."
    text = CLEAN.replace("Point out anything unkind in your last answer.", long)
    assert rules(lint(tmp_path, text)) == [("context", 4, "kind")]
    assert rules(lint(tmp_path, text, max_context=4096)) == []
    warning = lint(tmp_path, text, max_context=300)[0]
    assert (
        warning.line == 4
        and "nothing is left for the conversation" in warning.message
        and "estimated" in warning.message
    )


def test_near_duplicate_principles(tmp_path: Path) -> None:
    text = CLEAN + CLEAN.split("principles:\n")[1].split("  - id: short")[0].replace("id: kind", "id: kind2")
    found = rules(lint(tmp_path, text))
    assert ("near-duplicate", 13, "kind2") in found


def test_requests_one_character_apart_are_near_duplicates_whatever_the_judge_question(tmp_path: Path) -> None:
    """Issue 31: compared joined, a long judge question that differs hid two principles whose critique
    and revision requests differ by one character; each field is compared now."""
    twin = """\
  - id: kind2
    critique_request: Point out anything unkind in your last answers.
    revision_request: Rewrite the answer so it is kind!
    judge_question: Of the two responses, which one would a careful editor say treats the reader with
      the most warmth, patience and respect throughout, from its first sentence to its last?
"""
    found = lint(tmp_path, CLEAN + twin)
    dup = [w for w in found if w.rule == "near-duplicate"]
    assert [(w.line, w.principle_id) for w in dup] == [(13, "kind2")]
    assert "critique_request and revision_request nearly the same as 'kind'" in dup[0].message
    only_critique = twin.replace("Rewrite the answer so it is kind!", "Rewrite it in French, formally.")
    assert not [w for w in lint(tmp_path, CLEAN + only_critique) if w.rule == "near-duplicate"]


def test_no_judge_question_only_when_judging(tmp_path: Path) -> None:
    text = CLEAN.replace("    judge_question: Which response is kinder?\n", "")
    assert rules(lint(tmp_path, text)) == [("no-judge-question", 3, "kind")]
    assert lint(tmp_path, text, judge=JudgeConfig(enabled=False)) == []


def test_a_weight_that_is_practically_never_drawn(tmp_path: Path) -> None:
    text = CLEAN.replace(
        "    tags: [tone]\n  - id: short", "    tags: [tone]\n    weight: 0.001\n  - id: short", 1
    )
    found = lint(tmp_path, text)
    assert rules(found) == [
        ("rarely-sampled", 8, "kind"),
        ("rarely-sampled", 8, "kind"),
    ]  # critique and judge
    assert "0.10% of draws" in found[0].message


def test_a_tag_used_once_suggests_a_close_one(tmp_path: Path) -> None:
    text = CLEAN.replace("tags: [tone]\n  - id: short", "tags: [tone, harms]\n  - id: short").replace(
        "tags: [tone]\n", "tags: [tone, harm]\n"
    )
    found = lint(tmp_path, text)
    assert rules(found) == [("tag-once", 7, "kind"), ("tag-once", 12, "short")]
    assert "a typo of 'harm'?" in found[0].message


def test_a_few_shot_example_that_fails_a_check(tmp_path: Path) -> None:
    text = CLEAN.replace(
        "    tags: [tone]\n  - id: short", "    tags: [tone]\n    check: {max_words: 5}\n  - id: short", 1
    ) + (
        "examples:\n  - prompt: Hi\n    response: Go away.\n    critique: Rude.\n"
        "    revision: Hello there, it is lovely to meet you today.\n"
    )
    (warning,) = lint(tmp_path, text)
    assert (warning.rule, warning.line, warning.principle_id) == ("example-check", 18, "kind")
    assert "max_words" in warning.message


def test_every_rule_has_a_test() -> None:
    assert set(RULES) == {
        "judge-question", "context", "near-duplicate", "no-judge-question", "rarely-sampled", "tag-once",
        "example-check",
    }  # fmt: skip


def test_the_shipped_constitutions_lint_without_a_real_problem() -> None:
    for name in ("harmless", "helpful-honest", "concise-plain"):
        report = lint_constitution(find_constitution(name), counter=ESTIMATE, max_context=2048)
        assert {w.rule for w in report.warnings} <= {"tag-once"}, name


def test_strict_exits_1_on_warnings(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CLEAN.replace("Which response is kinder?", "Is it kind?"))
    runner = CliRunner()
    plain = runner.invoke(app, ["constitution", "lint", str(path)])
    assert plain.exit_code == 0 and f"{path}:6: judge-question" in plain.output.replace("\n", "")
    assert runner.invoke(app, ["constitution", "lint", str(path), "--strict"]).exit_code == 1
    path.write_text(CLEAN)
    assert runner.invoke(app, ["constitution", "lint", str(path), "--strict"]).exit_code == 0


def test_an_unknown_principle_suggests_the_close_one() -> None:
    result = CliRunner().invoke(app, ["constitution", "preview", "harmless", "-p", "harm-generl"])
    assert isinstance(result.exception, ConstitutionError)
    assert "did you mean 'harm-general'?" in str(result.exception)


@pytest.mark.parametrize("count", [1, 3])
def test_preview_needs_two_answers(count: int) -> None:
    argv = ["constitution", "preview", "harmless", "-p", "harm-general", "--tokenizer", "estimate"]
    result = CliRunner().invoke(app, argv + ["--answer", "x"] * count)
    assert "give it twice" in str(result.exception)
