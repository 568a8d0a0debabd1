"""The judge stage: the first two responses of every prompt, judged under sampled principles; and the
validation of revisions against their originals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig
from rlaif.judging.engine import judge_items
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles
from rlaif.records import Constitution, Judgment, PromptRecord, Response, Revision
from rlaif.reports import StageReport
from rlaif.store import Stage

__all__ = ["judge", "validate_revisions", "validates_revisions"]


def _storer(stage: Stage[Judgment], report: StageReport) -> Callable[[Judgment], None]:
    def store(judgment: Judgment) -> None:
        failed = [o for o in judgment.orders if o.status == "error"]
        if failed:  # the request failed, not the model: keep it out of the store so a rerun retries
            report.fail(f"judgment {judgment.id}: {failed[0].raw[:200]}")
            return
        # An answer that did not parse is the model's verdict, recorded as such with its raw text.
        report.unparsed += judgment.status != "ok"
        report.made += stage.append([judgment])

    return store


async def _judge_all(
    backend: Backend,
    items: Sequence[JudgeItem],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool,
    description: str,
) -> StageReport:
    report = StageReport()
    made = await judge_items(
        backend, items, constitution=constitution, config=config, seed=seed, done={j.id for j in stage},
        on_judgment=_storer(stage, report), quiet=quiet, description=description,
    )  # fmt: skip
    report.reused += len(items) - len(made)
    return report


async def judge(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    responses: dict[str, list[Response]],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool = False,
) -> StageReport:
    """Judge the first two responses of every prompt; store one Judgment per prompt."""
    items = []
    for prompt in prompts:
        candidates = responses.get(prompt.id, [])
        if len(candidates) < 2:
            continue
        a, b = candidates[0], candidates[1]
        items.append(
            JudgeItem(
                prompt_id=prompt.id,
                conversation=prompt.messages,
                a=Candidate(a.id, a.text),
                b=Candidate(b.id, b.text),
                members=draw_principles(constitution, config, seed=seed, key=f"judge:{prompt.id}"),
            )
        )
    return await _judge_all(
        backend, items, constitution=constitution, config=config, seed=seed, stage=stage, quiet=quiet,
        description="judge",
    )  # fmt: skip


def validates_revisions(config: JudgeConfig) -> bool:
    """Whether revisions are judged against their originals before they make pairs (`validate_revisions`)."""
    if config.validate_revisions == "auto":
        return config.model is not None  # a judge of its own; the policy judging itself adds little
    return config.validate_revisions == "on"


async def validate_revisions(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    revisions: Iterable[Revision],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool = False,
) -> StageReport:
    """Judge each final revision (A) against its original (B) under the principles it was revised for,
    in both orders (Constitutional AI's check that a revision is better); stored as `kind="revision"`."""
    by_id = {p.id: p for p in prompts}
    items = []
    for revision in revisions:
        prompt = by_id.get(revision.prompt_id)
        if prompt is None or revision.final.strip() == revision.original.strip():
            continue  # no pair would be made
        principles = tuple(dict.fromkeys(r.principle_id for r in revision.rounds))
        member = tuple(constitution.principle(pid) for pid in principles)
        items.append(
            JudgeItem(
                prompt_id=prompt.id, conversation=prompt.messages, a=Candidate(revision.id, revision.final),
                b=Candidate(revision.response_id, revision.original), members=(member,), kind="revision",
            )
        )  # fmt: skip
    return await _judge_all(
        backend, items, constitution=constitution, config=config, seed=seed, stage=stage, quiet=quiet,
        description="validate revisions",
    )  # fmt: skip
