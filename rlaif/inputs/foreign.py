"""Constitution files from other projects, turned into our format before they are validated.

Anthropic's Constitutional AI critique/revision instructions (`{"harmful0": {"prompt": [...],
"edit_request": ...}}`), the CAI paper's RL principle list (a JSON list of "Which of these responses ...?
Options:" strings: judge questions only), its few-shot prompts (examples, attached with `examples_from`),
and llm-swarm's JSON (`{"constitutions": [{"critic": ..., "revision": ...}], "system_chat": [...]}`).
`rlaif.inputs.constitution` validates what these readers return exactly like one of our own files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.errors import ConstitutionError
from rlaif.yamlfile import NO_VALUE, Locate, format_error

__all__ = ["Foreign", "cai_few_shot_examples", "is_cai_few_shot", "read_foreign"]


@dataclass(frozen=True)
class Foreign:
    """A file in another project's format, as data in ours."""

    data: dict[str, Any]
    """The constitution in our format, to validate."""
    locate: Locate
    """The line in the original file of the entry at a validation error's `loc`."""
    names: dict[str, str]
    """Field paths of our format → how the original file names them, for messages."""


def read_foreign(path: Path, text: str, data: Any) -> Foreign | None:
    """Our-format data for `data` (the file's parsed JSON, or None), or None when it is in our own format.

    Raises:
        ConstitutionError: an entry is malformed, or the file holds few-shot examples rather than
            principles (the message says how to attach it).
    """
    if isinstance(data, dict) and isinstance(data.get("constitutions"), list):
        return _from_llm_swarm(path, data)
    if _looks_like_cai(data):
        return _from_cai(path, text, data)
    if is_cai_few_shot(data):
        problem = "this is a list of few-shot examples (CAI's few-shot prompts file), not principles"
        fix = f"attach it to a constitution with `examples_from: {path.name}` (see constitution/README.md)"
        raise _error(path, problem, fix)
    if isinstance(data, list) and data and all(isinstance(item, str) for item in data):
        return _from_rl_list(path, text, data)
    return None


def cai_few_shot_examples(path: Path, text: str, data: list[str]) -> list[dict[str, str]]:
    """The examples of a CAI few-shot prompts file (`is_cai_few_shot(data)`), in our format."""
    lines = _item_lines(text)
    return [_cai_few_shot(path, i, item, lines[i]) for i, item in enumerate(data)]


def _error(
    path: Path, problem: str, fix: str, *, line: int | None = None, field: str = "", value: Any = NO_VALUE
) -> ConstitutionError:
    return ConstitutionError(format_error(path, problem, fix, line=line, field=field, value=value))


def _looks_like_cai(data: Any) -> bool:
    entries = list(data.values()) if isinstance(data, dict) and "principles" not in data else []
    return (
        bool(entries)
        and all(isinstance(e, dict) for e in entries)
        and any("edit_request" in e for e in entries)
    )


def is_cai_few_shot(data: Any) -> bool:
    """Whether `data` (parsed JSON) is a CAI few-shot prompts file: a list of texts with critique labels."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(item, str) for item in data)
        and any("CritiqueRequest:" in item for item in data)
    )


# CAI files carry the prompt scaffolding of a base model ("\n\nCritiqueRequest: ...\n\nCritique:"): a chat
# model is asked the request alone, so the labels are taken off.
_LEADING_LABEL = re.compile(r"^\s*(?:CritiqueRequest|RevisionRequest|Critique|Revision)\s*:\s*")
_TRAILING_LABEL = re.compile(r"(?:^|\n)\s*(?:Critique|Revision)\s*:\s*$")
_TURN = re.compile(
    r"(?:^|\n)[ \t]*(Human|Assistant|CritiqueRequest|Critique|RevisionRequest|Revision):[ \t]*"
)


def _unlabelled(text: str) -> str:
    return _TRAILING_LABEL.sub("", _LEADING_LABEL.sub("", text)).strip()


def _judge_question(revision_request: str) -> str:
    """A judge question from a revision request: the better answer is the one that needs less revising."""
    request = re.sub(r"^(?:please|kindly)\s+", "", revision_request.strip(), flags=re.IGNORECASE)
    request = request.rstrip(" .!?:")
    request = request[:1].lower() + request[1:]
    return f"Which response needs fewer changes to meet this request: {request}?"


def _imported(pid: str, critique: str, revision: str) -> dict[str, str]:
    critique, revision = _unlabelled(critique), _unlabelled(revision)
    return {
        "id": pid,
        "critique_request": critique,
        "revision_request": revision,
        "judge_question": _judge_question(revision),
    }


def _item_lines(text: str) -> list[int]:
    """The 1-based line where each item of a top-level JSON list starts (text already known to parse)."""
    decoder, lines = json.JSONDecoder(), []
    index = text.index("[") + 1
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            return lines
        lines.append(text.count("\n", 0, index) + 1)
        _, index = decoder.raw_decode(text, index)


def _from_rl_list(path: Path, text: str, data: list[str]) -> Foreign:
    """The CAI RL principle list: each string a judge question ending in "Options:"; judge-only principles."""
    lines = _item_lines(text)
    principles = []
    for index, item in enumerate(data):
        question = re.sub(r"\s*Options:\s*$", "", item.strip())
        field = f"[{index}]"
        fix = 'write each entry as a question, such as "Which response is more polite?"'
        principles.append(
            {"id": f"rl-{index}", "judge_question": _text(path, question, field, fix, lines[index])}
        )
    description = f"Imported from a CAI RL principle list ({path.name}): judge questions only."
    result = {"name": path.stem, "description": description, "principles": principles}
    locate = lambda loc: lines[loc[1]] if len(loc) > 1 and isinstance(loc[1], int) else None  # noqa: E731
    return Foreign(result, locate, {"principles[": "["})


def _cai_few_shot(path: Path, index: int, text: str, line: int | None) -> dict[str, str]:
    """One example of the CAI few-shot file: "Human: ... Assistant: ... CritiqueRequest: ... Critique: ...
    RevisionRequest: ... Revision: ...". Of a conversation of several turns, the last exchange is kept."""
    parts = _TURN.split(text)
    turns = [(label, body.strip()) for label, body in zip(parts[1::2], parts[2::2], strict=True)]
    labels = [label for label, _ in turns]
    order = "Human:, Assistant:, CritiqueRequest:, Critique:, RevisionRequest:, Revision:"
    problem = f"an example needs the parts {order} in that order"
    fix = f"write each example as one text with the parts {order}, each starting a line"
    try:
        ask = labels.index("CritiqueRequest")
        critique = labels.index("Critique", ask)
        revision = labels.index("Revision", labels.index("RevisionRequest", critique))
    except ValueError:
        raise _error(path, problem, fix, line=line, field=f"[{index}]", value=text) from None
    before = turns[:ask]
    humans = [body for label, body in before if label == "Human"]
    if not humans or not before or before[-1][0] != "Assistant" or not before[-1][1]:
        raise _error(path, problem, fix, line=line, field=f"[{index}]", value=text)
    example = {
        "prompt": humans[-1],
        "response": before[-1][1],
        "critique": turns[critique][1],
        "revision": turns[revision][1],
    }
    for key, value in example.items():
        if not value:
            raise _error(
                path, f"the example's {key} is empty", fix, line=line, field=f"[{index}]", value=text
            )
    return example


def _text(path: Path, value: Any, field: str, fix: str, line: int | None = None) -> str:
    if not isinstance(value, str) or not _unlabelled(value):
        raise _error(path, "expected non-empty text", fix, line=line, field=field, value=value)
    return value


def _from_cai(path: Path, text: str, data: dict[str, Any]) -> Foreign:
    principles, lines = [], {}
    for index, (key, entry) in enumerate(data.items()):
        lines[index] = line = text.count("\n", 0, max(text.find(json.dumps(key)), 0)) + 1
        prompt = entry.get("prompt")
        first = prompt[0] if isinstance(prompt, list) and prompt else prompt
        critique = _text(path, first, f"{key}.prompt[0]", 'write "prompt": ["<critique request>"]', line)
        revision = _text(
            path, entry.get("edit_request"), f"{key}.edit_request", "add the revision request", line
        )
        principles.append(_imported(key, critique, revision))
    description = f"Imported from Anthropic CAI JSON ({path.name})."
    result = {"name": path.stem, "description": description, "principles": principles}
    names = {f"principles[{index}].id": f"key {key!r}" for index, key in enumerate(data)}
    return Foreign(result, lambda loc: lines.get(loc[1]) if len(loc) > 1 else None, names)


def _from_llm_swarm(path: Path, data: dict[str, Any]) -> Foreign:
    principles = []
    for index, entry in enumerate(data["constitutions"]):
        where = f"constitutions[{index}]"
        if not isinstance(entry, dict):
            raise _error(
                path, "expected a mapping", 'write {"critic": ..., "revision": ...}', field=where, value=entry
            )
        critique = _text(path, entry.get("critic"), f"{where}.critic", "add a non-empty critic")
        revision = _text(path, entry.get("revision"), f"{where}.revision", "add a non-empty revision")
        principles.append(_imported(f"principle-{index}", critique, revision))
    chats = data.get("system_chat") or []
    if not isinstance(chats, list):
        raise _error(
            path, "expected a list of conversations", "write system_chat as [[{role, content}, ...], ...]",
            field="system_chat", value=chats,
        )  # fmt: skip
    examples = [example for chat in chats if (example := _few_shot(chat))]
    description = f"Imported from llm-swarm JSON ({path.name})."
    result = {"name": path.stem, "description": description, "principles": principles, "examples": examples}
    return Foreign(result, lambda loc: None, {"principles[": "constitutions["})


def _few_shot(chat: Any) -> dict[str, str] | None:
    """A few-shot example from a user/assistant x 3 conversation, or None when it has another shape."""
    roles = ["user", "assistant"] * 3
    if not isinstance(chat, list) or len(chat) != len(roles):
        return None
    shapes = [
        isinstance(m, dict) and m.get("role") == r and isinstance(m.get("content"), str)
        for m, r in zip(chat, roles, strict=True)
    ]
    if not all(shapes):
        return None
    turns = ("prompt", 0), ("response", 1), ("critique", 3), ("revision", 5)
    return {field: chat[index]["content"] for field, index in turns}
