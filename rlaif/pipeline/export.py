"""Export: TRL-ready conversational rows as JSONL, as `DatasetDict` folders and as Parquet files.

Preference rows follow TRL's conversational format with an explicit prompt: `prompt` is a message
list, `chosen` and `rejected` are one-message assistant lists. Score and provenance ride along as
extra columns. SFT rows are `messages` lists ending with the final revision.

Human review overrides the AI label: a pair people judged the other way round is exported swapped,
a pair they called a tie or flagged is dropped, and `human_reviewed` / `human_verdict` say which
rows a person checked (see `rlaif.review.session.consensus` for several reviewers). `p_chosen` is the
label trainers use: the source's P(chosen is better), or 1.0 where a person decided; for judge pairs it is
calibrated when the run's calibration applies (`judge.calibration`), and `p_chosen_raw` keeps the label
without calibration beside it.

Each dataset is a `DatasetDict`: a `train` split, and with `export.test_fraction` a `test` split holding
whole prompts (`held_out_prompts`). Every folder is written beside the old one and swapped in, and an
empty export is an empty dataset, so a trainer never reads rows an earlier export left behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlaif.records import PreferencePair, PromptRecord, ReviewDecision, Revision

if TYPE_CHECKING:
    from rlaif.pipeline.quality import Dropped

__all__ = [
    "dropped_row",
    "export_pairs",
    "export_sft",
    "exported_sources",
    "held_out_prompts",
    "iter_pair_rows",
    "pair_row",
    "pair_rows",
    "sft_row",
    "write_dropped",
    "write_jsonl",
    "write_pairs",
    "write_sft",
]

_TYPES = {
    "messages": "turns", "prompt": "turns", "chosen": "turns", "rejected": "turns",
    "principle_ids": "strings", "flags": "strings",
    "score": "float64", "p_chosen": "float64", "p_chosen_raw": "float64", "consistent": "bool",
    "human_reviewed": "bool", "human_reviewers": "int64", "rounds": "int64",
}  # fmt: skip
PAIR_COLUMNS = (
    "prompt", "chosen", "rejected", "score", "p_chosen", "p_chosen_raw", "source", "pair_id", "prompt_id",
    "source_id", "principle_ids", "consistent", "model", "template_hash", "constitution_hash",
    "human_reviewed", "human_verdict", "human_reviewers", "flags",
)  # fmt: skip
SFT_COLUMNS = ("messages", "prompt_id", "revision_id", "rounds")
SPLITS = ("train", "test")


def _features(columns: Sequence[str], *, tools: bool = False) -> Any:
    """The schema of an export, so an empty one still loads with its columns; with `tools`, turns may
    carry OpenAI tool calls (arguments as JSON text) and tool-call ids."""
    from datasets import Features, List, Value

    turn: dict[str, Any] = {"role": Value("string"), "content": Value("string")}
    if tools:
        function = {"name": Value("string"), "arguments": Value("string")}
        call = {"id": Value("string"), "type": Value("string"), "function": function}
        turn |= {"tool_calls": List(call), "tool_call_id": Value("string"), "name": Value("string")}
    turns = List(turn)
    kinds = {"turns": turns, "strings": List(Value("string"))}
    return Features(
        {c: kinds.get(_TYPES.get(c, "string")) or Value(_TYPES.get(c, "string")) for c in columns}
    )


def pair_row(
    pair: PreferencePair,
    *,
    human_verdict: str | None = None,
    reviewers: int = 0,
    flags: Sequence[str] = (),
    calibrate: Callable[[float], float] | None = None,
) -> dict[str, Any]:
    """One TRL preference row (conversational, explicit prompt) with provenance columns.

    `human_verdict="rejected"` swaps chosen and rejected (and `score` becomes the AI's probability
    for the new chosen answer); the caller drops ties and flags. `calibrate` maps a judge pair's
    P(chosen) to the calibrated `p_chosen` (`p_chosen_raw` keeps the label it replaces).
    """
    swap = human_verdict == "rejected"
    chosen, rejected = (pair.rejected, pair.chosen) if swap else (pair.chosen, pair.rejected)
    decided = human_verdict in ("chosen", "rejected")
    raw = 1.0 if decided else pair.score
    calibrated = calibrate(raw) if calibrate is not None and pair.source == "judge" and not decided else raw
    trace_c, trace_r = (
        (pair.rejected_trace, pair.chosen_trace) if swap else (pair.chosen_trace, pair.rejected_trace)
    )
    row = {
        "prompt": [m.model_dump(mode="json") for m in pair.prompt],
        "chosen": [*(m.model_dump(mode="json") for m in trace_c), {"role": "assistant", "content": chosen}],
        "rejected": [
            *(m.model_dump(mode="json") for m in trace_r),
            {"role": "assistant", "content": rejected},
        ],
        "score": 1.0 - pair.score if swap else pair.score,
        "p_chosen": calibrated,
        "p_chosen_raw": raw,
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
    if pair.is_trajectory:  # TRL's `tools` column: JSON text, which its trainers parse
        row["tools"] = json.dumps([t.model_dump(mode="json") for t in pair.tools], ensure_ascii=False)
    return row


def sft_row(revision: Revision, prompt: PromptRecord) -> dict[str, Any]:
    """One SFT row: the conversation and the final revision as the assistant's turn."""
    messages = [m.model_dump(mode="json") for m in prompt.messages]
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


def held_out_prompts(prompt_ids: Iterable[str], fraction: float, *, seed: int) -> frozenset[str]:
    """The prompts whose rows form the `test` split: `ceil(fraction * prompts)` of them, at least one but
    never all (none when `fraction` is 0 or there is a single prompt).

    Prompts are ranked by a seeded hash of their id, not drawn in order: the same prompts and seed give
    the same split whatever the order of the rows, and a prompt set that grows moves only the prompts
    near the cut.
    """
    ranked = sorted(set(prompt_ids), key=lambda pid: hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest())
    if fraction <= 0 or len(ranked) < 2:
        return frozenset()
    count = min(max(1, math.ceil(fraction * len(ranked))), len(ranked) - 1)
    return frozenset(ranked[:count])


def _write(
    rows: Iterable[dict[str, Any]],
    folder: Path,
    name: str,
    columns: Sequence[str],
    held: Collection[str] | None = None,
    tools: bool = False,
    *,
    tools_column: bool = True,
) -> Path:
    """`NAME.jsonl` (every row), the `NAME/` `DatasetDict` (`save_to_disk`) and its Parquet files
    `data/NAME/{split}-00000-of-00001.parquet`, each swapped in whole; returns the `NAME/` folder.

    Rows whose prompt is in `held` go to the `test` split, the others to `train`; `held=None` writes
    `train` only. The rows are streamed to JSON lines files and each split is built from its file (Arrow
    reads it in blocks), so an export of a million rows is never a million dicts in memory. An empty split
    is an empty dataset with the export's columns.
    """
    from datasets import Dataset, DatasetDict

    folder.mkdir(parents=True, exist_ok=True)
    splits = ("train",) if held is None else SPLITS
    parts = {split: folder / f".{name}.{split}.jsonl" for split in splits}
    target, fresh, old = folder / name, folder / f".{name}.new", folder / f".{name}.old"
    parquet, parquet_fresh = folder / "data" / name, folder / "data" / f".{name}.new"
    parquet_old, scratch = folder / "data" / f".{name}.old", folder / f".{name}.cache"
    for leftover in (fresh, old, scratch, parquet_fresh, parquet_old):
        shutil.rmtree(leftover, ignore_errors=True)
    counts = dict.fromkeys(splits, 0)
    handles = {split: open(path, "w", encoding="utf-8") for split, path in parts.items()}

    def sorted_out() -> Iterator[dict[str, Any]]:
        for row in rows:
            if tools and tools_column:
                row.setdefault("tools", "[]")
            split = "test" if held is not None and row["prompt_id"] in held else "train"
            handles[split].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[split] += 1
            yield row

    try:
        write_jsonl(folder / f"{name}.jsonl", sorted_out())
    finally:
        for handle in handles.values():
            handle.close()
    features = _features(columns, tools=tools)
    try:
        built: dict[str, Any] = {}
        for split, part in parts.items():
            if counts[split]:
                built[split] = Dataset.from_json(str(part), features=features, cache_dir=str(scratch))
            else:  # datasets cannot shard zero rows by itself
                built[split] = Dataset.from_dict({c: [] for c in columns}, features=features)
        dataset = DatasetDict(built)
        dataset.save_to_disk(str(fresh), num_shards={s: 1 for s in splits if not counts[s]})
        parquet_fresh.mkdir(parents=True)
        for split, rows_of_split in dataset.items():
            rows_of_split.to_parquet(str(parquet_fresh / f"{split}-00000-of-00001.parquet"))
        del dataset, built
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for part in parts.values():
            part.unlink(missing_ok=True)
    _swap(fresh, target, old)
    _swap(parquet_fresh, parquet, parquet_old)
    return target


def _swap(fresh: Path, target: Path, old: Path) -> None:
    """Put the folder `fresh` in the place of `target` (readers see the old one or the new one)."""
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)


def pair_rows(
    pairs: Iterable[PreferencePair],
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
    flags: Mapping[str, Sequence[str]] | None = None,
    calibrate: Callable[[float], float] | None = None,
) -> list[dict[str, Any]]:
    """The export's preference rows, by pair id: people's decisions applied (ties and flags left out);
    `flags` maps a pair's source id to what the checks flagged on it; `calibrate` as in `pair_row`."""
    return list(iter_pair_rows(sorted(pairs, key=lambda p: p.id), decisions, flags, calibrate))


def iter_pair_rows(
    pairs: Iterable[PreferencePair],
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
    flags: Mapping[str, Sequence[str]] | None = None,
    calibrate: Callable[[float], float] | None = None,
) -> Iterator[dict[str, Any]]:
    """`pair_rows` one at a time, in the order given."""
    from rlaif.review.session import consensus

    for pair in pairs:
        by_reviewer = (decisions or {}).get(pair.id) or {}
        verdict = consensus(by_reviewer.values()) if by_reviewer else None
        if verdict in ("tie", "flag"):
            continue
        found = (flags or {}).get(pair.source_id, ())
        yield pair_row(
            pair, human_verdict=verdict, reviewers=len(by_reviewer), flags=found, calibrate=calibrate
        )


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


def write_pairs(
    rows: Iterable[dict[str, Any]], folder: Path, held: Collection[str] | None = None, *, tools: bool = False
) -> Path:
    """`pairs.jsonl`, the `pairs/` `DatasetDict` and `data/pairs/*.parquet` from preference rows
    (`pair_row`), the pairs of `held` prompts as the test split; returns the `pairs/` folder.

    `tools` (a run whose prompts offer tools): TRL's conversational format with tools, i.e. `chosen` and
    `rejected` hold each answer's tool-call and tool turns before its final reply, and a `tools` column
    holds the definitions as JSON text."""
    columns = (*PAIR_COLUMNS, "tools") if tools else PAIR_COLUMNS
    return _write(rows, folder, "pairs", columns, held, tools)


def write_sft(
    rows: Iterable[dict[str, Any]], folder: Path, held: Collection[str] | None = None, *, tools: bool = False
) -> Path:
    """`sft.jsonl`, the `sft/` `DatasetDict` and `data/sft/*.parquet` from SFT rows (`sft_row`), the rows
    of `held` prompts as the test split; returns the `sft/` folder. `tools`: turns may hold tool calls."""
    return _write(rows, folder, "sft", SFT_COLUMNS, held, tools, tools_column=False)


def export_pairs(
    pairs: Sequence[PreferencePair],
    folder: Path,
    *,
    decisions: Mapping[str, Mapping[str, ReviewDecision]] | None = None,
    dropped: Sequence[Dropped] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> Path:
    """Write `pairs.jsonl` and the `pairs/` dataset of the kept pairs, and `dropped.jsonl` (each dropped
    pair with its reason); returns the dataset folder.

    `decisions` (pair id → reviewer → standing decision, `rlaif.review.session.current_decisions`) override
    the AI's labels: swapped when people preferred the rejected answer, dropped on tie or flag.
    `test_fraction` of the pairs' prompts (`held_out_prompts`) go to the test split.
    """
    ordered = sorted(dropped, key=lambda d: d.pair.id)
    write_dropped(folder, (dropped_row(d.pair, d.reason, d.detail) for d in ordered))
    held = held_out_prompts((p.prompt_id for p in pairs), test_fraction, seed=seed) if test_fraction else None
    tools = any(p.is_trajectory for p in pairs)
    return write_pairs(pair_rows(pairs, decisions, flags), folder, held, tools=tools)


def exported_sources(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Exported rows by source."""
    return dict(Counter(row["source"] for row in rows))


def export_sft(
    revisions: Sequence[Revision],
    prompts: Mapping[str, PromptRecord],
    folder: Path,
    held: Collection[str] | None = None,
) -> Path:
    """Write `sft.jsonl` and the `sft/` dataset (the rows of `held` prompts as its test split); returns
    the dataset folder."""
    rows = (sft_row(r, prompts[r.prompt_id]) for r in sorted(revisions, key=lambda r: r.id))
    return write_sft(rows, folder, held)
