"""Load, find and sample constitutions.

Three file formats are read, told apart by content: our YAML (see `constitution/README.md`),
Anthropic's Constitutional AI JSON (`{"harmful0": {"prompt": [...], "edit_request": ...}}`) and
llm-swarm's JSON (`{"constitutions": [{"critic": ..., "revision": ...}], "system_chat": [...]}`).
Every problem with a file is one `ConstitutionError` naming the file, line, field, bad value and fix.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.errors import ConstitutionError
from rlaif.records import Constitution, Principle
from rlaif.yamlfile import (
    MAX_BYTES,
    NO_VALUE,
    Locate,
    describe_error,
    field_path,
    format_error,
    parse_yaml,
    read_text,
)

__all__ = ["find_constitution", "load_constitution", "sample_principle", "sample_principles", "shipped_names"]

_PACKAGE = Path(__file__).resolve().parent.parent
SHIPPED_DIRS = (
    _PACKAGE.parent / "constitution",  # a checkout
    _PACKAGE / "_data" / "constitution",  # an installed wheel
)
_FIXES = {
    "string_pattern_mismatch": "use only letters, digits, '_', '.' and '-' in {field}",
    "*": "see constitution/README.md for the format",
}


def load_constitution(path: str | Path) -> Constitution:
    """Read a constitution file: our YAML, Anthropic's CAI JSON or llm-swarm JSON.

    Args:
        path: The file to read.

    Returns:
        The validated constitution.

    Raises:
        ConstitutionError: the file is missing, too large, not UTF-8, malformed or invalid; the message
            names the file, line and field, the bad value and the fix.
    """
    path = Path(path)
    text = read_text(
        path,
        ConstitutionError,
        what="constitution",
        max_bytes=MAX_BYTES,
        not_found_fix="check the path, or use a shipped name",
    )
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if path.suffix.lower() == ".json":
                raise _error(
                    path, f"invalid JSON: {exc.msg}", "fix the JSON syntax", line=exc.lineno
                ) from None
        except RecursionError:
            fix = "a constitution needs only a few levels of nesting"
            raise _error(path, "nested too deeply to read", fix) from None
        except ValueError as exc:  # a number JSON cannot convert (thousands of digits)
            raise _error(path, f"invalid JSON: {str(exc).split(';')[0]}", "fix the value") from None
        else:
            if isinstance(data, dict) and isinstance(data.get("constitutions"), list):
                return _from_llm_swarm(path, data)
            if _looks_like_cai(data):
                return _from_cai(path, text, data)
    data, locate = parse_yaml(
        path,
        text,
        ConstitutionError,
        what="constitution",
        empty_fix="see constitution/README.md for the format",
        mapping_fix="start the file with `name:`, `version:` and `principles:`",
    )
    return _validate(path, data, locate, {})


def find_constitution(name_or_path: str | Path) -> Path:
    """The file for a path that exists, else for a shipped constitution name (`harmless`, `helpful-honest`).

    Shipped files are looked up in the checkout's `constitution/` folder, then in the wheel's package data.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.name.removesuffix(".yaml")
    if str(name_or_path) in (name, f"{name}.yaml"):
        for folder in SHIPPED_DIRS:
            if (folder / f"{name}.yaml").is_file():
                return folder / f"{name}.yaml"
    shipped = ", ".join(shipped_names()) or "(none found)"
    raise ConstitutionError(
        f"no constitution file or shipped constitution named {str(name_or_path)!r}; "
        f"give the path of a YAML or JSON file, or one of the shipped names: {shipped}"
    )


def shipped_names() -> tuple[str, ...]:
    """Names of the constitutions shipped with rlaif."""
    names = {file.stem for folder in SHIPPED_DIRS if folder.is_dir() for file in folder.glob("*.yaml")}
    return tuple(sorted(names))


def sample_principle(constitution: Constitution, *, seed: int, key: str) -> Principle:
    """A weighted random principle, the same for the same (seed, key) whatever the call order."""
    return sample_principles(constitution, 1, seed=seed, key=key)[0]


def sample_principles(constitution: Constitution, k: int, *, seed: int, key: str) -> tuple[Principle, ...]:
    """`k` distinct principles, drawn by weight without replacement, determined by (seed, key)."""
    count = len(constitution.principles)
    if not 0 <= k <= count:
        raise ConstitutionError(
            f"cannot sample {k} distinct principles from constitution {constitution.name!r}, which has "
            f"{count}; ask for between 0 and {count}"
        )
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    pool = list(constitution.principles)
    chosen: list[Principle] = []
    for _ in range(k):
        pick = rng.choices(range(len(pool)), weights=[p.weight for p in pool])[0]
        chosen.append(pool.pop(pick))
    return tuple(chosen)


def _error(
    path: Path, problem: str, fix: str, *, line: int | None = None, field: str = "", value: Any = NO_VALUE
) -> ConstitutionError:
    return ConstitutionError(format_error(path, problem, fix, line=line, field=field, value=value))


def _validate(path: Path, data: dict[str, Any], lines: Locate, names: dict[str, str]) -> Constitution:
    """Validate `data` as a Constitution; report the first problem at the line `lines` gives for its loc."""
    if isinstance(data.get("version"), int | float) and not isinstance(data["version"], bool):
        data = {**data, "version": str(data["version"])}  # `version: 2` is natural YAML
    try:
        constitution = Constitution.model_validate(data)
    except ValidationError as exc:
        message = describe_error(path, exc, lines, model=Constitution, names=names, fixes=_FIXES)
        raise ConstitutionError(message) from None
    first: dict[str, int] = {}
    for index, principle in enumerate(constitution.principles):
        if principle.id in first:
            loc = ("principles", index, "id")
            problem = f"duplicate principle id (already used by principles[{first[principle.id]}])"
            fix = "give every principle its own id"
            raise _error(
                path, problem, fix, line=lines(loc), field=field_path(loc, names), value=principle.id
            )
        first[principle.id] = index
    return constitution


def _looks_like_cai(data: Any) -> bool:
    entries = list(data.values()) if isinstance(data, dict) and "principles" not in data else []
    return (
        bool(entries)
        and all(isinstance(e, dict) for e in entries)
        and any("edit_request" in e for e in entries)
    )


def _imported(pid: str, critique: str, revision: str) -> dict[str, str]:
    critique, revision = critique.strip(), revision.strip()
    judge = f'Which response does better on this check: "{critique}"'
    return {"id": pid, "critique_request": critique, "revision_request": revision, "judge_question": judge}


def _text(path: Path, value: Any, field: str, fix: str, line: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(path, "expected non-empty text", fix, line=line, field=field, value=value)
    return value


def _from_cai(path: Path, text: str, data: dict[str, Any]) -> Constitution:
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
    return _validate(path, result, lambda loc: lines.get(loc[1]) if len(loc) > 1 else None, names)


def _from_llm_swarm(path: Path, data: dict[str, Any]) -> Constitution:
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
    return _validate(path, result, lambda loc: None, {"principles[": "constitutions["})


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
