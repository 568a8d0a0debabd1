"""Preference pairs from revisions (final revision ≻ original) and from judgments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from rlaif.config import JudgeConfig, RunConfig
from rlaif.pipeline.current import current
from rlaif.records import Constitution, Judgment, PreferencePair, PromptRecord, Response, Revision, stable_id
from rlaif.store import RunDir

__all__ = ["build_pairs", "pairs_from_judgments", "pairs_from_revisions"]


def pairs_from_revisions(
    revisions: Iterable[Revision], prompts: dict[str, PromptRecord], skipped: Counter[str]
) -> list[PreferencePair]:
    """One pair per revision whose final text differs from the original."""
    pairs = []
    for revision in revisions:
        chosen, rejected = revision.final.strip(), revision.original.strip()
        if not chosen or chosen == rejected:
            skipped["revision unchanged or empty"] += 1
            continue
        pairs.append(
            PreferencePair(
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
            )
        )
    return pairs


def pairs_from_judgments(
    judgments: Iterable[Judgment],
    responses: dict[str, Response],
    prompts: dict[str, PromptRecord],
    config: JudgeConfig,
    skipped: Counter[str],
) -> list[PreferencePair]:
    """One candidate pair per readable, decisive pairwise judgment (revision validations make none).

    Whether a candidate is exported is the filters' call (`pipeline.quality`): pairs whose two orders
    disagree or whose label is unsure are made here and dropped there, so they stay on record. A tie
    (exactly 0.5, or orders that disagree under `inconsistent: tie`) states no preference: no pair.
    """
    pairs = []
    for judgment in judgments:
        if judgment.kind == "revision":
            continue
        if judgment.p_a is None:
            skipped[f"judge {judgment.status}"] += 1
            continue
        if judgment.consistent is False and config.inconsistent == "tie":
            skipped["judge tie (orders disagree)"] += 1
            continue
        a, b = responses[judgment.response_a_id], responses[judgment.response_b_id]
        if a.text.strip() == b.text.strip():
            skipped["identical responses"] += 1
            continue
        if judgment.p_a == 0.5:
            skipped["judge tie"] += 1
            continue
        chosen, rejected, score = (a, b, judgment.p_a) if judgment.p_a > 0.5 else (b, a, 1.0 - judgment.p_a)
        pairs.append(
            PreferencePair(
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
            )
        )
    return pairs


def build_pairs(
    config: RunConfig, run: RunDir, prompts: Sequence[PromptRecord], constitution: Constitution
) -> tuple[list[PreferencePair], Counter[str]]:
    """Pairs from the current revisions and judgments of these prompts; appended to `pairs.jsonl`."""
    layout = run.layout
    by_id = {p.id: p for p in prompts}
    skipped: Counter[str] = Counter()
    revisions = current(run, layout.REVISIONS, Revision, prompts, constitution)
    judgments = current(run, layout.JUDGMENTS, Judgment, prompts, constitution)
    responses = {r.id: r for r in run.stage(layout.RESPONSES, Response)}
    pairs = pairs_from_revisions(revisions, by_id, skipped)
    pairs += pairs_from_judgments(judgments, responses, by_id, config.judge, skipped)
    run.stage(layout.PAIRS, PreferencePair).append(pairs)
    return pairs, skipped
