"""Human-labelled pairwise sets: hh-rlhf transcripts or `{prompt, chosen, rejected}` rows.

Any row may name the principle it is labelled under (`"principle_id": "harm-general"`); the evaluation
then judges it under that principle instead of a sampled one, and reports agreement per principle.

hh-rlhf rows are full transcripts; each is split at its last `\n\nAssistant:` and the two prefixes are
compared. Where they differ (5 of the 2,312 harmless-base test rows), the judge compares the two
continuations of the turns they share, the rows are listed in `LabelledData.mismatched`, and length
baselines still compare the final replies.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from rlaif.errors import PromptSetError
from rlaif.inputs.jsonl import read_jsonl
from rlaif.inputs.prompts import parse_transcript, split_last_assistant
from rlaif.inputs.trajectory import check_tool_turns, render_trace, tools_from_row
from rlaif.records import Message, ToolSpec

__all__ = ["LabelledData", "LabelledPair", "load_labelled_pairs"]

_MARK = "\n\nAssistant:"


@dataclass(frozen=True)
class LabelledPair:
    """One human-labelled pair."""

    line: int
    """1-based line of the row in its file."""
    conversation: tuple[Message, ...]
    """The conversation both candidates continue."""
    chosen: str
    """The human-preferred continuation, as the judge sees it."""
    rejected: str
    """The other continuation."""
    chosen_reply: str
    """The chosen transcript's final reply after its last Assistant turn (what length baselines compare)."""
    rejected_reply: str
    """The rejected transcript's final reply."""
    prefix_match: bool = True
    """False for hh-rlhf rows whose transcripts differ before the last Assistant turn."""
    principle_id: str | None = None
    """The principle the row names (`principle_id`): the pair is judged under it, not a sampled one."""


@dataclass
class LabelledData:
    """A labelled file as read."""

    path: Path
    format: Literal["hh-rlhf", "prompt-chosen-rejected"]
    pairs: list[LabelledPair]
    mismatched: list[int]
    """Lines of hh-rlhf rows whose two transcripts do not share the text up to the last Assistant turn."""


def _render_turns(messages: Sequence[Message]) -> str:
    """Turns after a divergence, written back in hh-rlhf style (the first is the assistant's reply)."""
    parts = [messages[0].content] if messages else []
    for message in messages[1:]:
        parts.append(f"{'Human' if message.role == 'user' else 'Assistant'}: {message.content}")
    return "\n\n".join(parts)


def _hh_pair(line: int, chosen: str, rejected: str) -> LabelledPair:
    for field, transcript in (("chosen", chosen), ("rejected", rejected)):
        if _MARK not in transcript:
            raise ValueError(f'hh-rlhf `{field}` has no "\\n\\nAssistant:" turn to split at')
    prefix_c, reply_c = split_last_assistant(chosen)
    prefix_r, reply_r = split_last_assistant(rejected)
    if prefix_c == prefix_r:
        conversation = tuple(parse_transcript(prefix_c[: -len(_MARK)]))
        return LabelledPair(line, conversation, reply_c, reply_r, reply_c, reply_r)
    # The transcripts diverge earlier: judge the two continuations of their common turns.
    turns_c, turns_r = parse_transcript(chosen), parse_transcript(rejected)
    common = 0
    while common < min(len(turns_c), len(turns_r)) and turns_c[common] == turns_r[common]:
        common += 1
    while common and turns_c[common - 1].role != "user":
        common -= 1
    return LabelledPair(
        line,
        tuple(turns_c[:common]),
        _render_turns(turns_c[common:]),
        _render_turns(turns_r[common:]),
        reply_c,
        reply_r,
        prefix_match=False,
    )


def _reply(
    value: Any, field: str, prompt: Sequence[Message] = (), tools: Sequence[ToolSpec] = ()
) -> tuple[str, str]:
    """(what the judge reads, the final reply) of a candidate: a string, or a TRL conversational list
    ending with the reply, which may hold tool calls and tool turns before it (then the judge reads the
    whole trace)."""
    if isinstance(value, str):
        return value.strip(), value.strip()
    if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
        if len(value) == 1 and set(value[0]) <= {"role", "content"}:
            reply = str(value[0]["content"]).strip()  # TRL conversational: [{"role": "assistant", ...}]
            return reply, reply
        turns = []
        for index, item in enumerate(value):
            try:
                turns.append(Message.model_validate(item))
            except ValidationError as exc:
                error = exc.errors()[0]
                where = "".join(f".{part}" for part in error["loc"])
                raise ValueError(f"{field}[{index}]{where}: {error['msg']}") from None
        if turns[-1].role != "assistant" or turns[-1].tool_calls:
            raise ValueError(f"`{field}` must end with the assistant's final reply (no tool calls in it)")
        check_tool_turns([*prompt, *turns], tools, field)
        final = turns[-1].content.strip()
        return render_trace(turns[:-1], final), final
    raise ValueError(f"`{field}` must be a string or a list of messages ending with the reply")


def _prompt(value: Any) -> tuple[Message, ...]:
    if isinstance(value, str):
        return (Message(role="user", content=value),)
    if isinstance(value, list):
        return tuple(Message.model_validate(m) for m in value)
    raise ValueError("`prompt` must be a string or a list of messages")


def _principle_id(row: dict[str, Any]) -> str | None:
    value = row.get("principle_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"`principle_id` must be a principle id of the constitution (text), got {value!r}; "
            "fix it or leave the field out to sample a principle"
        )
    return value.strip()


def _words(text: str) -> str:
    return " ".join(text.split())


def _holds_both(conversation: Sequence[Message], chosen: str, rejected: str) -> bool:
    """Whether the conversation contains both candidate replies verbatim, each as whole words."""
    text = _words("\n".join(m.content for m in conversation))
    for reply in (_words(chosen), _words(rejected)):
        if not reply or not re.search(rf"(?<!\w){re.escape(reply)}(?!\w)", text):
            return False
    return True


def load_labelled_pairs(path: str | Path, *, limit: int | None = None) -> LabelledData:
    """Read a labelled pairwise file (JSONL, optionally .gz); a bad row raises with its line number.

    A row whose conversation already holds both candidate replies verbatim (a multiple-choice question
    with its options) is refused: the judge would be comparing two texts it was shown in the question.
    """
    path = Path(path)
    if not path.is_file():
        raise PromptSetError(f"labelled file {path} not found; give a JSONL file with chosen/rejected rows")
    pairs: list[LabelledPair] = []
    formats: set[str] = set()
    for number, row in read_jsonl(path, PromptSetError):
        if limit is not None and len(pairs) >= limit:
            break
        try:
            if "chosen" not in row or "rejected" not in row:
                found = ", ".join(sorted(map(str, row))[:12]) or "none"
                raise ValueError(
                    "a row needs `chosen` and `rejected` (and `prompt` unless hh-rlhf transcripts); "
                    f"this one has the columns: {found}"
                )
            if "prompt" in row:
                formats.add("prompt-chosen-rejected")
                prompt, tools = _prompt(row["prompt"]), tools_from_row(row.get("tools"))
                check_tool_turns(prompt, tools, "prompt")
                chosen, chosen_reply = _reply(row["chosen"], "chosen", prompt, tools)
                rejected, rejected_reply = _reply(row["rejected"], "rejected", prompt, tools)
                pair = LabelledPair(number, prompt, chosen, rejected, chosen_reply, rejected_reply)
            else:
                formats.add("hh-rlhf")
                if not isinstance(row["chosen"], str) or not isinstance(row["rejected"], str):
                    raise ValueError("hh-rlhf `chosen` and `rejected` must be transcript strings")
                pair = _hh_pair(number, row["chosen"], row["rejected"])
            pair = dataclasses.replace(pair, principle_id=_principle_id(row))
        except (ValueError, ValidationError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise PromptSetError(f"{path}:{number}: {detail}") from None
        if _holds_both(pair.conversation, pair.chosen, pair.rejected):
            field = "prompt" if "prompt" in row else "chosen"
            raise PromptSetError(
                f"{path}:{number}: `{field}` holds both candidate answers verbatim (a multiple-choice "
                "question with its options?), so the judge would compare two texts it was already shown; "
                "keep only the question in the prompt, or drop the row"
            )
        pairs.append(pair)
    if not pairs:
        raise PromptSetError(f"{path}: no labelled pairs found")
    if len(formats) > 1:
        raise PromptSetError(
            f"{path}: mixes hh-rlhf transcripts and prompt/chosen/rejected rows; use one format"
        )
    fmt: Literal["hh-rlhf", "prompt-chosen-rejected"] = formats.pop()  # type: ignore[assignment]
    return LabelledData(path, fmt, pairs, [p.line for p in pairs if not p.prefix_match])
