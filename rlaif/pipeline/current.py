"""The stored records the current inputs would make.

A run directory keeps records from earlier settings (a changed constitution or template gives new
ids; nothing is overwritten). Counts, pairs and exports use only the records of today's inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from rlaif.records import Constitution, PromptRecord, Response
from rlaif.store import RunDir, Stage
from rlaif.templates import SHIPPED, Templates

__all__ = ["StoredResponses", "current", "iter_current", "responses_by_prompt"]

R = TypeVar("R")


def iter_current(
    run: RunDir,
    name: str,
    record_type: type[R],
    prompts: Sequence[PromptRecord],
    constitution: Constitution,
    *,
    templates: Templates = SHIPPED,
) -> Iterator[R]:
    """Stored records of stage `name` for these prompts, made with today's constitution and templates
    (the run config's own files where it names some), streamed from the stage file."""
    ids = {p.id for p in prompts}
    hashes = set(templates.hashes().values())
    for record in run.stage(name, record_type):  # type: ignore[type-var]
        if (
            record.prompt_id in ids  # type: ignore[attr-defined]
            and record.provenance.constitution_hash == constitution.hash  # type: ignore[attr-defined]
            and set(record.provenance.template_hash.split("+")) <= hashes  # type: ignore[attr-defined]
        ):
            yield record


def current(
    run: RunDir,
    name: str,
    record_type: type[R],
    prompts: Sequence[PromptRecord],
    constitution: Constitution,
    *,
    templates: Templates = SHIPPED,
) -> list[R]:
    """`iter_current` as a list."""
    return list(iter_current(run, name, record_type, prompts, constitution, templates=templates))


def responses_by_prompt(
    responses: Iterable[Any], prompts: Sequence[PromptRecord]
) -> dict[str, list[Response]]:
    """Prompt id -> its stored responses, by sample index (all of them in memory; see `StoredResponses`)."""
    wanted = {p.id for p in prompts}
    grouped: dict[str, list[Response]] = {}
    for response in responses:
        if response.prompt_id in wanted:
            grouped.setdefault(response.prompt_id, []).append(response)
    for group in grouped.values():
        group.sort(key=lambda r: r.sample_index)
    return grouped


class StoredResponses(Mapping[str, list[Response]]):
    """Prompt id -> its stored responses by sample index, read from the stage when asked for.

    What `responses_by_prompt` gives, holding only the ids: a run of a million prompts keeps two ids a
    prompt in memory, and a prompt's responses are read back when its critique or judgment starts.
    """

    def __init__(self, stage: Stage[Response], prompts: Sequence[PromptRecord]):
        self._stage = stage
        wanted = {p.id: p.id for p in prompts}  # the prompts' own id strings, not a copy per response
        found: dict[str, list[tuple[int, str]]] = {}
        for response in stage:
            key = wanted.get(response.prompt_id)
            if key is not None:
                found.setdefault(key, []).append((response.sample_index, response.id))
        self._ids = {key: tuple(i for _, i in sorted(group)) for key, group in found.items()}
        self._with_first = {key for key, group in found.items() if min(group)[0] == 0}

    def __getitem__(self, prompt_id: str) -> list[Response]:
        return [r for i in self._ids[prompt_id] if (r := self._stage.get(i)) is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def originals(self) -> Mapping[str, Response]:
        """Prompt id -> its first sample (sample index 0), for critique and revision."""
        return _Originals(self)


class _Originals(Mapping[str, Response]):
    def __init__(self, responses: StoredResponses):
        self._responses = responses
        self._first = responses._with_first

    def __getitem__(self, prompt_id: str) -> Response:
        if prompt_id not in self._first:
            raise KeyError(prompt_id)
        return self._responses[prompt_id][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)
