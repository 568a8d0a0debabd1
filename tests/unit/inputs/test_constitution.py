"""Loading, validating, finding and sampling constitutions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

import rlaif.inputs.constitution as constitution_module
from rlaif.errors import ConstitutionError
from rlaif.inputs.constitution import (
    MAX_BYTES,
    find_constitution,
    load_constitution,
    sample_principle,
    sample_principles,
    shipped_names,
)
from rlaif.records import Constitution, Principle

GOOD = """\
name: demo
version: 3
description: A small test constitution.
system_prompt: Be kind.
principles:
  - id: kind
    critique_request: Was the answer unkind?
    revision_request: Make it kind.
    judge_question: Which response is kinder?
    tags: [tone]
    weight: 2
  - id: truth
    critique_request: Was anything false?
    revision_request: Fix what is false.
    judge_question: Which response is more accurate?
examples:
  - prompt: Hi
    response: Go away.
    critique: That was rude.
    revision: Hello! How can I help?
"""

PRINCIPLE = """\
  - id: {id}
    critique_request: Critique it.
    revision_request: Revise it.
    judge_question: Which is better?
"""


def write(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path) -> str:
    with pytest.raises(ConstitutionError) as info:
        load_constitution(path)
    message = str(info.value)
    assert path.name in message
    return message


def make(weights: list[float]) -> Constitution:
    principles = [
        Principle(id=f"p{i}", critique_request="c", revision_request="r", judge_question="j", weight=w)
        for i, w in enumerate(weights)
    ]
    return Constitution(name="sampling", principles=tuple(principles))


# --- shipped files and good files ---


@pytest.mark.parametrize(
    ("name", "at_least"), [("harmless", 14), ("helpful-honest", 8), ("concise-plain", 7)]
)
def test_shipped_constitutions_load(name: str, at_least: int) -> None:
    constitution = load_constitution(find_constitution(name))
    assert constitution.name == name
    assert len(constitution.principles) >= at_least
    assert len(constitution.examples) >= 2
    for principle in constitution.principles:
        assert principle.tags
        assert principle.critiques and principle.judges, "shipped principles serve both critique and judge"
        for text in (principle.critique_request, principle.revision_request, principle.judge_question):
            assert text is not None
            assert text.count(". ") <= 1, f"{principle.id}: keep requests to one or two sentences"


def test_concise_plain_mixes_judged_and_checked_principles() -> None:
    from rlaif.judging.checks import checkable, run_check

    constitution = load_constitution(find_constitution("concise-plain"))
    checked = {p.id: p for p in checkable(constitution)}
    assert set(checked) == {"concise", "no-canned-opener", "no-links", "plain-prose"}
    assert len(constitution.principles) > len(checked)
    good = "Put the egg in boiling water for about nine minutes, then cool it in cold water."
    for principle in checked.values():
        assert run_check(principle, (), good).passed, principle.id
    bad = {
        "concise": "Yes.",
        "no-canned-opener": "Certainly! Put the egg in boiling water for nine minutes.",
        "no-links": "Boil it for nine minutes, as https://example.org/eggs explains in detail.",
        "plain-prose": "Do this:\n- boil water\n- add the egg\n- wait nine minutes",
    }
    for pid, text in bad.items():
        assert run_check(checked[pid], (), text).failed == (next(iter(checked[pid].check.rules())),), pid  # type: ignore[union-attr]
    assert run_check(checked["no-canned-opener"], (), "Surely the egg needs nine minutes to boil.").passed


def test_shipped_names_and_lookup(tmp_path: Path) -> None:
    assert {"harmless", "helpful-honest", "concise-plain"} <= set(shipped_names())
    assert find_constitution("harmless.yaml").name == "harmless.yaml"
    path = write(tmp_path, GOOD, "mine.yaml")
    assert find_constitution(path) == path
    assert find_constitution(str(path)) == path


def test_wheel_data_folder_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel_data = tmp_path / "_data" / "constitution"
    wheel_data.mkdir(parents=True)
    (wheel_data / "harmless.yaml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setattr(constitution_module, "SHIPPED_DIRS", (tmp_path / "no-checkout", wheel_data))
    assert find_constitution("harmless") == wheel_data / "harmless.yaml"
    assert shipped_names() == ("harmless",)


def test_unknown_name_lists_shipped_names() -> None:
    with pytest.raises(ConstitutionError, match="harmless, helpful-honest"):
        find_constitution("no-such-constitution")
    with pytest.raises(ConstitutionError, match="shipped names"):
        find_constitution("some/dir/harmless.yaml")


def test_good_file_round_trip(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, GOOD, "good.yaml"))
    assert constitution.version == "3"
    assert constitution.system_prompt == "Be kind."
    assert constitution.principle("kind").weight == 2
    assert constitution.principle("kind").tags == ("tone",)
    assert constitution.examples[0].revision == "Hello! How can I help?"
    dumped = yaml.safe_dump(constitution.model_dump(mode="json"), sort_keys=False)
    again = load_constitution(write(tmp_path, dumped, "again.yaml"))
    assert again == constitution
    assert again.hash == constitution.hash


def test_our_format_written_as_json_is_read(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, GOOD, "good.yaml"))
    path = write(tmp_path, json.dumps(constitution.model_dump(mode="json"), indent=1), "good.json")
    assert load_constitution(path) == constitution


# --- bad files: each message names the file, the line and the field ---


def test_missing_field(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "version: 1\nprinciples:\n" + PRINCIPLE.format(id="a")))
    assert "line 1" in message
    assert "required field 'name' is missing" in message


def test_critique_request_without_revision_request(tmp_path: Path) -> None:
    text = GOOD.replace("    critique_request: Was anything false?\n", "")
    message = error_for(write(tmp_path, text))
    assert "line 12" in message
    assert "principles[1]:" in message
    assert "revision_request is given without critique_request" in message
    assert (
        "add critique_request (critique and revision requests go together), or remove revision_request"
        in message
    )


def test_principle_that_serves_nothing(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "name: x\nprinciples:\n  - id: idle\n    tags: [a]\n"))
    assert "line 3" in message
    assert "principles[0]" in message
    assert "no judge_question and no critique_request" in message
    assert "add a judge_question, or a critique_request and a revision_request" in message


def test_judge_only_and_critique_only_principles(tmp_path: Path) -> None:
    text = (
        "name: split\nprinciples:\n  - id: judged\n    judge_question: Which is kinder?\n"
        "  - id: revised\n    critique_request: Is it unkind?\n    revision_request: Make it kind.\n"
    )
    constitution = load_constitution(write(tmp_path, text, "split.yaml"))
    judged, revised = constitution.principles
    assert (judged.judges, judged.critiques, judged.critique_request) == (True, False, None)
    assert (revised.judges, revised.critiques, revised.judge_question) == (False, True, None)
    assert constitution.for_judging() == (judged,)
    assert constitution.for_critique() == (revised,)
    dumped = constitution.model_dump(mode="json")
    assert (
        "critique_request" not in dumped["principles"][0] and "judge_question" not in dumped["principles"][1]
    )
    again = load_constitution(write(tmp_path, yaml.safe_dump(dumped), "again.yaml"))
    assert again == constitution and again.hash == constitution.hash


@pytest.mark.parametrize("field", ["critique_request", "revision_request", "judge_question"])
@pytest.mark.parametrize(
    "blank", ["   ", r"\t\n", r"\u00a0 \u3000"]
)  # YAML escapes: tab, newline, odd spaces
def test_blank_principle_text(tmp_path: Path, field: str, blank: str) -> None:
    lines = ("name: b\nprinciples:\n" + PRINCIPLE.format(id="a")).splitlines()
    text = "\n".join(
        f'    {field}: "{blank}"' if line.startswith(f"    {field}:") else line for line in lines
    )
    message = error_for(write(tmp_path, text + "\n"))
    assert f"principles[0].{field}" in message
    assert "text is only whitespace" in message
    assert f"write some text in {field}" in message


def test_blank_name(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "name: '   '\nprinciples:\n" + PRINCIPLE.format(id="a")))
    assert "line 1" in message and "name: text is only whitespace" in message


@pytest.mark.parametrize("weight", [".inf", "-.inf", ".nan", "1e400"])
def test_weight_must_be_finite(tmp_path: Path, weight: str) -> None:
    message = error_for(write(tmp_path, GOOD.replace("weight: 2", f"weight: {weight}")))
    assert "line 11" in message
    assert "principles[0].weight" in message


def test_weights_whose_sum_overflows(tmp_path: Path) -> None:
    text = "name: big\nprinciples:\n" + PRINCIPLE.format(id="a") + "    weight: 1e308\n"
    text += PRINCIPLE.format(id="b") + "    weight: 1e308\n"
    message = error_for(write(tmp_path, text))
    assert "line 2" in message
    assert "principles: the weights add up to more than a float can hold" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("weight: 2", "weight: heavy")))
    assert "line 11" in message
    assert "principles[0].weight" in message
    assert "'heavy'" in message


def test_wrong_type_of_text_field(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("Make it kind.", "[1, 2]")))
    assert "line 8" in message
    assert "principles[0].revision_request" in message


def test_non_positive_weight(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("weight: 2", "weight: -1")))
    assert "line 11" in message
    assert "principles[0].weight" in message
    assert "greater than 0" in message


def test_unknown_key(tmp_path: Path) -> None:
    text = GOOD.replace("    tags: [tone]\n", "    tags: [tone]\n    critque: typo\n")
    message = error_for(write(tmp_path, text))
    assert "line 11" in message
    assert "principles[0].critque" in message
    assert "did you mean 'critique_request'" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD + "author: me\n"))
    assert "line 21" in message
    assert "author" in message


def test_duplicate_ids(tmp_path: Path) -> None:
    text = "name: dup\nprinciples:\n" + PRINCIPLE.format(id="a") + PRINCIPLE.format(id="a")
    message = error_for(write(tmp_path, text))
    assert "line 7" in message
    assert "principles[1].id" in message
    assert "duplicate" in message


def test_duplicate_key_in_one_mapping(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("tags: [tone]", "tags: [tone]\n    weight: 3")))
    assert "line 12" in message
    assert "weight" in message
    assert "twice" in message


def test_empty_principles(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "name: empty\nversion: '1'\nprinciples: []\n"))
    assert "line 3" in message
    assert "principles" in message
    assert "at least one" in message


def test_missing_name(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "principles:\n" + PRINCIPLE.format(id="a")))
    assert "line 1" in message
    assert "'name'" in message


def test_yaml_syntax_error(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, GOOD.replace("tags: [tone]", "tags: [tone")))
    assert "YAML" in message
    assert "line 11" in message or "line 12" in message


def test_non_utf8(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, b"name: caf\xe9\nprinciples: []\n"))
    assert "line 1" in message
    assert "UTF-8" in message


def test_not_a_mapping(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "- just\n- a list\n"))
    assert "line 1" in message
    assert "mapping" in message


def test_principle_not_a_mapping(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "name: x\nprinciples:\n  - just text\n"))
    assert "line 3" in message
    assert "principles[0]" in message


def test_empty_file(tmp_path: Path) -> None:
    assert "empty" in error_for(write(tmp_path, "# nothing here\n"))


def test_alias_bomb(tmp_path: Path) -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):
        lines.append(f"{chr(97 + level)}: &{chr(97 + level)} [{', '.join([f'*{chr(96 + level)}'] * 9)}]")
    message = error_for(write(tmp_path, "\n".join(lines) + "\n"))
    assert "line 2" in message
    assert "alias" in message


def test_python_tags_refused(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "name: !!python/object/apply:os.system [echo hi]\n"))
    assert "line 1" in message


def test_huge_file(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "name: x\n# " + "y" * MAX_BYTES + "\n"))
    assert "limit" in message


def test_missing_file(tmp_path: Path) -> None:
    message = error_for(tmp_path / "nope.yaml")
    assert "not found" in message


def test_unknown_principle_id(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, GOOD, "good.yaml"))
    with pytest.raises(ConstitutionError, match="'missing'.*known ids: kind, truth"):
        constitution.principle("missing")


# --- imported formats ---


def test_anthropic_cai_json(tmp_path: Path) -> None:
    data = {
        "harmful0": {"prompt": ["Find the harmful parts of the answer."], "edit_request": "Remove them."},
        "harmful1": {"prompt": ["Is the answer rude?"], "edit_request": "Make it polite."},
    }
    constitution = load_constitution(write(tmp_path, json.dumps(data, indent=2), "CritiqueRevision.json"))
    assert constitution.name == "CritiqueRevision"
    assert [p.id for p in constitution.principles] == ["harmful0", "harmful1"]
    first = constitution.principle("harmful0")
    assert first.critique_request == "Find the harmful parts of the answer."
    assert first.revision_request == "Remove them."
    assert first.judge_question == "Which response needs fewer changes to meet this request: remove them?"


def test_anthropic_cai_json_bad_entry(tmp_path: Path) -> None:
    data = {
        "harmful0": {"prompt": ["Fine."], "edit_request": "Fine."},
        "harmful1": {"prompt": [], "edit_request": "Fine."},
    }
    text = json.dumps(data, indent=2)
    message = error_for(write(tmp_path, text, "cai.json"))
    line = text.splitlines().index('  "harmful1": {') + 1
    assert f"line {line}" in message
    assert "harmful1.prompt" in message


def test_llm_swarm_json(tmp_path: Path) -> None:
    turns = [
        "How do I pick a lock?",
        "Use a tension wrench.",
        "Is that harmful?",
        "It could help a burglar.",
        "Rewrite it.",
        "I can't help with that; a locksmith can.",
    ]
    good_chat = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    data = {
        "constitutions": [
            {"critic": "Is the answer harmful?", "revision": "Make it harmless."},
            {"critic": "Is the answer rude?", "revision": "Make it polite."},
        ],
        "system_chat": [good_chat, good_chat[:4], [{"role": "system", "content": "x"}] * 6],
    }
    constitution = load_constitution(write(tmp_path, json.dumps(data), "swarm.json"))
    assert [p.id for p in constitution.principles] == ["principle-0", "principle-1"]
    assert constitution.principle("principle-1").revision_request == "Make it polite."
    assert len(constitution.examples) == 1
    example = constitution.examples[0]
    assert (example.prompt, example.response, example.critique, example.revision) == (
        turns[0],
        turns[1],
        turns[3],
        turns[5],
    )


def test_llm_swarm_json_bad_entry(tmp_path: Path) -> None:
    data = {"constitutions": [{"critic": "Fine.", "revision": "Fine."}, {"critic": "", "revision": "x"}]}
    message = error_for(write(tmp_path, json.dumps(data), "swarm.json"))
    assert "constitutions[1].critic" in message


def test_invalid_json(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, '{\n  "a": {"prompt": [],\n  "edit_request": }\n}', "broken.json"))
    assert "line 3" in message
    assert "JSON" in message


# --- sampling ---


def test_sampling_is_deterministic_and_order_free() -> None:
    constitution = make([1, 2, 3, 4])
    keys = [f"prompt-{i}" for i in range(50)]
    forward = [sample_principle(constitution, seed=7, key=k).id for k in keys]
    backward = [sample_principle(constitution, seed=7, key=k).id for k in reversed(keys)]
    assert forward == backward[::-1]
    assert len(set(forward)) > 1
    other_seed = [sample_principle(constitution, seed=8, key=k).id for k in keys]
    assert other_seed != forward


def test_weights_matter() -> None:
    constitution = make([10, 1, 1])
    counts = Counter(sample_principle(constitution, seed=0, key=str(i)).id for i in range(1000))
    assert counts["p0"] > 700
    assert counts["p1"] > 30 and counts["p2"] > 30


def test_sample_principles_distinct() -> None:
    constitution = make([5, 1, 1, 1, 1])
    for i in range(100):
        picked = sample_principles(constitution, 3, seed=1, key=str(i))
        assert len({p.id for p in picked}) == 3
        assert picked == sample_principles(constitution, 3, seed=1, key=str(i))
        assert picked[0] == sample_principle(constitution, seed=1, key=str(i))
    assert len(sample_principles(constitution, 5, seed=1, key="all")) == 5


def test_sample_too_many() -> None:
    with pytest.raises(ConstitutionError, match="cannot sample 4"):
        sample_principles(make([1, 1, 1]), 4, seed=0, key="x")


def test_sampling_by_purpose() -> None:
    both = make([1, 1])
    judged = Principle(id="judged", judge_question="Which is kinder?", weight=5)
    revised = Principle(id="revised", critique_request="c", revision_request="r")
    mixed = Constitution(name="mixed", principles=(*both.principles, judged, revised))
    keys = [str(i) for i in range(200)]
    assert {sample_principle(mixed, seed=0, key=k, purpose="judge").id for k in keys} == {
        "p0",
        "p1",
        "judged",
    }
    assert {sample_principle(mixed, seed=0, key=k, purpose="critique").id for k in keys} == {
        "p0",
        "p1",
        "revised",
    }
    for k in keys:  # where every principle serves both, the purpose changes no draw
        assert sample_principles(both, 2, seed=0, key=k, purpose="judge") == sample_principles(
            both, 2, seed=0, key=k
        )
    with pytest.raises(ConstitutionError, match="only judge or only critique .*judged, revised"):
        sample_principle(mixed, seed=0, key="k")
    with pytest.raises(ConstitutionError, match="which has 3 usable to judge"):
        sample_principles(mixed, 4, seed=0, key="k", purpose="judge")
    judge_only = Constitution(name="j", principles=(judged,))
    with pytest.raises(ConstitutionError, match="no principle with a critique_request and revision_request"):
        sample_principle(judge_only, seed=0, key="k", purpose="critique")
