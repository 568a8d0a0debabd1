"""Anthropic's Constitutional AI files, read as they are: the critique/revision instructions, the RL
principle list and the few-shot prompts (`principles_from`, `examples_from`). The fixtures are small
files written here in those shapes, not the paper's text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.errors import ConstitutionError
from rlaif.inputs.constitution import load_constitution, sample_principle, sample_principles

# CritiqueRevisionInstructions.json shape: each text wrapped in the base-model scaffolding.
INSTRUCTIONS = {
    "polite0": {
        "prompt": [
            "\n\nCritiqueRequest: Point out anything rude in the assistant's last reply.\n\nCritique:"
        ],
        "edit_request": (
            "\n\nRevisionRequest: Please rewrite the assistant's reply so that it is polite.\n\nRevision:"
        ),
    },
    "calm1": {
        "prompt": ["\n\nCritiqueRequest: Does the last reply sound angry?\n\nCritique:"],
        "edit_request": "\n\nRevisionRequest: Rewrite the reply in a calm tone.\n\nRevision:",
    },
}
# RLMadisonInstructions.json shape: a list of judge instructions, each ending in "Options:".
RL_LIST = [
    "\nWhich of these replies is more patient? Options:",
    "\nPick the reply that is kinder and calmer. Options:",
    "\nChoose the reply a good teacher would give.  Options:",
]
# CritiqueRevisionFewShotPrompts.json shape: one text per example, the second with an earlier exchange.
FEW_SHOT = [
    "\n\nHuman: Can you fix my bike chain?\n\nAssistant: Obviously not, I'm text."
    "\n\nCritiqueRequest: Point out anything rude in the assistant's last reply."
    "\n\nCritique: The reply mocks the user."
    "\n\nRevisionRequest: Please rewrite the reply so that it is polite."
    "\n\nRevision: I can't touch the bike, but I can walk you through it.\n\nHuman:",
    "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Tell me a joke about cats."
    "\n\nAssistant: Cats are dull, like you."
    "\n\nCritiqueRequest: Is the reply rude?"
    "\n\nCritique: It insults the user."
    "\n\nRevisionRequest: Rewrite it politely."
    "\n\nRevision: Why did the cat sit on the computer? To watch the mouse.",
]


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2), encoding="utf-8")
    return path


def error_for(path: Path, *needles: str) -> str:
    with pytest.raises(ConstitutionError) as info:
        load_constitution(path)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --- critique/revision instructions ---


def test_cai_scaffolding_is_stripped(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, "CritiqueRevisionInstructions.json", INSTRUCTIONS))
    polite = constitution.principle("polite0")
    assert polite.critique_request == "Point out anything rude in the assistant's last reply."
    assert polite.revision_request == "Please rewrite the assistant's reply so that it is polite."
    assert constitution.principle("calm1").critique_request == "Does the last reply sound angry?"
    for principle in constitution.principles:
        for text in (principle.critique_request, principle.revision_request, principle.judge_question):
            assert text is not None
            assert not any(label in text for label in ("CritiqueRequest", "Critique:", "Revision", "\n"))


def test_cai_judge_question_reads_as_a_question(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, "instructions.json", INSTRUCTIONS))
    assert constitution.principle("calm1").judge_question == (
        "Which response needs fewer changes to meet this request: rewrite the reply in a calm tone?"
    )
    polite = constitution.principle("polite0").judge_question
    assert polite == (
        "Which response needs fewer changes to meet this request: "
        "rewrite the assistant's reply so that it is polite?"
    )
    assert all(p.critiques and p.judges for p in constitution.principles)


def test_texts_without_scaffolding_are_kept(tmp_path: Path) -> None:
    data = {"plain0": {"prompt": ["Is the reply rude?"], "edit_request": "Make the reply polite."}}
    principle = load_constitution(write(tmp_path, "plain.json", data)).principle("plain0")
    assert (principle.critique_request, principle.revision_request) == (
        "Is the reply rude?",
        "Make the reply polite.",
    )


def test_cai_entry_that_is_only_scaffolding(tmp_path: Path) -> None:
    data = {"empty0": {"prompt": ["\n\nCritiqueRequest:\n\nCritique:"], "edit_request": "Fix it."}}
    error_for(
        write(tmp_path, "empty.json", data), "empty.json", "line 2", "empty0.prompt[0]", "non-empty text"
    )


# --- the RL principle list: judge questions only ---


def test_rl_list_loads_as_judge_only_principles(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, "RLMadisonInstructions.json", RL_LIST))
    assert constitution.name == "RLMadisonInstructions"
    assert [p.id for p in constitution.principles] == ["rl-0", "rl-1", "rl-2"]
    assert [p.judge_question for p in constitution.principles] == [
        "Which of these replies is more patient?",
        "Pick the reply that is kinder and calmer.",
        "Choose the reply a good teacher would give.",
    ]
    assert constitution.for_critique() == ()
    assert constitution.for_judging() == constitution.principles
    assert sample_principle(constitution, seed=0, key="k", purpose="judge").id.startswith("rl-")


def test_rl_list_on_one_line_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "rl.json"
    path.write_text(json.dumps(RL_LIST), encoding="utf-8")
    assert len(load_constitution(path).principles) == 3


def test_rl_list_with_a_blank_entry(tmp_path: Path) -> None:
    error_for(
        write(tmp_path, "rl.json", ["Which is kinder? Options:", "  Options:"]), "rl.json", "line 3", "[1]"
    )


def test_rl_list_cannot_critique(tmp_path: Path) -> None:
    constitution = load_constitution(write(tmp_path, "rl.json", RL_LIST))
    with pytest.raises(ConstitutionError, match="no principle with a critique_request and revision_request"):
        sample_principle(constitution, seed=0, key="k", purpose="critique")


# --- few-shot prompts ---


def test_few_shot_file_alone_says_how_to_attach_it(tmp_path: Path) -> None:
    error_for(
        write(tmp_path, "CritiqueRevisionFewShotPrompts.json", FEW_SHOT),
        "CritiqueRevisionFewShotPrompts.json",
        "few-shot examples",
        "examples_from: CritiqueRevisionFewShotPrompts.json",
    )


def test_principles_and_examples_from_cai_files(tmp_path: Path) -> None:
    write(tmp_path, "instructions.json", INSTRUCTIONS)
    write(tmp_path, "rl.json", RL_LIST)
    write(tmp_path, "few-shot.json", FEW_SHOT)
    path = write(
        tmp_path,
        "cai.yaml",
        "name: cai\nprinciples_from: [instructions.json, rl.json]\nexamples_from: few-shot.json\n",
    )
    constitution = load_constitution(path)
    assert [p.id for p in constitution.principles] == ["polite0", "calm1", "rl-0", "rl-1", "rl-2"]
    assert [p.id for p in constitution.for_critique()] == ["polite0", "calm1"]
    assert len(constitution.for_judging()) == 5
    first, second = constitution.examples
    assert (first.prompt, first.response) == ("Can you fix my bike chain?", "Obviously not, I'm text.")
    assert first.critique == "The reply mocks the user."
    assert first.revision == "I can't touch the bike, but I can walk you through it."
    assert (second.prompt, second.response) == ("Tell me a joke about cats.", "Cats are dull, like you.")
    assert second.revision == "Why did the cat sit on the computer? To watch the mouse."
    for _ in range(3):  # the same content gives the same constitution and hash
        assert load_constitution(path).hash == constitution.hash


def test_own_principles_and_examples_come_first(tmp_path: Path) -> None:
    write(tmp_path, "rl.json", RL_LIST[:1])
    write(tmp_path, "few-shot.json", FEW_SHOT[:1])
    text = (
        "name: mine\nprinciples_from: rl.json\nexamples_from: few-shot.json\nprinciples:\n"
        "  - id: kind\n    judge_question: Which is kinder?\nexamples:\n"
        "  - {prompt: p, response: r, critique: c, revision: v}\n"
    )
    constitution = load_constitution(write(tmp_path, "mine.yaml", text))
    assert [p.id for p in constitution.principles] == ["kind", "rl-0"]
    assert [e.prompt for e in constitution.examples] == ["p", "Can you fix my bike chain?"]


def test_examples_from_another_constitution(tmp_path: Path) -> None:
    write(tmp_path, "other.yaml", "name: o\nprinciples:\n  - {id: a, judge_question: q}\nexamples:\n"
          "  - {prompt: p, response: r, critique: c, revision: v}\n")  # fmt: skip
    path = write(
        tmp_path,
        "mine.yaml",
        "name: m\nexamples_from: other.yaml\nprinciples:\n  - {id: b, judge_question: q}\n",
    )
    assert [e.prompt for e in load_constitution(path).examples] == ["p"]


def test_bad_few_shot_example(tmp_path: Path) -> None:
    broken = ["\n\nHuman: Hi\n\nAssistant: Hello.\n\nCritiqueRequest: Rude?\n\nCritique: No.", FEW_SHOT[0]]
    write(tmp_path, "few-shot.json", broken)
    path = write(
        tmp_path,
        "mine.yaml",
        "name: m\nprinciples:\n  - {id: a, judge_question: q}\nexamples_from: few-shot.json\n",
    )
    error_for(
        path, "few-shot.json", "[0]", "RevisionRequest:", "included by", "mine.yaml, line 4, examples_from"
    )


def test_few_shot_example_without_the_conversation(tmp_path: Path) -> None:
    write(
        tmp_path,
        "few-shot.json",
        ["CritiqueRequest: Rude?\n\nCritique: No.\n\nRevisionRequest: Fix.\n\nRevision: Ok."],
    )
    path = write(
        tmp_path,
        "mine.yaml",
        "name: m\nprinciples:\n  - {id: a, judge_question: q}\nexamples_from: few-shot.json\n",
    )
    error_for(path, "few-shot.json", "[0]", "Human:, Assistant:")


# --- includes: mistakes ---


def test_included_file_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.yaml", "name: m\nprinciples_from: nowhere.json\n")
    error_for(path, "nowhere.json: file not found", "included by", "mine.yaml, line 2, principles_from")


def test_error_inside_an_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "rl.json", ["Fine? Options:", 3])
    path = write(tmp_path, "mine.yaml", "name: m\nprinciples_from: rl.json\n")
    error_for(path, "rl.json", "included by")


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    write(tmp_path, "rl.json", RL_LIST)
    text = "name: m\nprinciples_from: rl.json\nprinciples:\n  - {id: rl-1, judge_question: q}\n"
    error_for(
        write(tmp_path, "mine.yaml", text),
        "mine.yaml, line 2, principles_from",
        "principle id 'rl-1' from rl.json is already used by principles[0]",
    )


def test_includes_do_not_nest(tmp_path: Path) -> None:
    write(tmp_path, "rl.json", RL_LIST)
    write(tmp_path, "inner.yaml", "name: inner\nprinciples_from: rl.json\n")
    path = write(tmp_path, "outer.yaml", "name: outer\nprinciples_from: inner.yaml\n")
    error_for(path, "inner.yaml, line 2, principles_from", "itself included", "included by")


@pytest.mark.parametrize("value", ["[]", "3", "['']", "{a: b}", '"a\\0b"'])
def test_include_value_must_name_files(tmp_path: Path, value: str) -> None:
    path = write(
        tmp_path,
        "mine.yaml",
        f"name: m\nexamples_from: {value}\nprinciples:\n  - {{id: a, judge_question: q}}\n",
    )
    error_for(path, "line 2, examples_from", "expected a file name or a list of file names")


def test_only_included_principles_and_none_at_all(tmp_path: Path) -> None:
    write(tmp_path, "few-shot.json", FEW_SHOT)
    error_for(
        write(tmp_path, "mine.yaml", "name: m\nexamples_from: few-shot.json\n"), "'principles' is missing"
    )


# --- sampling by purpose ---


def test_sampling_by_purpose_draws_only_what_serves(tmp_path: Path) -> None:
    write(tmp_path, "instructions.json", INSTRUCTIONS)
    write(tmp_path, "rl.json", RL_LIST)
    path = write(tmp_path, "cai.yaml", "name: cai\nprinciples_from: [instructions.json, rl.json]\n")
    constitution = load_constitution(path)
    critique = {sample_principle(constitution, seed=1, key=str(i), purpose="critique").id for i in range(200)}
    judge = {sample_principle(constitution, seed=1, key=str(i), purpose="judge").id for i in range(200)}
    assert critique == {"polite0", "calm1"}
    assert judge == {"polite0", "calm1", "rl-0", "rl-1", "rl-2"}
    with pytest.raises(ConstitutionError, match="only judge or only critique .*rl-0, rl-1, rl-2.*purpose="):
        sample_principle(constitution, seed=1, key="k")
    with pytest.raises(ConstitutionError, match="cannot sample 3 .* which has 2 usable to critique"):
        sample_principles(constitution, 3, seed=1, key="k", purpose="critique")


def test_a_constitution_that_cannot_judge(tmp_path: Path) -> None:
    text = "name: rev\nprinciples:\n  - {id: a, critique_request: c, revision_request: r}\n"
    constitution = load_constitution(write(tmp_path, "rev.yaml", text))
    assert sample_principle(constitution, seed=0, key="k", purpose="critique").id == "a"
    with pytest.raises(
        ConstitutionError, match="no principle with a judge_question, so it cannot be used to judge"
    ):
        sample_principles(constitution, 1, seed=0, key="k", purpose="judge")


def test_include_beside_a_principle_with_a_bad_id(tmp_path: Path) -> None:
    write(tmp_path, "rl.json", RL_LIST)
    path = write(
        tmp_path,
        "mine.yaml",
        "name: m\nprinciples_from: rl.json\nprinciples:\n  - {id: [1], judge_question: q}\n",
    )
    error_for(path, "mine.yaml, line 4, principles[0].id", "valid string")
