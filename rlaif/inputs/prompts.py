"""Prompt sets: JSONL files of conversations that end with a user turn.

Accepted rows: `{"messages": [{"role", "content"}, ...]}` (OpenAI/HF chat), `{"prompt": "text"}`, or an
hh-rlhf row `{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ..."}` whose conversation up to the last
Assistant turn becomes the prompt (multi-turn conversations are kept whole). Sets that `datasets` reads
(Hub ids, Parquet, Arrow, saved folders) go through `rlaif.inputs.prompt_datasets`, which shares the row
rules and the ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.errors import PromptSetError
from rlaif.inputs.jsonl import read_jsonl
from rlaif.inputs.trajectory import check_tool_turns, tools_from_row
from rlaif.records import Message, PromptRecord, ToolSpec, stable_id

__all__ = [
    "PromptCollector",
    "load_prompts",
    "messages_from_row",
    "parse_transcript",
    "problem",
    "prompt_record",
    "split_last_assistant",
    "tools_of_row",
]

_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def parse_transcript(text: str) -> list[Message]:
    """Turn an hh-rlhf transcript (`\\n\\nHuman: ...\\n\\nAssistant: ...`) into chat messages."""
    parts = _TURN.split(text)
    messages: list[Message] = []
    # split() gives [before, speaker, text, speaker, text, ...]
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if speaker == "Human" else "assistant"
        messages.append(Message(role=role, content=content.strip()))
    return messages


def split_last_assistant(transcript: str) -> tuple[str, str]:
    """Split an hh-rlhf transcript at the last `\\n\\nAssistant:` into (prefix, final reply)."""
    marker = "\n\nAssistant:"
    cut = transcript.rfind(marker)
    if cut < 0:
        raise ValueError("no Assistant turn")
    return transcript[: cut + len(marker)], transcript[cut + len(marker) :].strip()


def _messages(raw: list[Any], field: str) -> list[Message]:
    messages = []
    for index, item in enumerate(raw):
        try:
            messages.append(Message.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
            got = repr(error["input"])
            got = got if len(got) <= 60 else got[:57] + "..."
            raise ValueError(f"{field}[{index}]{where}: {error['msg']} (got {got})") from None
    return messages


def messages_from_row(row: dict[str, Any]) -> list[Message]:
    """The conversation of a row with `messages`, `prompt` or an hh-rlhf `chosen`; ValueError says why not."""
    if "messages" in row:
        raw = row["messages"]
        if not isinstance(raw, list) or not raw:
            raise ValueError("`messages` must be a non-empty list of {role, content}")
        messages = _messages(raw, "messages")
    elif "prompt" in row:
        prompt = row["prompt"]
        if isinstance(prompt, list):
            messages = _messages(prompt, "prompt")
        elif isinstance(prompt, str):
            messages = [Message(role="user", content=prompt)]
        else:
            raise ValueError("`prompt` must be a string or a list of messages")
    elif "chosen" in row and isinstance(row["chosen"], str):
        prefix, _ = split_last_assistant(row["chosen"])
        messages = parse_transcript(prefix[: -len("\n\nAssistant:")])
    else:
        raise ValueError("a row needs `messages`, `prompt`, or an hh-rlhf `chosen` transcript")
    if not messages or messages[-1].role != "user":
        raise ValueError("the conversation must end with a user turn")
    if not messages[-1].content.strip():
        raise ValueError("the last user turn is empty")
    check_tool_turns(messages, tools_of_row(row), "messages" if "messages" in row else "prompt")
    return messages


def tools_of_row(row: dict[str, Any]) -> tuple[ToolSpec, ...]:
    """The row's OpenAI-style `tools` (none when absent); ValueError names the bad field."""
    return tools_from_row(row.get("tools"))


def _record(messages: list[Message], source: str, tools: tuple[ToolSpec, ...] = ()) -> PromptRecord:
    """The prompt under its content id (same conversation and tools, same id: what resume relies on);
    raises ValueError for text that is not Unicode."""
    # The tools count only when there are some, so a prompt without tools keeps the id it always had.
    offered = {"tools": [t.model_dump() for t in tools]} if tools else {}
    try:
        record_id = stable_id("prompt", messages=[m.model_dump() for m in messages], **offered)
    except UnicodeEncodeError:
        raise ValueError(
            "the text holds an unpaired surrogate escape (such as \\ud800), which is not Unicode; "
            "fix or drop that escape"
        ) from None
    return PromptRecord(id=record_id, messages=tuple(messages), source=source, tools=tools)


class PromptCollector:
    """A prompt set's records as its rows stream in: deduplicated by id (the first stays), counted
    against `limit`, and held only where `keep(id)` says so.

    `keep` is a `--workers` worker's share: every worker still reads (and validates) every row, so a bad
    line is refused the same way by each, but holds only its own prompts; at a million prompts that is
    the difference between 1.4 GB a process and its share of it. The limit counts the set's distinct
    prompts, kept or not, so each worker cuts the file where one process would."""

    def __init__(self, limit: int | None = None, keep: Callable[[str], bool] | None = None):
        self.limit = limit
        self.keep = keep
        self.records: dict[str, PromptRecord] = {}
        # Only a share under a limit must remember the ids it does not keep (to count distinct ones).
        self._others: set[str] | None = set() if keep is not None and limit is not None else None
        self.seen = 0
        """Prompts read so far, kept or not: distinct ones where the limit is counted (no share, or a
        share under a limit); without a limit a share counts every row it does not keep, which only ever
        says whether the set was empty."""

    def add(self, messages: list[Message], source: str, tools: tuple[ToolSpec, ...] = ()) -> bool:
        """Add one row's prompt; True once the limit is reached (read no further)."""
        record = _record(messages, source, tools)
        if self.keep is None or self.keep(record.id):
            if record.id not in self.records:
                self.records[record.id] = record
                self.seen += 1
        elif self._others is not None:
            if record.id not in self._others:
                self._others.add(record.id)
                self.seen += 1
        else:
            self.seen += 1  # no limit: the count is never read to stop, only to say the set was not empty
        return self.limit is not None and self.seen >= self.limit


def problem(exc: ValueError | ValidationError) -> str:
    """The one-line reason of a row's error."""
    return str(exc.errors()[0]["msg"]) if isinstance(exc, ValidationError) else str(exc)


def load_prompts(
    path: str | Path, *, limit: int | None = None, keep: Callable[[str], bool] | None = None
) -> list[PromptRecord]:
    """Read a prompt set; a bad row raises `PromptSetError` with its line number. `keep(id)`: hold only
    those prompts (a worker's share, `PromptCollector`)."""
    path = Path(path)
    if not path.exists():
        raise PromptSetError(f"prompt file {path} not found; set prompts.path to a JSONL file")
    if path.is_dir():
        raise PromptSetError(f"prompt file {path} is a folder; set prompts.path to a JSONL file")
    _not_a_table(path)
    collector = PromptCollector(limit, keep)
    for number, row in read_jsonl(path, PromptSetError):
        try:
            done = collector.add(messages_from_row(row), f"{path.name}:{number}", tools_of_row(row))
        except (ValueError, ValidationError) as exc:
            raise PromptSetError(f"{path}:{number}: {problem(exc)}") from None
        if done:
            break
    if not collector.seen:
        raise PromptSetError(f"{path}: no prompts found; add JSONL rows with `messages` or `prompt`")
    return list(collector.records.values())


_TABLE_MAGIC = {b"PAR1": "Parquet", b"ARROW1": "Arrow", b"\xff\xff\xff\xff": "Arrow (stream)"}
"""How a binary table file starts (a saved `datasets` shard is an Arrow stream)."""


def _not_a_table(path: Path) -> None:
    """`prompts.path` reads JSONL only: a Parquet, Arrow or CSV file there was "not UTF-8 text, save
    the file as UTF-8", pointing the wrong way. Those go in `prompts.dataset`."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError:
        return  # read_jsonl says why in its own words
    kind = next((name for magic, name in _TABLE_MAGIC.items() if head.startswith(magic)), None)
    if kind is None and path.suffix.lower() in (".parquet", ".arrow", ".csv", ".tsv"):
        kind = path.suffix.lower().lstrip(".").upper()
    if kind is not None:
        raise PromptSetError(
            f"{path} is a {kind} file and prompts.path reads JSONL; set prompts.dataset: {path} instead "
            "(it reads Parquet, CSV, JSON and Arrow files, saved datasets and Hub ids), with "
            "prompts.columns if the prompt column is not named prompt or messages"
        )


def prompt_record(prompt: str | Sequence[Message | Mapping[str, str]], *, source: str = "") -> PromptRecord:
    """A prompt given in code (a user turn's text, or a conversation of `{role, content}` turns ending in
    a user turn) as a record with the id the same row of a prompt file gets; a `ValueError` says what is
    wrong with it."""
    messages = messages_from_row({"prompt": prompt if isinstance(prompt, str) else list(prompt)})
    return _record(messages, source)
