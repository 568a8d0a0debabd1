"""Reference pages written from the code at build time: the CLI from the typer app, the config from
`RunConfig`'s field docstrings, the reports from every `reports` module of the package.

Each function returns Markdown; `gen_pages.py` writes them into the site, and the tests call them too.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[2]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _prose(text: str) -> str:
    """A table cell of prose: no raw HTML from a help text's `<...>`."""
    return _cell(text).replace("<", "&lt;")


# --- the CLI ---


def _commands(group: Any, ctx: Any, path: list[str]) -> list[tuple[list[str], Any, Any]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = command.context_class(command, info_name=name, parent=ctx)
        found.append((path + [name], command, sub))
        if hasattr(command, "list_commands"):
            found += _commands(command, sub, path + [name])
    return found


def cli_markdown() -> str:
    """Every command of `rlaif`: its help, usage, arguments and options, as `--help` shows them."""
    import typer.main

    from rlaif.cli.main import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="rlaif")
    out = [
        "# CLI reference",
        "",
        "Generated from the `rlaif` command's own definitions (the typer app in `rlaif.cli.main`) when the "
        "site "
        "is built, so it says what `rlaif COMMAND --help` says. The [guides](../index.md#guides) show the "
        "commands at work.",
        "",
    ]
    for path, command, sub in _commands(root, ctx, ["rlaif"]):
        title = " ".join(path)
        out += [f"## `{title}`", ""]
        if command.help:
            out += [command.help.strip().split("\f")[0].strip(), ""]
        if hasattr(command, "list_commands"):
            names = [n for n in command.list_commands(sub) if not command.get_command(sub, n).hidden]
            out += ["Commands: " + ", ".join(f"[`{n}`](#{_anchor(path + [n])})" for n in names) + ".", ""]
            continue
        usage = command.get_usage(sub).removeprefix("Usage: ")
        out += ["```text", usage, "```", ""]
        rows = []
        for param in command.get_params(sub):
            record = param.get_help_record(sub)
            if record is None or param.name == "help":
                continue
            kind = "argument" if param.param_type_name == "argument" else "option"
            rows.append(f"| `{_cell(record[0])}` | {kind} | {_prose(record[1])} |")
        if rows:
            out += ["| name | kind | what it does |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(out)


def _anchor(path: list[str]) -> str:
    # mkdocs' toc slug of "`rlaif train dpo`": the words joined by dashes.
    return "-".join(path).lower()


# --- the config ---


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (`X`, `X | None`, `list[X]`, `dict[str, X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{value!r}`"


def config_markdown() -> str:
    """Every YAML setting of a run config, section by section, from the models' field docstrings."""
    from rlaif.config import RunConfig

    out = [
        "# Configuration reference",
        "",
        "Generated from `RunConfig` (import path `rlaif.config`) and its sections' field docstrings when the "
        "site is built: every key a run config accepts, its type, its default and what it does. An unknown "
        "key is an error that names the file, the line and the nearest known key. `--set key=value` "
        "overrides any "
        "of them from the command line (`--set revise.rounds=1`).",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("", RunConfig)]
    while queue:
        prefix, model = queue.pop(0)
        if model in seen and prefix:
            out += [
                f"## `{prefix}`",
                "",
                f"The same fields as [`{model.__name__}`](#{model.__name__.lower()}).",
                "",
            ]
            continue
        seen.add(model)
        heading = f"`{prefix}`" if prefix else "top level"
        out += [f"## {heading}", "", f'<a id="{model.__name__.lower()}"></a>', ""]
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith(("Usage docs:", "!!! abstract")):
            out += [f"`{model.__name__}`: {doc}", ""]
        else:
            out += [f"`{model.__name__}`.", ""]
        rows, nested = [], []
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            key = field.alias or name
            inner = _models(field.annotation)
            description = field.description or ""
            if not description and inner:
                description = (inner[0].__doc__ or "").strip().split("\n\n")[0]
            dotted = f"{prefix}.{key}" if prefix else key
            link = f" (see [`{dotted}`](#{_slug(dotted)}))" if inner else ""
            rows.append(
                f"| `{key}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | "
                f"{_prose(description)}{link} |"
            )
            nested += [(dotted, m) for m in inner[:1]]
        out += ["| key | type | default | what it does |", "| --- | --- | --- | --- |", *rows, ""]
        queue = nested + queue
    return "\n".join(out)


def _slug(dotted: str) -> str:
    # mkdocs' toc slug of "`train.dpo`": dots dropped.
    return dotted.replace(".", "").lower()


# --- the reports ---


def report_modules() -> list[str]:
    """Every `reports` module of the package (`rlaif.reports` and those beside their producers)."""
    package = ROOT / "rlaif"  # found as files: nothing is imported
    names = [
        ".".join(("rlaif", *path.relative_to(package).with_suffix("").parts))
        for path in package.rglob("reports.py")
    ]
    names += [
        ".".join(("rlaif", *path.relative_to(package).parent.parts))
        for path in package.rglob("reports/__init__.py")
    ]
    return sorted(names, key=lambda name: (name.count("."), name))


def reports_markdown() -> str:
    out = [
        "# Reports",
        "",
        "What a command prints is a typed report; `--json FILE` writes its `model_dump`, so these field "
        "docstrings document the JSON's keys. Generated from every `reports` module of the package when the "
        "site "
        "is built.",
        "",
    ]
    for name in report_modules():
        out += [f"## `{name}`", "", f"::: {name}", "    options:", "      show_root_heading: false", ""]
    return "\n".join(out)
