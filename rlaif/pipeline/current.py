"""The stored records the current inputs would make.

A run directory keeps records from earlier settings (a changed constitution or template gives new
ids; nothing is overwritten). Counts, pairs and exports use only the records of today's inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from rlaif.records import Constitution, PromptRecord, Response
from rlaif.store import RunDir
from rlaif.templates import prompts_dir, template_hash

__all__ = ["current", "responses_by_prompt"]

R = TypeVar("R")


def current(
    run: RunDir, name: str, record_type: type[R], prompts: Sequence[PromptRecord], constitution: Constitution
) -> list[R]:
    """Stored records of stage `name` for these prompts, made with today's constitution and templates."""
    ids = {p.id for p in prompts}
    hashes = {template_hash(p.stem) for p in prompts_dir().glob("*.jinja")}
    return [
        record
        for record in run.stage(name, record_type)  # type: ignore[type-var]
        if record.prompt_id in ids  # type: ignore[attr-defined]
        and record.provenance.constitution_hash == constitution.hash  # type: ignore[attr-defined]
        and set(record.provenance.template_hash.split("+")) <= hashes  # type: ignore[attr-defined]
    ]


def responses_by_prompt(
    responses: Iterable[Any], prompts: Sequence[PromptRecord]
) -> dict[str, list[Response]]:
    """Prompt id -> its stored responses, by sample index."""
    wanted = {p.id for p in prompts}
    grouped: dict[str, list[Response]] = {}
    for response in responses:
        if response.prompt_id in wanted:
            grouped.setdefault(response.prompt_id, []).append(response)
    for group in grouped.values():
        group.sort(key=lambda r: r.sample_index)
    return grouped
