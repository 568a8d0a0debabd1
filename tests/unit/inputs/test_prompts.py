"""Loading prompt sets: chat rows, prompt strings, hh-rlhf transcripts, and every way a file goes wrong."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rlaif.errors import PromptSetError
from rlaif.inputs.prompts import load_prompts, parse_transcript, split_last_assistant
from rlaif.records import Message, stable_id

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "prompts.jsonl"


def write_rows(tmp_path: Path, *rows: object, name: str = "prompts.jsonl") -> Path:
    path = tmp_path / name
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def error(path: Path, **kwargs: object) -> str:
    with pytest.raises(PromptSetError) as info:
        load_prompts(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def turns(*pairs: tuple[str, str]) -> tuple[Message, ...]:
    return tuple(Message(role=role, content=content) for role, content in pairs)  # type: ignore[arg-type]


def test_messages_rows(tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye?"},
    ]
    path = write_rows(tmp_path, {"messages": conversation, "source": "ignored"})
    [record] = load_prompts(path)
    assert record.messages == turns(
        ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye?")
    )
    assert record.source == "prompts.jsonl:1"
    assert record.id == stable_id("prompt", messages=conversation)
    assert record.id.startswith("pro-")


def test_prompt_rows(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path,
        {"prompt": "What is 2+2?"},
        {"prompt": [{"role": "user", "content": "List form"}]},
    )
    first, second = load_prompts(path)
    assert first.messages == turns(("user", "What is 2+2?"))
    assert second.messages == turns(("user", "List form"))
    assert second.source == "prompts.jsonl:2"


def test_string_and_message_forms_of_one_prompt_share_an_id(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path,
        {"prompt": "Same"},
        {"messages": [{"role": "user", "content": "Same"}]},
    )
    assert len(load_prompts(path)) == 1


def test_hh_rlhf_multi_turn_split_at_last_assistant(tmp_path: Path) -> None:
    chosen = (
        "\n\nHuman: How do I pick a lock?"
        "\n\nAssistant: Why do you want to?"
        "\n\nHuman: I locked myself out.\n\nAnd it's cold."
        "\n\nAssistant: Call a locksmith."
    )
    path = write_rows(tmp_path, {"chosen": chosen, "rejected": "\n\nHuman: x\n\nAssistant: y"})
    [record] = load_prompts(path)
    assert record.messages == turns(
        ("user", "How do I pick a lock?"),
        ("assistant", "Why do you want to?"),
        ("user", "I locked myself out.\n\nAnd it's cold."),
    )


def test_split_last_assistant_and_parse_transcript() -> None:
    transcript = "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:  d "
    prefix, reply = split_last_assistant(transcript)
    assert prefix == "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:"
    assert reply == "d"
    assert parse_transcript(transcript) == list(
        turns(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"))
    )
    with pytest.raises(ValueError, match="no Assistant turn"):
        split_last_assistant("\n\nHuman: only")


def test_hh_rlhf_without_assistant_turn(tmp_path: Path) -> None:
    path = write_rows(tmp_path, {"chosen": "\n\nHuman: only a question"})
    assert error(path) == f"{path}:1: no Assistant turn"


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = write_rows(tmp_path, {"prompt": "ok"}, "", '{"prompt": "unterminated}')
    message = error(path)
    assert message.startswith(f"{path}:3: not valid JSON")
    assert "column" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    assert "no prompts found" in error(path)
    path.write_text("\n  \n\n", encoding="utf-8")
    assert "no prompts found" in error(path)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
            "the conversation must end with a user turn",
        ),
        ({"messages": [{"role": "user", "content": "   "}]}, "the last user turn is empty"),
        ({"prompt": ""}, "the last user turn is empty"),
        (
            {"messages": [{"role": "robot", "content": "Hi"}]},
            "Input should be 'system', 'user', 'assistant' or 'tool'",
        ),
        ({"messages": []}, "`messages` must be a non-empty list"),
        ({"prompt": 3}, "`prompt` must be a string or a list of messages"),
        ({"text": "hi"}, "a row needs `messages`, `prompt`, or an hh-rlhf `chosen` transcript"),
        (["hi"], "expected a JSON object, got list"),
    ],
)
def test_bad_rows_name_line_and_problem(tmp_path: Path, row: object, expected: str) -> None:
    path = write_rows(tmp_path, {"prompt": "fine"}, row)
    message = error(path)
    assert message.startswith(f"{path}:2: ")
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    message = error(path)
    assert str(path) in message
    assert "not found" in message


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    message = error(path)
    assert message.startswith(f"{path}:1: not UTF-8 text (byte 0xe9 at column 16)")


def test_limit_counts_distinct_prompts(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path, {"prompt": "a"}, {"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}, "this is not json"
    )
    records = load_prompts(path, limit=2)
    assert [r.messages[0].content for r in records] == ["a", "b"]
    assert [r.source for r in records] == ["prompts.jsonl:1", "prompts.jsonl:3"]


def test_duplicates_collapse_to_the_first(tmp_path: Path) -> None:
    path = write_rows(tmp_path, {"prompt": "a"}, {"prompt": "b"}, {"prompt": "a"})
    records = load_prompts(path)
    assert [r.messages[0].content for r in records] == ["a", "b"]
    assert records[0].source == "prompts.jsonl:1"


def test_gzip(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"prompt": "zipped"}\n')
    [record] = load_prompts(path)
    assert record.messages == turns(("user", "zipped"))


def test_example_prompt_set() -> None:
    records = load_prompts(EXAMPLES)
    assert len(records) == 24
    assert len({r.id for r in records}) == 24
    assert all(r.messages[-1].role == "user" and r.messages[-1].content.strip() for r in records)
    assert records[0].source == "prompts.jsonl:1"
    assert any(len(r.messages) > 1 for r in records)


@pytest.mark.parametrize("limit", [None, 7])
def test_worker_shares_hold_only_their_prompts_and_together_are_the_whole_set(
    tmp_path: Path, limit: int | None
) -> None:
    """`--workers N`: each worker keeps the prompts whose id hashes to it, and the shares are exactly
    what one process loads, limit and duplicates included (the limit counts the set, not the share)."""
    from rlaif.pipeline.workers import shard_of

    rows = [{"prompt": f"question {i % 9}"} for i in range(12)]  # 9 distinct, duplicates among them
    path = write_rows(tmp_path, *rows)
    whole = load_prompts(path, limit=limit)
    shares = [load_prompts(path, limit=limit, keep=lambda id, i=i: shard_of(id, 3) == i) for i in range(3)]
    assert sorted(p.id for share in shares for p in share) == sorted(p.id for p in whole)
    assert len(whole) == (limit or 9)
    for i, share in enumerate(shares):
        assert all(shard_of(p.id, 3) == i for p in share)
        assert [p.source for p in share] == [p.source for p in whole if shard_of(p.id, 3) == i]


def test_a_worker_whose_share_is_empty_gets_no_prompts_not_an_error(tmp_path: Path) -> None:
    path = write_rows(tmp_path, {"prompt": "only one"})
    assert load_prompts(path, keep=lambda id: False) == []
    assert "no prompts found" in error(write_rows(tmp_path, name="empty.jsonl"), keep=lambda id: True)
