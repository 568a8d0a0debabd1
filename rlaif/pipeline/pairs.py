"""Preference pairs from revisions (final revision ≻ original) and from judgments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

from rlaif.config import JudgeConfig, RunConfig
from rlaif.pipeline.current import iter_current
from rlaif.records import Constitution, Judgment, PreferencePair, PromptRecord, Response, Revision, stable_id
from rlaif.store import RunDir

__all__ = ["build_pairs", "candidate_pairs", "pairs_from_judgments", "pairs_from_revisions"]


def pairs_from_revisions(
    revisions: Iterable[Revision],
    prompts: Mapping[str, PromptRecord],
    skipped: Counter[str],
    responses: Mapping[str, Response] | None = None,
) -> Iterator[PreferencePair]:
    """One pair per revision whose final text differs from the original, made as they are read; a
    tool-using original (read from `responses`) gives both answers its trace: only the final answer was
    revised."""
    for revision in revisions:
        chosen, rejected = revision.final.strip(), revision.original.strip()
        if not chosen or chosen == rejected:
            skipped["revision unchanged or empty"] += 1
            continue
        original = responses.get(revision.response_id) if responses is not None else None
        trace = original.trace if original is not None else ()
        yield PreferencePair(
            id=stable_id("pair", source_id=revision.id, chosen=chosen, rejected=rejected),
            prompt_id=revision.prompt_id,
            prompt=prompts[revision.prompt_id].messages,
            chosen=chosen,
            rejected=rejected,
            score=1.0,
            source="revision",
            source_id=revision.id,
            principle_ids=tuple(r.principle_id for r in revision.rounds),
            provenance=revision.provenance,
            chosen_trace=trace,
            rejected_trace=trace,
            tools=prompts[revision.prompt_id].tools,
        )


def pairs_from_judgments(
    judgments: Iterable[Judgment],
    responses: Mapping[str, Response],
    prompts: Mapping[str, PromptRecord],
    config: JudgeConfig,
    skipped: Counter[str],
) -> Iterator[PreferencePair]:
    """One candidate pair per readable, decisive pairwise judgment (revision validations make none), made
    as they are read.

    Whether a candidate is exported is the filters' call (`pipeline.quality`): pairs whose two orders
    disagree or whose label is unsure are made here and dropped there, so they stay on record. A tie
    (exactly 0.5, or orders that disagree under `inconsistent: tie`) states no preference: no pair.
    """
    for judgment in judgments:
        if judgment.kind == "revision":
            continue
        if judgment.kind == "probe":  # a universal probe measures the judge; its spoiled answer never trains
            skipped["probe (never exported)"] += 1
            continue
        if judgment.p_a is None:
            skipped[f"judge {judgment.status}"] += 1
            continue
        if judgment.consistent is False and config.inconsistent == "tie":
            skipped["judge tie (orders disagree)"] += 1
            continue
        a, b = responses[judgment.response_a_id], responses[judgment.response_b_id]
        if a.text.strip() == b.text.strip() and a.trace == b.trace:
            skipped["identical responses"] += 1
            continue
        if judgment.p_a == 0.5:
            skipped["judge tie"] += 1
            continue
        chosen, rejected, score = (a, b, judgment.p_a) if judgment.p_a > 0.5 else (b, a, 1.0 - judgment.p_a)
        yield PreferencePair(
            id=stable_id("pair", source_id=judgment.id, chosen=chosen.id, rejected=rejected.id),
            prompt_id=judgment.prompt_id,
            prompt=prompts[judgment.prompt_id].messages,
            chosen=chosen.text,
            rejected=rejected.text,
            score=score,
            source="check" if judgment.source == "check" else "judge",
            source_id=judgment.id,
            principle_ids=judgment.principle_ids,
            consistent=judgment.consistent,
            provenance=judgment.provenance,
            chosen_trace=chosen.trace,
            rejected_trace=rejected.trace,
            tools=prompts[judgment.prompt_id].tools,
            rubric_items=judgment.rubric_items,
        )


def candidate_pairs(
    config: RunConfig,
    run: RunDir,
    prompts: Sequence[PromptRecord],
    constitution: Constitution,
    skipped: Counter[str],
) -> Iterator[PreferencePair]:
    """Pairs from the current revisions and judgments of these prompts, made one at a time from the
    stage files (a response is read back when its judgment makes a pair); `skipped` counts why not."""
    layout, templates = run.layout, config.template_set()
    by_id = {p.id: p for p in prompts}
    responses = run.stage(layout.RESPONSES, Response)
    yield from pairs_from_revisions(
        iter_current(run, layout.REVISIONS, Revision, prompts, constitution, templates=templates),
        by_id,
        skipped,
        responses if any(p.tools for p in prompts) else None,
    )
    judgments = iter_current(run, layout.JUDGMENTS, Judgment, prompts, constitution, templates=templates)
    yield from pairs_from_judgments(judgments, responses, by_id, config.judge, skipped)


def build_pairs(
    config: RunConfig, run: RunDir, prompts: Sequence[PromptRecord], constitution: Constitution
) -> tuple[list[PreferencePair], Counter[str]]:
    """Pairs from the current revisions and judgments of these prompts; appended to `pairs.jsonl`."""
    skipped: Counter[str] = Counter()
    pairs = list(candidate_pairs(config, run, prompts, constitution, skipped))
    run.stage(run.layout.PAIRS, PreferencePair).append(pairs)
    return pairs, skipped
