"""Read user YAML files safely and explain what is wrong with them.

Shared by constitutions and run configs: a size limit, a UTF-8 check, a loader that refuses aliases
and duplicate keys, and messages for pydantic errors that name the file, line and field, the bad
value and the fix ("FILE, line N, FIELD.PATH: problem (got VALUE); fix").
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping, MutableMapping, MutableSequence, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "MAX_BYTES",
    "NO_VALUE",
    "Locate",
    "describe_error",
    "field_path",
    "format_error",
    "load_yaml",
    "parse_yaml",
    "read_text",
]

MAX_BYTES = 5 * 1024 * 1024
"""Larger files are refused by default: constitutions and configs are a page or two of text."""
NO_VALUE: Any = object()
"""Stands for "no bad value to show" in `format_error`."""
Locate = Callable[[tuple[Any, ...]], int | None]
"""The 1-based line of the value at a pydantic error `loc`, or None when it is not known."""

_FIX = {
    "string_type": "write {field} as text (quote it if YAML reads it as a number, date or yes/no)",
    "string_too_short": "give {field} a non-empty value",
    "string_too_long": "shorten {field} to at most {max_length} characters",
    "string_pattern_mismatch": "make {field} match the pattern {pattern}",
    "greater_than": "use a {field} greater than {gt}",
    "greater_than_equal": "use a {field} of {ge} or more",
    "less_than": "use a {field} less than {lt}",
    "less_than_equal": "use a {field} of {le} or less",
    "int_parsing": "use a whole number for {field}, such as 1 or 2",
    "int_type": "use a whole number for {field}, such as 1 or 2",
    "int_from_float": "use a whole number for {field}, such as 1 or 2",
    "float_parsing": "use a number for {field}, such as 1 or 2.5",
    "float_type": "use a number for {field}, such as 1 or 2.5",
    "finite_number": "use a finite number for {field}, such as 1 or 2.5 (not .inf or .nan)",
    "blank_text": "write some text in {field}, or leave the key out where it is optional",
    "bool_parsing": "write {field} as true or false",
    "bool_type": "write {field} as true or false",
    "literal_error": "use {expected} for {field}",
    "too_short": "add at least one entry to {field}",
    "list_type": "write {field} as a YAML list, such as [a, b]",
    "tuple_type": "write {field} as a YAML list, such as [a, b]",
    "dict_type": "write {field} as a mapping of key: value",
    "model_type": "write this entry as a mapping of field: value",
    "*": "check the value of {field}",
}
_SEQUENCES = (list, tuple, set, frozenset, Sequence, MutableSequence)
_MAPPINGS = (dict, Mapping, MutableMapping)


def load_yaml(
    path: str | Path, error_cls: type[Exception], *, what: str, max_bytes: int = MAX_BYTES
) -> tuple[dict[str, Any], Locate]:
    """Read a YAML file whose top level is a mapping.

    Args:
        path: The file to read.
        error_cls: The exception raised for every problem with the file (`ConfigError`, say).
        what: What the file holds ("config"), for the messages.
        max_bytes: Larger files are refused.

    Returns:
        The parsed mapping, and a function giving the line of the value at a pydantic error `loc`.

    Raises:
        error_cls: the file is missing, too large, not UTF-8, not YAML, not a mapping, or uses an alias
            or a key twice; the message names the file and line and says how to fix it.
    """
    path = Path(path)
    return parse_yaml(path, read_text(path, error_cls, what=what, max_bytes=max_bytes), error_cls, what=what)


def read_text(
    path: Path,
    error_cls: type[Exception],
    *,
    what: str,
    max_bytes: int = MAX_BYTES,
    not_found_fix: str = "check the path",
    too_large_fix: str | None = None,
) -> str:
    """The file's text, refusing missing, oversized and non-UTF-8 files with an `error_cls`."""
    try:
        if (size := path.stat().st_size) > max_bytes:
            fix = too_large_fix or f"a {what} is a page or two of text: check that this is the right file"
            raise error_cls(
                format_error(path, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit", fix)
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error_cls(format_error(path, "file not found", not_found_fix)) from None
    except OSError as exc:
        raise error_cls(
            format_error(path, f"cannot read the file ({exc.strerror or exc})", "check the path")
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error_cls(format_error(path, problem, "save the file as UTF-8", line=line)) from None


def parse_yaml(
    path: Path,
    text: str,
    error_cls: type[Exception],
    *,
    what: str,
    empty_fix: str | None = None,
    mapping_fix: str | None = None,
) -> tuple[dict[str, Any], Locate]:
    """Parse `text` read from `path` as a YAML mapping; see `load_yaml`."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here already
        node = loader.get_single_node()
        if node is None:
            fix = empty_fix or f"write the {what} as `key: value` lines"
            raise error_cls(format_error(path, "the file is empty", fix))
        _check_duplicate_keys(path, node, error_cls)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        line = mark.line + 1 if mark else None
        raise error_cls(
            format_error(path, f"YAML error: {problem}", "fix the YAML at that line", line=line)
        ) from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())  # one line
        raise error_cls(format_error(path, f"YAML error: {problem}", "fix the YAML")) from None
    except RecursionError:
        raise error_cls(
            format_error(path, "nested too deeply to read", f"a {what} needs only a few levels of nesting")
        ) from None
    except (ValueError, OverflowError) as exc:  # a scalar YAML cannot convert: 2020-13-45, a 5000-digit int
        raise error_cls(
            format_error(path, f"YAML error: a value cannot be read ({str(exc).split(';')[0]})", "quote it")
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        fix = mapping_fix or f"write the {what} as `key: value` lines"
        line = node.start_mark.line + 1
        raise error_cls(format_error(path, f"expected a mapping of fields, got {kind}", fix, line=line))
    return data, lambda loc: _yaml_line(node, loc)


def describe_error(
    path: Path,
    exc: ValidationError,
    locate: Locate,
    *,
    model: type[BaseModel] | None = None,
    names: dict[str, str] | None = None,
    fixes: Mapping[str, str] | None = None,
) -> str:
    """One message for a pydantic error: the first problem in full, then where the others are.

    Args:
        path: The file that was validated.
        exc: The error from validating its contents.
        locate: The line of the value at an error's `loc` (see `load_yaml`).
        model: The model that was validated; lets unknown keys list the allowed ones, with a "did you mean".
        names: Text to replace in field paths, for files whose fields are named differently from the model's.
        fixes: Fix templates by pydantic error type, over the defaults; `{field}` and the error's context
            (`{gt}`, `{pattern}`, ...) are filled in, and the key `*` is for types without a template.

    Returns:
        "FILE, line N, FIELD.PATH: problem (got VALUE); fix", then "; other problems: ..." if there
        are more.
    """
    names = names or {}
    errors = [(tuple(e["loc"]), e) for e in exc.errors()]
    # A list whose items failed also reports itself "too short"; the item errors say more.
    errors = [(loc, e) for loc, e in errors if not any(o[: len(loc)] == loc != o for o, _ in errors)]
    others = [field_path(loc, names) + (f" (line {n})" if (n := locate(loc)) else "") for loc, _ in errors]
    more = f"; other problems: {', '.join(others[1:4])}{', ...' if len(others) > 4 else ''}"
    loc, first = errors[0]
    problem, fix, value = _describe(first, model, {**_FIX, **(fixes or {})})
    message = format_error(path, problem, fix, line=locate(loc), field=field_path(loc, names), value=value)
    return f"{message}{more if len(others) > 1 else ''}"


def format_error(
    path: Path, problem: str, fix: str, *, line: int | None = None, field: str = "", value: Any = NO_VALUE
) -> str:
    """ "FILE, line N, FIELD: problem (got VALUE); fix", leaving out the parts not given."""
    where = f"{path}, line {line}" if line else str(path)
    got = "" if value is NO_VALUE else f" (got {_short(value)})"
    return f"{where}{', ' + field if field else ''}: {problem}{got}; {fix}"


def field_path(loc: tuple[Any, ...], names: dict[str, str] | None = None) -> str:
    """`("principles", 0, "id")` as `principles[0].id`, with each of `names`' keys replaced by its value."""
    parts = (f"[{part}]" if isinstance(part, int) else f".{_printable(part)}" for part in loc)
    text = "".join(parts).lstrip(".")
    for ours, theirs in (names or {}).items():
        text = text.replace(ours, theirs)
    return text


def _printable(part: Any) -> str:
    text = str(part)
    return text if text.isprintable() else repr(text)[1:-1]  # a key with a newline stays on one line


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases: they are how YAML bombs grow, and our files need none."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            problem = f"alias *{event.anchor} is not allowed (write the value out in full)"
            raise yaml.composer.ComposerError(None, None, problem, event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def _check_duplicate_keys(path: Path, node: yaml.Node, error_cls: type[Exception]) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        line = key.start_mark.line + 1
                        message = format_error(
                            path, "key given twice", "keep only one", line=line, field=key.value
                        )
                        raise error_cls(message)
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _yaml_line(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the node at `loc`, or of the deepest enclosing node that exists."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            keys = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not keys:
                break
            line, node = keys[0][0].start_mark.line + 1, keys[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _describe(error: Any, model: type[BaseModel] | None, fixes: Mapping[str, str]) -> tuple[str, str, Any]:
    """Problem, fix and bad value (or `NO_VALUE`) for one pydantic error."""
    kind, loc = error["type"], tuple(error["loc"])
    name = str(loc[-1]) if loc else "value"
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        if owner is None:
            return f"unknown key {name!r}", "remove or rename it", NO_VALUE
        allowed = sorted(field.alias or key for key, field in owner.model_fields.items() if not field.exclude)
        close = difflib.get_close_matches(name, allowed, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {name!r}", f"{guess}remove or rename it; allowed: {', '.join(allowed)}", NO_VALUE
    if kind == "missing":
        return f"required field {name!r} is missing", f"add a non-empty {name}", NO_VALUE
    context = {**error.get("ctx", {}), "field": name}
    try:
        fix = fixes.get(kind, fixes["*"]).format_map(context)
    except (KeyError, IndexError):  # a template naming context this error lacks
        fix = fixes["*"].format_map(context)
    if kind == "greater_than" and context.get("gt") == 0:
        fix += ", such as 1 or 2"
    if kind == "model_type" and (expected := _model_at(model, loc)) is not None:
        keys = [field.alias or key for key, field in expected.model_fields.items() if not field.exclude]
        fix += f" with the keys {', '.join(keys)}"
    problem = (
        "needs at least one entry" if kind == "too_short" else error["msg"][0].lower() + error["msg"][1:]
    )
    return problem, fix, error.get("input", NO_VALUE)


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose fields are at `loc` inside `model`, found from the field annotations."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
    return _as_model(current)


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one `loc` part deeper, or None when it cannot be followed."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        field = (
            fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
            if isinstance(part, str)
            else None
        )
        return field.annotation if field else None
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        for member in members:  # pydantic names the union member it tried in the loc
            if getattr(member, "__name__", None) == part:
                return member
        steps = [s for member in members if (s := _step(member, part)) is not None]
        return steps[0] if steps else None
    if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[A, B]: one type per position
        return args[part] if isinstance(part, int) and part < len(args) else None
    if origin in _SEQUENCES:
        return args[0] if args and isinstance(part, int) else None
    if origin in _MAPPINGS:
        return args[1] if len(args) == 2 else None
    return None


def _as_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is typing.Annotated:
        return _as_model(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for a in typing.get_args(annotation) if (m := _as_model(a)) is not None]
        return models[0] if len(models) == 1 else None
    return None
