"""Export: TRL-ready conversational rows as JSONL and as a `datasets` dataset, with a card.

Preference rows follow TRL's conversational format with an explicit prompt: `prompt` is a message
list, `chosen` and `rejected` are one-message assistant lists. Score and provenance ride along as
extra columns. SFT rows are `messages` lists ending with the final revision.

Human review overrides the AI label: a pair people judged the other way round is exported swapped,
a pair they called a tie or flagged is dropped, and `human_reviewed` / `human_verdict` say which
rows a person checked (see `rlaif.review.session.consensus` for several reviewers). `p_chosen` is the
label trainers use: the source's P(chosen is better), or 1.0 where a person decided.

Every dataset folder is written beside the old one and swapped in, and an empty export is an empty
dataset, so a trainer never reads rows an earlier export left behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlaif.records import Constitution, PreferencePair, PromptRecord, ReviewDecision, Revision
from rlaif.reports import Rate, RunSummary, percent
from rlaif.store import write_atomic

if TYPE_CHECKING:
    from rlaif.pipeline.quality import Dropped

__all__ = [
    "dropped_row",
    "export_pairs",
    "export_sft",
    "exported_sources",
    "iter_pair_rows",
    "pair_row",
    "pair_rows",
    "sft_row",
    "write_card",
    "write_dropped",
    "write_jsonl",
    "write_pairs",
    "write_sft",
]

_TYPES = {
    "messages": "turns", "prompt": "turns", "chosen": "turns", "rejected": "turns",
    "principle_ids": "strings", "flags": "strings",
    "score": "float64", "p_chosen": "float64", "consistent": "bool", "human_reviewed": "bool",
    "human_reviewers": "int64", "rounds": "int64",
}  # fmt: skip
PAIR_COLUMNS = (
    "prompt", "chosen", "rejected", "score", "p_chosen", "source", "pair_id", "prompt_id", "source_id",
    "principle_ids", "consistent", "model", "template_hash", "constitution_hash", "human_reviewed",
    "human_verdict", "human_reviewers", "flags",
)  # fmt: skip
SFT_COLUMNS = ("messages", "prompt_id", "revision_id", "rounds")


def _features(columns: Sequence[str]) -> Any:
    """The schema of an export, so an empty one still loads with its columns."""
    from datasets import Features, List, Value

    turns = List({"role": Value("string"), "content": Value("string")})
    kinds = {"turns": turns, "strings": List(Value("string"))}
    return Features(
        {c: kinds.get(_TYPES.get(c, "string")) or Value(_TYPES.get(c, "string")) for c in columns}
    )


def pair_row(
    pair: PreferencePair, *, human_verdict: str | None = None, reviewers: int = 0, flags: Sequence[str] = ()
) -> dict[str, Any]:
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
        "p_chosen": 1.0 if human_verdict in ("chosen", "rejected") else pair.score,
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
        "flags": list(flags),
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


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON lines, streamed to a file beside `path` and renamed over it (readers see the
    old file or the new one, never a mix); returns how many."""
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


def _write(rows: Iterable[dict[str, Any]], folder: Path, name: str, columns: Sequence[str]) -> Path:
    """`NAME.jsonl` and the `NAME/` dataset (an empty one when there are no rows), swapped in whole.

    The rows are streamed to the JSON lines file and the dataset is built from that file (Arrow reads it
    in blocks), so an export of a million rows is never a million dicts in memory.
    """
    from datasets import Dataset

    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / f"{name}.jsonl"
    count = write_jsonl(jsonl, rows)
    target, fresh, old = folder / name, folder / f".{name}.new", folder / f".{name}.old"
    scratch = folder / f".{name}.cache"
    for leftover in (fresh, old, scratch):
        shutil.rmtree(leftover, ignore_errors=True)
    if count:
        try:
            dataset = Dataset.from_json(str(jsonl), features=_features(columns), cache_dir=str(scratch))
            dataset.save_to_disk(str(fresh))
            del dataset
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    else:  # datasets cannot shard zero rows by itself
        empty = Dataset.from_dict({c: [] for c in columns}, features=_features(columns))
        empty.save_to_disk(str(fresh), num_shards=1)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def pair_rows(
    pairs: Iterable[PreferencePair],
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
    flags: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """The export's preference rows, by pair id: people's decisions applied (ties and flags left out);
    `flags` maps a pair's source id to what the checks flagged on it."""
    return list(iter_pair_rows(sorted(pairs, key=lambda p: p.id), decisions, flags))


def iter_pair_rows(
    pairs: Iterable[PreferencePair],
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
    flags: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[dict[str, Any]]:
    """`pair_rows` one at a time, in the order given."""
    from rlaif.review.session import consensus

    for pair in pairs:
        by_reviewer = (decisions or {}).get(pair.id) or {}
        verdict = consensus(by_reviewer.values()) if by_reviewer else None
        if verdict in ("tie", "flag"):
            continue
        found = (flags or {}).get(pair.source_id, ())
        yield pair_row(pair, human_verdict=verdict, reviewers=len(by_reviewer), flags=found)


def dropped_row(pair: PreferencePair, reason: str, detail: str) -> dict[str, Any]:
    """A line of `dropped.jsonl`: the pair, why the filters left it out, and the measured value."""
    return {
        "pair_id": pair.id, "source": pair.source, "reason": reason, "detail": detail, "score": pair.score,
        "prompt_id": pair.prompt_id, "principle_ids": list(pair.principle_ids),
    }  # fmt: skip


def write_dropped(folder: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """`dropped.jsonl`: each dropped pair with its reason (`dropped_row`)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "dropped.jsonl", rows)
    return folder / "dropped.jsonl"


def write_pairs(rows: Iterable[dict[str, Any]], folder: Path) -> Path:
    """`pairs.jsonl` and the `pairs/` dataset from preference rows (`pair_row`); returns the folder."""
    return _write(rows, folder, "pairs", PAIR_COLUMNS)


def write_sft(rows: Iterable[dict[str, Any]], folder: Path) -> Path:
    """`sft.jsonl` and the `sft/` dataset from SFT rows (`sft_row`); returns the folder."""
    return _write(rows, folder, "sft", SFT_COLUMNS)


def export_pairs(
    pairs: Sequence[PreferencePair],
    folder: Path,
    *,
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
    dropped: Sequence[Dropped] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write `pairs.jsonl` and the `pairs/` dataset of the kept pairs, and `dropped.jsonl` (each dropped
    pair with its reason); returns the dataset folder.

    `decisions` (pair id → reviewer → standing decision, `rlaif.review.session.current_decisions`) override
    the AI's labels: swapped when people preferred the rejected answer, dropped on tie or flag.
    """
    ordered = sorted(dropped, key=lambda d: d.pair.id)
    write_dropped(folder, (dropped_row(d.pair, d.reason, d.detail) for d in ordered))
    return write_pairs(pair_rows(pairs, decisions, flags), folder)


def exported_sources(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Exported rows by source."""
    return dict(Counter(row["source"] for row in rows))


def export_sft(revisions: Sequence[Revision], prompts: Mapping[str, PromptRecord], folder: Path) -> Path:
    """Write `sft.jsonl` and the `sft/` dataset; returns the dataset folder."""
    rows = (sft_row(r, prompts[r.prompt_id]) for r in sorted(revisions, key=lambda r: r.id))
    return write_sft(rows, folder)


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
        f"- pairs decided by the principles' checks: {judge.check_decided}; the LLM judge's agreement with "
        f"them where both decided: {_agreement(judge.check_agreement)}",
        "",
        *_quality_lines(summary),
        "## Files",
        "- `pairs.jsonl`, `pairs/` (datasets `load_from_disk`): preference pairs that passed the filters",
        "- `dropped.jsonl`: the candidate pairs the filters left out, each with its reason",
        "- `sft.jsonl`, `sft/`: final revisions for supervised fine-tuning",
        "",
    ]
    path = folder / "README.md"
    write_atomic(path, "\n".join(lines))
    return path


def _quality_lines(summary: RunSummary) -> list[str]:
    quality = summary.quality
    if quality is None:
        return []
    empty = not sum(quality.exported.values())
    lines = [
        "## Quality",
        *(["**This export is empty: no pair passed the filters.**", ""] if empty else []),
        f"- candidate pairs by source: {_counts(quality.candidates)}",
        f"- kept by the filters: {_counts(quality.kept)}",
        f"- exported (after human review): {_counts(quality.exported)}",
        *[f"- dropped ({reason}): {count}" for reason, count in quality.dropped.items()],
        *[f"- flagged, kept ({flag}): {count}" for flag, count in quality.flagged.items()],
        f"- trained on by default: {', '.join(quality.sources)}",
        "",
        "| gate | value | limit | result |",
        "| --- | ---: | ---: | --- |",
    ]
    for gate in quality.gates:
        shown = (lambda v: "n/a" if v is None else str(int(v))) if gate.name == "pairs" else percent
        limit = "off" if gate.threshold is None else ("≥ " if gate.at_least else "≤ ") + shown(gate.threshold)
        result = {True: "passed", False: "**FAILED**", None: f"does not apply ({gate.note})"}[gate.passed]
        lines.append(f"| {gate.name} | {shown(gate.value)} | {limit} | {result} |")
    lines.append("")
    lines += [f"- warning: {w}" for w in quality.warnings]
    if quality.forced:
        lines.append("- **a gate failed and training was forced (`--force`)**")
    return [*lines, ""]


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{source} {count}" for source, count in sorted(counts.items())) or "none"


def _agreement(rate: Rate | None) -> str:
    if rate is None or rate.value is None:
        return "n/a (no probe: judge.checks is not probe, or no check decided a pair)"
    assert rate.ci95 is not None
    return f"{percent(rate.value)} of {rate.n} (95% CI {percent(rate.ci95[0])}-{percent(rate.ci95[1])})"
