"""Prompt templates: sandboxed Jinja files in `prompts/`, one per stage.

User and model text only ever enter as variables; the sandbox refuses attribute tricks, and
StrictUndefined turns a missing variable into an error instead of an empty string. A run config's
`templates:` puts your own files in place of some (`Templates`); without it every stage renders `SHIPPED`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rlaif.errors import TemplateError

__all__ = ["SHIPPED", "Rendered", "Templates", "prompts_dir", "render", "template_hash"]


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
    return _file_hash((folder or prompts_dir()) / f"{name}.jinja")


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        raise TemplateError(f"template {path} not found") from None


def render(name: str, folder: Path | None = None, **variables: Any) -> Rendered:
    """Render `prompts/NAME.jinja` with the given variables."""
    folder = folder or prompts_dir()
    text = _render(folder, f"{name}.jinja", f"{name}.jinja", variables, lines=False)
    return Rendered(text=text, template=name, template_hash=template_hash(name, folder))


def _render(folder: Path, filename: str, shown: str, variables: dict[str, Any], *, lines: bool) -> str:
    """Render one file of `folder` in the sandbox; an error is one `TemplateError` naming `shown` (and the
    template's line, with `lines`)."""
    env = _environment(str(folder))
    try:
        return env.get_template(filename).render(**variables).strip()
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {folder / filename} not found") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {shown} line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        where = _where(shown, exc, folder / filename, lines)
        raise TemplateError(f"{where}: {exc}; pass that variable or edit the template") from None
    except SecurityError as exc:
        where = _where(shown, exc, folder / filename, lines)
        raise TemplateError(
            f"{where}: {exc} (the sandbox refused it); use only the variables passed in"
        ) from exc


def _where(shown: str, exc: BaseException, path: Path, lines: bool) -> str:
    """ "template FILE" and, with `lines`, the template line the error was raised at (jinja maps its
    frames back to the template's lines)."""
    line = None
    tb = exc.__traceback__
    while lines and tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"template {shown}" + (f" line {line}" if line else "")


@dataclass(frozen=True)
class Templates:
    """The templates a run renders: the shipped ones, with your own files in place of some (the run
    config's `templates:`). Every stage renders through one of these; `SHIPPED` has no files of yours."""

    files: Mapping[str, Path] = field(default_factory=dict)
    """Shipped template name (`judge`, `critique`, ...) -> your file that replaces it."""

    def render(self, name: str, **variables: Any) -> Rendered:
        """Render the template `name`: your file when you gave one, else the shipped `prompts/NAME.jinja`."""
        path = self.files.get(name)
        if path is None:
            return render(name, **variables)
        text = _render(path.parent, path.name, str(path), variables, lines=True)
        return Rendered(text=text, template=name, template_hash=_file_hash(path))

    def hash(self, name: str) -> str:
        """The hash of the template `name` as this set renders it (it goes into record ids)."""
        path = self.files.get(name)
        return template_hash(name) if path is None else _file_hash(path)

    def hashes(self) -> dict[str, str]:
        """Every template name -> its hash in this set: the shipped names, your files in their place."""
        names = sorted({p.stem for p in prompts_dir().glob("*.jinja")} | set(self.files))
        return {name: self.hash(name) for name in names}

    def check(self) -> None:
        """Render each of your files against a sample of what its stage passes, with undefined variables
        an error: a syntax error, an unknown variable or a sandbox refusal raises `TemplateError` naming
        the file and line before any request is sent."""
        for name in self.files:
            for variables in _samples(name):
                self.render(name, **variables)


SHIPPED = Templates()


def _samples(name: str) -> list[dict[str, Any]]:
    """What the stage that renders `name` passes it (sample values), one dict per way it is rendered."""
    from rlaif.records import Message, Principle

    principle = Principle(
        id="sample", critique_request="Identify how the last answer could be kinder.",
        revision_request="Rewrite the answer to be kinder.", judge_question="Which response is kinder?",
        tags=("sample",),
    )  # fmt: skip
    conversation = (Message(role="user", content="How do I boil an egg?"),)
    example = {
        "prompt": "Hi",
        "first": "Hello!",
        "second": "Go away.",
        "verdict": "A",
        "reasoning": "B is rude.",
    }
    judged = {"conversation": conversation, "principles": (principle,), "nonce": "0a1b2c3d"}
    pair = {**judged, "examples": [example], "response_a": "Nine minutes.", "response_b": "Forever."}
    samples: dict[str, list[dict[str, Any]]] = {
        "respond": [{"system_prompt": "You are a careful assistant."}, {"system_prompt": ""}],
        "critique": [{"principle": principle}],
        "revise": [{"principle": principle}],
        "judge": [pair, {**pair, "examples": []}],
        "judge_plain": [pair, {**pair, "examples": []}],
        "judge_cot": [pair, {"final": True}],
        "judge_pointwise": [{**judged, "response": "Nine minutes."}],
        "rubric_items": [{"conversation": conversation, "principle": principle, "k": 4, "nonce": "0a1b2c3d"}],
        "red_team": [
            {"principles": [{"id": "concise", "rule": "min_words: 10"}], "examples": ["Tell me a story."]},
            {"principles": [{"id": "concise", "rule": "min_words: 10"}], "examples": []},
        ],
        "rubric_score": [
            {
                "conversation": conversation,
                "item": "The answer gives a time.",
                "response": "Nine minutes.",
                "nonce": "0a1b2c3d",
            }
        ],
    }
    return samples[name]
