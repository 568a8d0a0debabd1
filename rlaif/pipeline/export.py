"""Export: TRL-ready conversational rows as JSONL and as a `datasets` dataset, with a card.

Preference rows follow TRL's conversational format with an explicit prompt: `prompt` is a message
list, `chosen` and `rejected` are one-message assistant lists. Score and provenance ride along as
extra columns. SFT rows are `messages` lists ending with the final revision.

Human review overrides the AI label: a pair people judged the other way round is exported swapped,
a pair they called a tie or flagged is dropped, and `human_reviewed` / `human_verdict` say which
rows a person checked (see `rlaif.review.session.consensus` for several reviewers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif.records import Constitution, PreferencePair, PromptRecord, ReviewDecision, Revision
from rlaif.reports import RunSummary, percent
from rlaif.store import write_atomic

__all__ = ["export_pairs", "export_sft", "pair_row", "sft_row", "write_card"]


def pair_row(pair: PreferencePair, *, human_verdict: str | None = None, reviewers: int = 0) -> dict[str, Any]:
    """One TRL preference row (conversational, explicit prompt) with provenance columns.

    `human_verdict="rejected"` swaps chosen and rejected (and `score` becomes the AI's probability
    for the new chosen answer); the caller drops ties and flags.
    """
    swap = human_verdict == "rejected"
    chosen, rejected = (pair.rejected, pair.chosen) if swap else (pair.chosen, pair.rejected)
    return {
        "prompt": [m.model_dump() for m in pair.prompt],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "score": 1.0 - pair.score if swap else pair.score,
        "source": pair.source,
        "pair_id": pair.id,
        "prompt_id": pair.prompt_id,
        "source_id": pair.source_id,
        "principle_ids": list(pair.principle_ids),
        "consistent": pair.consistent,
        "model": pair.provenance.model,
        "template_hash": pair.provenance.template_hash,
        "constitution_hash": pair.provenance.constitution_hash or "",
        "human_reviewed": human_verdict is not None,
        "human_verdict": human_verdict,
        "human_reviewers": reviewers,
    }


def sft_row(revision: Revision, prompt: PromptRecord) -> dict[str, Any]:
    """One SFT row: the conversation and the final revision as the assistant's turn."""
    messages = [m.model_dump() for m in prompt.messages]
    messages.append({"role": "assistant", "content": revision.final})
    return {
        "messages": messages,
        "prompt_id": prompt.id,
        "revision_id": revision.id,
        "rounds": len(revision.rounds),
    }


def _write(rows: Sequence[dict[str, Any]], folder: Path, name: str) -> Path:
    from datasets import Dataset

    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    if rows:
        Dataset.from_list(list(rows)).save_to_disk(str(folder / name))
    return folder / name


def export_pairs(
    pairs: Sequence[PreferencePair],
    folder: Path,
    *,
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
) -> Path:
    """Write `pairs.jsonl` and the `pairs/` dataset; returns the dataset folder.

    `decisions` (pair id → reviewer → standing decision, `rlaif.review.session.current_decisions`) override
    the AI's labels: swapped when people preferred the rejected answer, dropped on tie or flag.
    """
    from rlaif.review.session import consensus

    rows = []
    for pair in sorted(pairs, key=lambda p: p.id):
        by_reviewer = (decisions or {}).get(pair.id) or {}
        verdict = consensus(by_reviewer.values()) if by_reviewer else None
        if verdict in ("tie", "flag"):
            continue
        rows.append(pair_row(pair, human_verdict=verdict, reviewers=len(by_reviewer)))
    return _write(rows, folder, "pairs")


def export_sft(revisions: Sequence[Revision], prompts: dict[str, PromptRecord], folder: Path) -> Path:
    """Write `sft.jsonl` and the `sft/` dataset; returns the dataset folder."""
    rows = [sft_row(r, prompts[r.prompt_id]) for r in sorted(revisions, key=lambda r: r.id)]
    return _write(rows, folder, "sft")


def write_card(folder: Path, *, constitution: Constitution, summary: RunSummary) -> Path:
    """A dataset card (README.md) stating constitution, models, templates, counts and judge stats."""
    judge = summary.judge
    lines = [
        "---",
        "tags: [rlaif, constitutional-ai, synthetic, preference]",
        "---",
        f"# Synthetic preference data: {constitution.name}",
        "",
        "Made by [rlaif](https://pypi.org/project/rlaif/) from a constitution, with an AI judge and",
        "critique-and-revise loops. Rows follow TRL's conversational format with an explicit prompt.",
        "",
        "## Constitution",
        f"- name: {constitution.name}, version {constitution.version}, hash `{constitution.hash}`",
        f"- principles: {len(constitution.principles)} ({', '.join(p.id for p in constitution.principles)})",
        "",
        "## Models and templates",
        f"- policy model: `{summary.model}`",
        f"- judge model: `{summary.judge_model}`",
        *[f"- template `{name}`: `{digest}`" for name, digest in sorted(summary.templates.items())],
        "",
        "## Counts",
        *[f"- {name}: {count}" for name, count in summary.counts.model_dump().items() if count is not None],
        *[f"- skipped ({reason}): {count}" for reason, count in summary.skipped.items()],
        "",
        "## Judge",
        f"- judgments: {judge.judged}, orders parsed: {judge.parsed_orders}, "
        f"unparsed: {judge.unparsed_orders}",
        f"- order consistency: {percent(judge.consistency_rate)}, "
        f"same-position rate: {percent(judge.same_position_rate)}",
        "",
        "## Files",
        "- `pairs.jsonl`, `pairs/` (datasets `load_from_disk`): preference pairs",
        "- `sft.jsonl`, `sft/`: final revisions for supervised fine-tuning",
        "",
    ]
    path = folder / "README.md"
    write_atomic(path, "\n".join(lines))
    return path
