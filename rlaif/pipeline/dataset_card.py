"""The export's dataset card (README.md): Hub metadata, what made the data, its quality, examples.

The YAML header carries the Hub's standard fields and one `configs` entry per exported dataset naming its
Parquet files by split, so the folder itself loads with `load_dataset(folder, "pairs")`, and the Hub shows
the same splits after a push.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlaif._version import DISTRIBUTION
from rlaif.config import ExportConfig
from rlaif.evaluate.bias import describe_share
from rlaif.pipeline.export import SPLITS
from rlaif.pipeline.reports import RunSummary
from rlaif.records import Constitution
from rlaif.reports import Rate, percent
from rlaif.store import write_atomic

__all__ = ["split_counts", "write_card"]


def write_card(
    folder: Path, *, constitution: Constitution, summary: RunSummary, export: ExportConfig | None = None
) -> Path:
    """A dataset card (README.md): Hub metadata (license, language, task, size, tags, and `configs` naming
    the Parquet files, so `load_dataset(folder, "pairs")` and the Hub read the splits), then constitution,
    models, templates, counts, judge stats, quality and a few example rows."""
    export = export or ExportConfig()
    judge = summary.judge
    lines = [
        "---",
        _metadata(folder, constitution, export).rstrip("\n"),
        "---",
        f"# Synthetic preference data: {constitution.name}",
        "",
        f"Made by [rlaif](https://pypi.org/project/{DISTRIBUTION}/) from a constitution, with an AI judge",
        "and critique-and-revise loops. Rows follow TRL's conversational format with an explicit prompt.",
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
        *[f"- {name} split {split}: {count} rows" for name, split, count in split_counts(folder)],
        "",
        "## Judge",
        f"- judgments: {judge.judged}, orders parsed: {judge.parsed_orders}, "
        f"unparsed: {judge.unparsed_orders}",
        f"- order consistency: {percent(judge.consistency_rate)}, "
        f"same-position rate: {percent(judge.same_position_rate)}",
        f"- pairs decided by the principles' checks: {judge.check_decided}; the LLM judge's agreement with "
        f"them where both decided: {_agreement(judge.check_agreement)}",
        *_calibration_lines(summary),
        *_bias_lines(summary),
        *_probe_lines(summary),
        "",
        *_quality_lines(summary),
        *_examples(folder),
        "## Files",
        "- `data/pairs/{train,test}-*.parquet`, `data/sft/...`: the splits as Parquet (the `configs` above)",
        "- `pairs/`, `sft/`: the same as `DatasetDict` folders (`datasets.load_from_disk`)",
        "- `pairs.jsonl`, `sft.jsonl`: every row of both splits, as JSON lines",
        "- `dropped.jsonl`: the candidate pairs the filters left out, each with its reason",
        (
            f"- the test split holds the rows of {percent(export.test_fraction)} of the prompts (seeded; "
            "a prompt's rows are all on one side)"
            if export.test_fraction
            else "- every row is in the train split (`export.test_fraction` is 0)"
        ),
        "",
        "## Load it",
        "```python",
        "from datasets import load_dataset",
        "",
        'pairs = load_dataset("THIS_FOLDER_OR_HUB_REPO", "pairs")  # train/test from the Parquet files',
        'sft = load_dataset("THIS_FOLDER_OR_HUB_REPO", "sft")',
        "```",
        "Loaded this way, `filter` and `map` write their cache files to the `datasets` cache, never into",
        "this folder. `load_from_disk` on `pairs/` memory-maps the files here, and a `filter` or `map` then",
        "writes `cache-*.arrow` beside them: load with `keep_in_memory=True` to keep the folder clean.",
        "",
    ]
    path = folder / "README.md"
    write_atomic(path, "\n".join(lines))
    return path


CARD_TAGS = ("rlaif", "constitutional-ai", "synthetic", "preference", "dpo")
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))  # fmt: skip
"""The Hub's `size_categories` buckets (the largest ones never apply here)."""


def _metadata(folder: Path, constitution: Constitution, export: ExportConfig) -> str:
    """The card's YAML header: the Hub's standard fields, and one config per exported dataset whose
    `data_files` name its Parquet files by split."""
    import yaml

    configs: list[dict[str, Any]] = []
    rows = 0
    for name, split, count in split_counts(folder):
        if not configs or configs[-1]["config_name"] != name:
            configs.append({"config_name": name, "data_files": []})
        configs[-1]["data_files"].append({"split": split, "path": f"data/{name}/{split}-*.parquet"})
        rows += count if name == "pairs" else 0
    if configs:
        configs[0]["default"] = True
    size = next((label for limit, label in SIZES if rows < limit), "n>100M")
    tags = list(dict.fromkeys([*CARD_TAGS, *export.tags]))
    metadata = {
        "license": export.license,
        "language": list(export.language),
        "task_categories": ["text-generation"],
        "size_categories": [size],
        "pretty_name": f"rlaif {constitution.name} preferences",
        "tags": tags,
        **({"configs": configs} if configs else {}),
    }
    return str(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True))


def split_counts(folder: Path) -> list[tuple[str, str, int]]:
    """(dataset, split, rows) of every Parquet file of the export, pairs first."""
    import pyarrow.parquet as pq

    found = []
    for name in ("pairs", "sft"):
        for split in SPLITS:
            files = sorted((folder / "data" / name).glob(f"{split}-*.parquet"))
            if files:
                found.append((name, split, sum(pq.ParquetFile(f).metadata.num_rows for f in files)))
    return found


EXAMPLES = 3
"""Example rows the card shows."""
SHOWN = 300
"""Characters of a text the card shows before cutting it."""
PAIR_SHOWN = ("prompt", "chosen", "rejected", "score", "source")
"""The columns of a pair the card shows."""


def _examples(folder: Path) -> list[str]:
    """A few pairs (and one SFT row) as JSON, long texts cut, fenced so no text can end the block."""
    shown: list[dict[str, Any]] = []
    for name, count in (("pairs", EXAMPLES), ("sft", 1)):
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            continue
        with open(path, encoding="utf-8") as handle:
            for _, line in zip(range(count), handle, strict=False):
                row = json.loads(line)
                keep = PAIR_SHOWN if name == "pairs" else ("messages",)
                shown.append({key: _cut(row[key]) for key in keep})
    if not shown:
        return []
    text = "\n".join(json.dumps(row, ensure_ascii=False, indent=1) for row in shown)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return ["## Examples", f"{fence}json", text, fence, ""]


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= SHOWN else value[:SHOWN] + " [...]"
    if isinstance(value, list):
        return [_cut(item) for item in value]
    if isinstance(value, dict):
        return {key: _cut(item) for key, item in value.items()}
    return value


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


def _calibration_lines(summary: RunSummary) -> list[str]:
    """Whether `p_chosen` is calibrated (T, rows, ECE and Brier before and after) or raw, and why; the
    ensemble's effective votes."""
    lines = []
    fit = summary.calibration
    if fit is not None:
        head = "calibrated" if fit.applied else "**uncalibrated** (the judge's raw labels)"
        lines.append(f"- soft labels (`p_chosen` of judge pairs): {head}: {fit.reason}")
        if fit.rows:
            after = ""
            if fit.ece_after is not None and fit.brier_after is not None:
                after = f"; after: ECE {fit.ece_after:.3f}, Brier {fit.brier_after:.3f} ({fit.after_method})"
            assert fit.ece_before is not None and fit.brier_before is not None
            sources = ", ".join(f"{name} {count}" for name, count in fit.by_source.items())
            lines.append(
                f"- calibration on {fit.rows} ground-truth rows ({sources}): before: ECE "
                f"{fit.ece_before:.3f}, Brier {fit.brier_before:.3f}{after}; ECE over 10 equal-width bins "
                "of the preferred answer's probability; `p_chosen_raw` keeps the raw label"
            )
        lines += [f"- **warning: {w}**" for w in fit.warnings]
    if summary.ensemble is not None:
        lines.append(f"- judge ensemble: {summary.ensemble.note}")
    return lines


def _bias_lines(summary: RunSummary) -> list[str]:
    """Self-judging, the judge pairs' length preference and own-model preference (issue 28)."""
    bias = summary.bias
    if bias is None:
        return []
    lines = [f"- **self-judging**: {bias.self_judging}"] if bias.self_judging else []
    if bias.length is not None and bias.length.judged.n:
        lines.append(f"- length bias (words): {describe_share(bias.length, 'the longer answer')}")
    if bias.self_preference is not None:
        own = describe_share(bias.self_preference, "its own model's answer")
        lines.append(f"- self-preference: {own}")
    return lines


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{source} {count}" for source, count in sorted(counts.items())) or "none"


def _probe_lines(summary: RunSummary) -> list[str]:
    """The judge's accuracy on the universal probes, per kind, with what could not be built."""
    probes = summary.probes
    if probes is None:
        return ["- universal probes: none (judge.probes.share is 0, or the judge is off)"]
    lines = [
        f"- universal probes (an answer against a spoiled copy of it; unparsed left out): "
        f"{_rate(probes.decided)} right where both orders agreed, {_rate(probes.accuracy)} with ties "
        f"counted half, on {probes.prompts} prompts ({probes.right} right, {probes.wrong} wrong, "
        f"{probes.ties} ties, {probes.unparsed} unparsed); never in the exported data"
    ]
    for kind, tally in probes.by_kind.items():
        missing = ", ".join(f"{reason} {n}" for reason, n in tally.not_built.items())
        lines.append(
            f"  - {kind}: {_rate(tally.decided)} decided ({tally.ties} ties)"
            + (f"; not built: {missing}" if missing else "")
        )
    return lines


def _rate(rate: Rate | None) -> str:
    if rate is None or rate.value is None:
        return "n/a (no probe with a verdict)"
    assert rate.ci95 is not None
    return f"{percent(rate.value)} of {rate.n} (95% CI {percent(rate.ci95[0])}-{percent(rate.ci95[1])})"


def _agreement(rate: Rate | None) -> str:
    if rate is None or rate.value is None:
        return "n/a (no probe: judge.checks is not probe, or no check decided a pair)"
    assert rate.ci95 is not None
    return f"{percent(rate.value)} of {rate.n} (95% CI {percent(rate.ci95[0])}-{percent(rate.ci95[1])})"
