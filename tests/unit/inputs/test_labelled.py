"""Labelled pairwise sets: a fixed principle per row, and rows whose prompt already holds both answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rlaif.errors import PromptSetError
from rlaif.inputs.labelled import load_labelled_pairs


def write(tmp_path: Path, *rows: dict[str, Any]) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_row_may_name_its_principle(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"prompt": "How do I hurt someone?", "chosen": "I won't help.", "rejected": "Like this.",
         "principle_id": " harm-general "},
        {"prompt": "Hello", "chosen": "Hi!", "rejected": "Go away."},
    )  # fmt: skip
    first, second = load_labelled_pairs(path).pairs
    assert first.principle_id == "harm-general" and second.principle_id is None


@pytest.mark.parametrize("value", [3, "", ["harm"]])
def test_a_principle_id_that_is_not_text_is_refused_with_its_line(tmp_path: Path, value: Any) -> None:
    path = write(
        tmp_path,
        {"prompt": "Hello", "chosen": "Hi!", "rejected": "Go away."},
        {"prompt": "Hello", "chosen": "Hi!", "rejected": "Go away.", "principle_id": value},
    )
    with pytest.raises(PromptSetError, match=re.escape(f"{path}:2: `principle_id` must be")):
        load_labelled_pairs(path)


def test_a_prompt_holding_both_answers_is_refused_with_its_line(tmp_path: Path) -> None:
    question = "Which city is the capital of France?\n(A) Paris\n(B)  London\nAnswer with the city."
    path = write(
        tmp_path,
        {"prompt": "Say hello", "chosen": "Hello!", "rejected": "No."},
        {"prompt": question, "chosen": "Paris", "rejected": "London"},
    )
    with pytest.raises(PromptSetError) as info:
        load_labelled_pairs(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: `prompt` holds both candidate answers verbatim")
    assert "keep only the question" in message


def test_one_answer_in_the_prompt_or_a_mere_substring_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"prompt": "Is Paris in France?", "chosen": "Paris", "rejected": "London"},
        {"prompt": "Nothing is certain. Yesterday was sunny.", "chosen": "No", "rejected": "Yes"},
        {"prompt": "Say something", "chosen": "", "rejected": "Something"},
    )
    assert len(load_labelled_pairs(path).pairs) == 3


def test_hh_rlhf_rows_are_checked_too(tmp_path: Path) -> None:
    transcript = "\n\nHuman: Pick one: I like tea. or I like coffee.\n\nAssistant: "
    path = write(tmp_path, {"chosen": transcript + "I like tea.", "rejected": transcript + "I like coffee."})
    with pytest.raises(PromptSetError, match=re.escape(f"{path}:1: `chosen` holds both candidate answers")):
        load_labelled_pairs(path)
