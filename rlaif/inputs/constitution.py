"""Load, find and sample constitutions.

Four file formats are read, told apart by content: our YAML (see `constitution/README.md`), and three
from other projects, turned into ours by `rlaif.inputs.foreign`: Anthropic's Constitutional AI
critique/revision JSON, the CAI paper's RL principle list (judge questions only) and llm-swarm's JSON.
Our format can take principles and few-shot examples from other files (`principles_from`,
`examples_from`), among them the CAI few-shot prompts. Every problem with a file is one
`ConstitutionError` naming the file, line, field, bad value and fix.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from rlaif.callables import load_callable
from rlaif.errors import ConstitutionError
from rlaif.inputs.foreign import cai_few_shot_examples, is_cai_few_shot, read_foreign
from rlaif.records import Check, Constitution, Principle
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

__all__ = [
    "Purpose",
    "find_constitution",
    "import_check",
    "load_constitution",
    "locate_constitution",
    "sample_principle",
    "sample_principles",
    "shipped_names",
]

Purpose = Literal["critique", "judge"]
"""What principles are sampled for: `critique` (and revise) or `judge`."""

_PACKAGE = Path(__file__).resolve().parent.parent
SHIPPED_DIRS = (
    _PACKAGE.parent / "constitution",  # a checkout
    _PACKAGE / "_data" / "constitution",  # an installed wheel
)
_RULES = ", ".join(field.alias or name for name, field in Check.model_fields.items())
_FIXES = {
    "string_pattern_mismatch": "use only letters, digits, '_', '.' and '-' in {field}",
    "check_regex": "write {field} in Python `re` syntax (escape a literal ( [ ? + * . with a backslash)",
    "check_python_target": "write {field} as 'package.module:function', such as 'mychecks:is_polite'",
    "check_never_passes": "raise {limit} or lower {other}",
    "check_empty": f"give the check at least one rule ({_RULES}), or remove it",
    "literal_error": "write {field}: true, or leave it out",  # `json: false` is the only literal
    "principle_half_pair": "add {missing} (critique and revision requests go together), or remove {given}",
    "principle_unused": "add a judge_question, or a critique_request and a revision_request, or both",
    "weights_overflow": "use weights of an ordinary size, such as 1 or 2",
    "*": "see constitution/README.md for the format",
}  # fmt: skip
_INCLUDES = ("principles_from", "examples_from")


def load_constitution(path: str | Path, *, import_checks: bool = True) -> Constitution:
    """Read a constitution file: our YAML, Anthropic's CAI JSON, the CAI RL list or llm-swarm JSON.

    Args:
        path: The file to read.
        import_checks: Import the function of every `python` check, so a name that does not import is
            an error now rather than during a run. This runs the module's code: pass False to read a
            constitution you do not trust (its python checks then fail when they run).

    Returns:
        The validated constitution.

    Raises:
        ConstitutionError: the file is missing, too large, not UTF-8, malformed or invalid; the message
            names the file, line and field, the bad value and the fix.
    """
    return _load(Path(path), import_checks=import_checks, included=False)


def _load(path: Path, *, import_checks: bool, included: bool) -> Constitution:
    text = read_text(
        path,
        ConstitutionError,
        what="constitution",
        max_bytes=MAX_BYTES,
        not_found_fix="check the path, or use a shipped name",
    )
    data = _json(path, text)
    foreign = read_foreign(path, text, data)
    if foreign is not None:
        return _validate(path, foreign.data, foreign.locate, foreign.names)
    data, locate = parse_yaml(
        path,
        text,
        ConstitutionError,
        what="constitution",
        empty_fix="see constitution/README.md for the format",
        mapping_fix="start the file with `name:`, `version:` and `principles:`",
    )
    if any(key in data for key in _INCLUDES):
        data = _include(path, data, locate, import_checks=import_checks, included=included)
    constitution = _validate(path, data, locate, {})
    if import_checks:
        _import_checks(path, constitution, locate)
    return constitution


def locate_constitution(path: str | Path) -> Locate:
    """The line finder of a constitution file, as its loader uses for errors: the 1-based line of the
    value at a loc such as `("principles", 2, "judge_question")`, or of the deepest enclosing value the
    file has. Principles and examples taken from other files (`principles_from`) come after the file's
    own, so their locs point at the enclosing list. Call it on a file that loads."""
    path = Path(path)
    text = read_text(path, ConstitutionError, what="constitution", max_bytes=MAX_BYTES)
    foreign = read_foreign(path, text, _json(path, text))
    if foreign is not None:
        return foreign.locate
    return parse_yaml(path, text, ConstitutionError, what="constitution")[1]


def _json(path: Path, text: str) -> Any:
    """The parsed JSON of a `.json` file or of text that looks like JSON; None for YAML."""
    if path.suffix.lower() != ".json" and text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if path.suffix.lower() == ".json":
            raise _error(path, f"invalid JSON: {exc.msg}", "fix the JSON syntax", line=exc.lineno) from None
        return None  # YAML that starts with a flow mapping or list
    except RecursionError:
        fix = "a constitution needs only a few levels of nesting"
        raise _error(path, "nested too deeply to read", fix) from None
    except ValueError as exc:  # a number JSON cannot convert (thousands of digits)
        raise _error(path, f"invalid JSON: {str(exc).split(';')[0]}", "fix the value") from None


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


def sample_principle(
    constitution: Constitution, *, seed: int, key: str, purpose: Purpose | None = None
) -> Principle:
    """A weighted random principle for `purpose`, the same for the same (seed, key) whatever the call order.

    See `sample_principles`.
    """
    return sample_principles(constitution, 1, seed=seed, key=key, purpose=purpose)[0]


def sample_principles(
    constitution: Constitution, k: int, *, seed: int, key: str, purpose: Purpose | None = None
) -> tuple[Principle, ...]:
    """`k` distinct principles, drawn by weight without replacement, determined by (seed, key).

    Args:
        constitution: The constitution to draw from.
        k: How many principles.
        seed: The run's seed.
        key: Names the draw (a stage and a prompt id, say).
        purpose: `critique` draws from `Constitution.for_critique()`, `judge` from `for_judging()`.
            None draws from all principles, and is refused for a constitution in which some principle
            serves only one of the two. Where every principle serves both, all three draw the same.

    Raises:
        ConstitutionError: no principle serves `purpose` (the message names the missing field), or
            fewer than `k` do.
    """
    pool = _pool(constitution, purpose)
    if not 0 <= k <= len(pool):
        which = "" if purpose is None else f" usable to {purpose}"
        raise ConstitutionError(
            f"cannot sample {k} distinct principles from constitution {constitution.name!r}, which has "
            f"{len(pool)}{which}; ask for between 0 and {len(pool)}"
        )
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    remaining = list(pool)
    chosen: list[Principle] = []
    for _ in range(k):
        pick = rng.choices(range(len(remaining)), weights=[p.weight for p in remaining])[0]
        chosen.append(remaining.pop(pick))
    return tuple(chosen)


def _pool(constitution: Constitution, purpose: Purpose | None) -> tuple[Principle, ...]:
    name = constitution.name
    if purpose is None:
        partial = [p.id for p in constitution.principles if not (p.critiques and p.judges)]
        if partial:
            raise ConstitutionError(
                f"constitution {name!r} has principles that only judge or only critique "
                f"({', '.join(partial[:5])}{', ...' if len(partial) > 5 else ''}); "
                "sample them with purpose='critique' or purpose='judge'"
            )
        return constitution.principles
    if purpose == "critique":
        pool, missing, other = constitution.for_critique(), "critique_request and revision_request", "judge"
    else:
        pool, missing, other = constitution.for_judging(), "judge_question", "critique and revise"
    if not pool:
        raise ConstitutionError(
            f"constitution {name!r} has no principle with a {missing}, so it cannot be used to {purpose}; "
            f"add a {missing} to a principle, or use this constitution only to {other}"
        )
    return pool


def import_check(target: str, *, base_dir: Path | None = None) -> Callable[..., object]:
    """The function a `python` check names (`package.module:function`). This imports the module: it runs
    the user's code.

    Args:
        target: `package.module:function` (or `module:Class.method`).
        base_dir: A folder searched before the Python path (the constitution's own folder).

    Raises:
        ImportError: the module does not import (whatever it raised), or has no such attribute.
        TypeError: the attribute is not callable.
    """
    return load_callable(target, base_dir=base_dir, files=False)


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


def _include(
    path: Path, data: dict[str, Any], locate: Locate, *, import_checks: bool, included: bool
) -> dict[str, Any]:
    """`data` with the principles of `principles_from` files and the examples of `examples_from` files
    appended to its own (after them, so the lines of errors in its own entries stay right)."""
    data = dict(data)
    own = data.get("principles") if isinstance(data.get("principles"), list) else []
    taken = {
        p["id"]: f"principles[{i}]"
        for i, p in enumerate(own)
        if isinstance(p, dict) and isinstance(p.get("id"), str)
    }
    for key in _INCLUDES:
        if key not in data:
            continue
        value, line = data.pop(key), locate((key,))
        if included:
            fix = "name every file in the constitution that includes this one, not here"
            raise _error(path, f"{key} in a file that is itself included", fix, line=line, field=key)
        names = [value] if isinstance(value, str) else value
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n.strip() and "\x00" not in n for n in names)
        ):
            fix = f"write {key}: other.json, or a list of file names (relative to this file)"
            raise _error(
                path, "expected a file name or a list of file names", fix, line=line, field=key, value=value
            )
        for name in names:
            where = f"{path}, line {line}, {key}" if line else f"{path}, {key}"
            source = path.parent / name
            try:
                if key == "principles_from":
                    added = [
                        p.model_dump(mode="json")
                        for p in _load(source, import_checks=import_checks, included=True).principles
                    ]
                else:
                    added = _examples_from(source, import_checks=import_checks)
            except ConstitutionError as exc:
                raise ConstitutionError(f"{exc} (included by {where})") from None
            if key == "principles_from":
                for principle in added:
                    if (pid := principle["id"]) in taken:
                        problem = f"principle id {pid!r} from {name} is already used by {taken[pid]}"
                        fix = "give every principle its own id (rename one of them)"
                        raise _error(path, problem, fix, line=line, field=key, value=name)
                    taken[principle["id"]] = name
            field = "principles" if key == "principles_from" else "examples"
            if data.get(field) is None or isinstance(data[field], list):
                data[field] = [*(data.get(field) or []), *added]
    return data


def _examples_from(path: Path, *, import_checks: bool) -> list[dict[str, str]]:
    """The few-shot examples in a CAI few-shot JSON file, or in any constitution file."""
    text = read_text(path, ConstitutionError, what="few-shot file", max_bytes=MAX_BYTES)
    data = _json(path, text)
    if is_cai_few_shot(data):
        return cai_few_shot_examples(path, text, data)
    return [
        e.model_dump(mode="json") for e in _load(path, import_checks=import_checks, included=True).examples
    ]


def _import_checks(path: Path, constitution: Constitution, locate: Locate) -> None:
    for index, principle in enumerate(constitution.principles):
        if principle.check is None or principle.check.python is None:
            continue
        target = principle.check.python
        try:
            import_check(target, base_dir=path.parent)
        except (ImportError, TypeError) as exc:
            loc = ("principles", index, "check", "python")
            fix = (
                "name an importable function as package.module:function (installed, or a .py file in "
                "the constitution's folder)"
            )
            problem = f"the python check cannot be used: {exc}"
            raise _error(path, problem, fix, line=locate(loc), field=field_path(loc), value=target) from None
