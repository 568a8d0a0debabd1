"""`check:` on principles as a constitution file gives it: the YAML form, and one clear error per mistake."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from rlaif.errors import ConstitutionError
from rlaif.inputs.constitution import load_constitution
from rlaif.records import Check, Constitution, Principle

HEAD = """\
name: checked
principles:
  - id: helpful
    critique_request: Is the answer unhelpful?
    revision_request: Make it helpful.
    judge_question: Which response is more helpful?
  - id: concise
    judge_question: Which response is shorter?
"""
# The check is the last key of principles[1]; its line is 9.


def with_check(tmp_path: Path, check: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + f"    check: {check}\n", encoding="utf-8")
    return path


def error_for(path: Path, *needles: str) -> str:
    with pytest.raises(ConstitutionError) as info:
        load_constitution(path)
    message = str(info.value)
    assert "\n" not in message
    for needle in (path.name, *needles):
        assert needle in message, message
    return message


def test_the_documented_form_loads(tmp_path: Path) -> None:
    check = (
        '{max_words: 60, min_words: 3, max_chars: 400, min_chars: 2, must_match: "[.!?]$", '
        'must_not_match: "(?i)https?://", starts_with: "[A-Z]", not_starts_with: "(?i)(sure|certainly)", '
        "json: true}"
    )
    constitution = load_constitution(with_check(tmp_path, check))
    loaded = constitution.principle("concise").check
    assert loaded is not None
    assert loaded.max_words == 60 and loaded.valid_json is True
    assert list(loaded.rules()) == [
        "min_words", "max_words", "min_chars", "max_chars", "must_match", "must_not_match", "starts_with",
        "not_starts_with", "json",
    ]  # fmt: skip
    assert constitution.principle("helpful").check is None


def test_block_form_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "block.yaml"
    path.write_text(HEAD + "    check:\n      json: true\n      max_chars: 300\n", encoding="utf-8")
    constitution = load_constitution(path)
    dumped = constitution.model_dump(mode="json")
    assert dumped["principles"][1]["check"] == {"max_chars": 300, "json": True}
    assert "check" not in dumped["principles"][0]
    again_yaml = tmp_path / "again.yaml"
    again_yaml.write_text(yaml.safe_dump(dumped, sort_keys=False), encoding="utf-8")
    again_json = tmp_path / "again.json"
    again_json.write_text(json.dumps(dumped), encoding="utf-8")
    for again in (load_constitution(again_yaml), load_constitution(again_json)):
        assert again == constitution
        assert again.hash == constitution.hash
    assert Constitution.model_validate_json(constitution.model_dump_json()) == constitution


def test_check_changes_the_hash_and_no_check_keeps_the_old_one() -> None:
    plain = Constitution(
        name="c",
        principles=(
            Principle(
                id="a", critique_request="c", revision_request="r", judge_question="q", tags=("t",), weight=2
            ),
        ),
    )
    assert plain.hash == "a4e3914e64d67f7f"  # the hash before checks existed: runs resume
    checked = plain.model_copy(
        update={"principles": (plain.principles[0].model_copy(update={"check": Check(max_words=5)}),)}
    )
    other = plain.model_copy(
        update={"principles": (plain.principles[0].model_copy(update={"check": Check(max_words=6)}),)}
    )
    assert len({plain.hash, checked.hash, other.hash}) == 3
    assert Check(json=True) == Check(valid_json=True)
    assert hash(Check(json=True, max_words=2)) == hash(Check(max_words=2, valid_json=True))


# --- each mistake: one error naming the file, the line, the field, the value and the fix ---


def test_bad_regex(tmp_path: Path) -> None:
    message = error_for(
        with_check(tmp_path, '{must_not_match: "(unclosed"}'),
        "line 9",
        "principles[1].check.must_not_match",
        "does not compile",
        "'(unclosed'",
        "Python `re` syntax",
    )
    assert "missing )" in message


@pytest.mark.parametrize("rule", ["must_match", "starts_with", "not_starts_with"])
def test_bad_regex_in_every_pattern_rule(tmp_path: Path, rule: str) -> None:
    error_for(with_check(tmp_path, f'{{{rule}: "[a-"}}'), f"principles[1].check.{rule}", "does not compile")


def test_empty_pattern(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, '{must_match: ""}'), "principles[1].check.must_match", "at least 1 character"
    )


def test_unknown_rule_with_did_you_mean(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, "{max_word: 60}"),
        "line 9",
        "principles[1].check.max_word",
        "unknown key 'max_word'",
        "did you mean 'max_words'?",
        "json",  # the allowed keys are the YAML names
    )


def test_unknown_rule_close_to_json(tmp_path: Path) -> None:
    error_for(with_check(tmp_path, "{jsn: true}"), "did you mean 'json'?")


def test_min_above_max(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, "{min_words: 10, max_words: 5}"),
        "line 9",
        "principles[1].check.max_words",
        "max_words 5 is below min_words 10: no response can pass",
        "(got 5)",
        "raise max_words or lower min_words",
    )
    error_for(with_check(tmp_path, "{min_chars: 10, max_chars: 5}"), "max_chars 5 is below min_chars 10")


def test_words_that_cannot_fit_in_the_characters(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, "{min_words: 10, max_chars: 12}"),
        "principles[1].check",
        "min_words 10 needs at least 19 characters but max_chars is 12",
        "raise max_chars or lower min_words",
    )


def test_empty_check(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, "{}"),
        "line 9",
        "principles[1].check",
        "the check has no rules",
        "max_words",
        "or remove it",
    )


def test_json_false_is_not_a_rule(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, "{json: false}"), "principles[1].check.json", "write json: true, or leave it out"
    )


@pytest.mark.parametrize(
    ("value", "needle"),
    [("0", "1 or more"), ("-3", "1 or more"), ("2.5", "whole number"), ("ten", "whole number"), ("true", "")],
)
def test_bad_limits(tmp_path: Path, value: str, needle: str) -> None:
    error_for(with_check(tmp_path, f"{{max_words: {value}}}"), "principles[1].check.max_words", needle)


def test_check_is_not_a_mapping(tmp_path: Path) -> None:
    error_for(with_check(tmp_path, "short"), "principles[1].check", "max_words")


def test_check_null_means_no_check(tmp_path: Path) -> None:
    assert load_constitution(with_check(tmp_path, "null")).principle("concise").check is None


# --- python checks are imported when the constitution loads ---


def test_python_check_from_the_constitution_folder(tmp_path: Path) -> None:
    (tmp_path / "house_checks_ok.py").write_text(
        "def polite(conversation, response):\n    return 'please' in response\n", encoding="utf-8"
    )
    constitution = load_constitution(with_check(tmp_path, '{python: "house_checks_ok:polite"}'))
    check = constitution.principle("concise").check
    assert check is not None and check.python == "house_checks_ok:polite"
    assert str(tmp_path) not in sys.path  # the folder is searched only while loading

    from rlaif.judging.checks import run_check

    assert run_check(constitution.principle("concise"), (), "yes please").passed is True


def test_python_check_that_does_not_import(tmp_path: Path) -> None:
    error_for(
        with_check(tmp_path, '{python: "no_such_module_here:fn"}'),
        "line 9",
        "principles[1].check.python",
        "cannot import 'no_such_module_here'",
        "'no_such_module_here:fn'",
        "package.module:function",
    )


def test_python_check_module_that_raises_on_import(tmp_path: Path) -> None:
    (tmp_path / "house_checks_boom.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    error_for(
        with_check(tmp_path, '{python: "house_checks_boom:fn"}'),
        "principles[1].check.python",
        "RuntimeError: boom",
    )


def test_python_check_without_the_function(tmp_path: Path) -> None:
    (tmp_path / "house_checks_empty.py").write_text("VALUE = 3\n", encoding="utf-8")
    error_for(with_check(tmp_path, '{python: "house_checks_empty:missing"}'), "has no attribute 'missing'")
    error_for(with_check(tmp_path, '{python: "house_checks_empty:VALUE"}'), "is a int, not a function")


@pytest.mark.parametrize("target", ["no_colon", "a:b:c", "mod:", ":fn", "1mod:fn", "mod:fn()"])
def test_python_target_form(tmp_path: Path, target: str) -> None:
    error_for(
        with_check(tmp_path, f'{{python: "{target}"}}'),
        "principles[1].check.python",
        "not a 'package.module:function' target",
    )


def test_python_checks_are_not_imported_when_asked_not_to(tmp_path: Path) -> None:
    (tmp_path / "house_checks_never.py").write_text("raise RuntimeError('imported')\n", encoding="utf-8")
    path = with_check(tmp_path, '{python: "house_checks_never:fn"}')
    constitution = load_constitution(path, import_checks=False)
    assert "house_checks_never" not in sys.modules
    check = constitution.principle("concise").check
    assert check is not None and check.python == "house_checks_never:fn"


# --- the examples in constitution/README.md ---

README = Path(__file__).resolve().parents[3] / "constitution" / "README.md"


def blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [part.split("```", 1)[0] for part in text.split(f"```{language}\n")[1:]]


def test_readme_examples(tmp_path: Path) -> None:
    yaml_blocks, json_blocks = blocks("yaml"), blocks("json")
    example = tmp_path / "example.yaml"
    example.write_text(yaml_blocks[0], encoding="utf-8")
    constitution = load_constitution(example)
    assert constitution.principle("brief").check == Check(max_words=60, min_words=3)
    every_rule = yaml.safe_load(next(b for b in yaml_blocks if b.startswith("check:")))["check"]
    assert set(Check.model_validate(every_rule).rules()) == {
        field.alias or name for name, field in Check.model_fields.items()
    }
    for index, block in enumerate(json_blocks):
        path = tmp_path / f"imported{index}.json"
        path.write_text(block, encoding="utf-8")
        assert load_constitution(path).principles


def test_readme_python_examples() -> None:
    code = blocks("python")
    assert any("run_check" in block for block in code)
    for block in code:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 - our own documentation
