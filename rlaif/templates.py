"""Prompt templates: sandboxed Jinja files in `prompts/`, one per stage.

User and model text only ever enter as variables; the sandbox refuses attribute tricks, and
StrictUndefined turns a missing variable into an error instead of an empty string.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rlaif.errors import TemplateError

__all__ = ["Rendered", "prompts_dir", "render", "template_hash"]


def prompts_dir() -> Path:
    """The checkout's `prompts/` in development, else the copy shipped inside the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "prompts", here / "_data" / "prompts"):
        if candidate.is_dir():
            return candidate
    raise TemplateError("no prompts/ folder found next to the rlaif package; reinstall rlaif")


@dataclass(frozen=True)
class Rendered:
    """A rendered template and the hash of its source, for provenance."""

    text: str
    template: str
    template_hash: str


@cache
def _environment(folder: str) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def template_hash(name: str, folder: Path | None = None) -> str:
    """Hash of the template's source: a changed template gives new record ids."""
    path = (folder or prompts_dir()) / f"{name}.jinja"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        raise TemplateError(f"template {path} not found") from None


def render(name: str, folder: Path | None = None, **variables: Any) -> Rendered:
    """Render `prompts/NAME.jinja` with the given variables."""
    folder = folder or prompts_dir()
    env = _environment(str(folder))
    try:
        text = env.get_template(f"{name}.jinja").render(**variables)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {folder / (name + '.jinja')} not found") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {name}.jinja: {exc}; pass that variable or edit the template"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {name}.jinja line {exc.lineno}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(
            f"template {name}.jinja: {exc} (the sandbox refused it); use only the variables passed in"
        ) from exc
    return Rendered(text=text.strip(), template=name, template_hash=template_hash(name, folder))
