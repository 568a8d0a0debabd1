"""`rlaif evaluate audit RUN_DIR`: what a run's exported preference pairs reward, measured trait by trait.

For every pair of `export/pairs.jsonl` (read a line at a time) each trait is measured on the chosen and
the rejected answer, and the pair counts where the chosen one has more of it, less, or the same. The
share "chosen has more" among the pairs that differ says what training on the pairs will push towards:
83% for `longer` means the data teaches length. Overall and per principle (a pair judged under several
principles counts under each), with Wilson intervals and a chart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.authoring.reports import AuditReport, TraitGroup, TraitShare
from rlaif.config import QualityConfig
from rlaif.errors import ConstitutionError, RunDirError
from rlaif.evaluate.bias import LengthTally, answer_text, length_warning, words
from rlaif.evaluate.stats import rate
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.judging.checks import checkable, run_check
from rlaif.records import Constitution
from rlaif.store import RunLayout

__all__ = ["TRAITS", "audit_run", "plot_audit", "read_pairs"]

_REFUSAL = re.compile(
    r"(?i)\b(I can(?:no|')t|I won'?t|I will not|I(?:'m| am) (?:not able|unable)|I must decline|as an AI|"
    r"I(?:'m| am) sorry,? but|not (?:able|allowed) to (?:help|assist|provide))"
)
_LIST = re.compile(r"(?m)^\s*(?:[-*•]|\d+[.)]|#{1,6})\s+|\*\*[^*\n]+\*\*")
_HEDGE = re.compile(
    r"(?i)\b(might|maybe|may|perhaps|possibly|probably|likely|it depends|I think|I believe|not sure|"
    r"generally|usually|could be|seems?)\b"
)
_POLITE = re.compile(
    r"(?i)\b(please|thank you|thanks|sorry|I apologi[sz]e|happy to help|glad to help|you're welcome|"
    r"great question)\b"
)


@dataclass(frozen=True)
class Trait:
    """A measured trait: its description and a function from an answer to how much of it there is."""

    description: str
    measure: Callable[[str], float]


TRAITS: dict[str, Trait] = {
    "longer": Trait("words (whitespace-separated)", words),
    "refusal": Trait("refusal phrases (I can't, I won't, as an AI, ...)", lambda t: len(_REFUSAL.findall(t))),
    "list-formatting": Trait(
        "list items, headings and **bold** spans", lambda text: len(_LIST.findall(text))
    ),
    "hedging": Trait(
        "hedges (might, perhaps, I think, usually, ...)", lambda text: len(_HEDGE.findall(text))
    ),
    "politeness": Trait(
        "politeness markers (please, thank you, sorry, ...)", lambda t: len(_POLITE.findall(t))
    ),
}
"""The traits every audit measures; each principle's check is added as `passes ID`."""


@dataclass
class _Tally:
    more: int = 0
    less: int = 0
    equal: int = 0


@dataclass
class _Group:
    pairs: int = 0
    tallies: dict[str, _Tally] = field(default_factory=dict)

    def add(self, name: str, chosen: float | None, rejected: float | None) -> None:
        if chosen is None or rejected is None:
            return  # a check that could not decide counts on neither side
        tally = self.tallies.setdefault(name, _Tally())
        if chosen > rejected:
            tally.more += 1
        elif chosen < rejected:
            tally.less += 1
        else:
            tally.equal += 1

    def report(self, name: str, order: list[str]) -> TraitGroup:
        traits = []
        for trait in order:
            t = self.tallies.get(trait, _Tally())
            traits.append(TraitShare(trait=trait, chosen_more=rate(t.more, t.more + t.less), equal=t.equal))
        return TraitGroup(group=name, pairs=self.pairs, traits=traits)


def read_pairs(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of an exported `pairs.jsonl`, one line at a time."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunDirError(f"{path}, line {number}: not JSON ({exc.msg}); re-export the run") from None
            if not isinstance(row, dict) or not {"prompt", "chosen", "rejected"} <= row.keys():
                raise RunDirError(
                    f"{path}, line {number}: not a preference row (needs prompt, chosen, rejected); "
                    "re-export the run with `rlaif export CONFIG`"
                )
            yield row


def _run_constitution(layout: RunLayout, given: str | None, notes: list[str]) -> Constitution | None:
    """The constitution whose checks are run: the one given, else the one the run's manifest names."""
    manifest: dict[str, Any] = {}
    if layout.manifest.is_file():
        try:
            manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            notes.append(f"{layout.manifest} is not valid JSON: the run's constitution is unknown")
    name = given or (manifest.get("config") or {}).get("constitution")
    if not name:
        notes.append("no constitution given or named in the run's manifest: principle checks not measured")
        return None
    try:
        constitution = load_constitution(find_constitution(name))
    except ConstitutionError as exc:
        notes.append(f"principle checks not measured: {exc} (give --constitution)")
        return None
    made_with = (manifest.get("constitution") or {}).get("hash")
    if made_with and made_with != constitution.hash:
        notes.append(
            f"constitution {name} has hash {constitution.hash}, the run was made with {made_with}: the "
            "checks are those of the file as it is now"
        )
    return constitution


def _length_threshold(layout: RunLayout) -> float | None:
    """The run's `quality.max_length_bias` (from its manifest), else the default."""
    default = QualityConfig().max_length_bias
    try:
        manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
        quality = manifest["config"]["quality"]
    except (OSError, ValueError, KeyError, TypeError):
        return default
    value = quality.get("max_length_bias", default) if isinstance(quality, dict) else default
    return value if value is None or isinstance(value, int | float) else default


def audit_run(run_dir: str | Path, *, constitution: str | None = None, min_pairs: int = 20) -> AuditReport:
    """Measure what the exported pairs of a run reward (see the module docstring).

    Args:
        run_dir: The run directory.
        constitution: The constitution whose checks to run; None: the one the run's manifest names.
        min_pairs: A group with fewer pairs gets a warning that its shares are noise.

    Raises:
        RunDirError: the folder or its `export/pairs.jsonl` is missing, or a row is not a preference row.
    """
    layout = RunLayout(Path(run_dir))
    pairs_file = layout.export / "pairs.jsonl"
    if not layout.root.is_dir():
        raise RunDirError(f"{layout.root}: no such run directory; give the run_dir of a run")
    if not pairs_file.is_file():
        raise RunDirError(
            f"{pairs_file} not found: the run has not exported pairs yet; run `rlaif export CONFIG` first"
        )
    notes: list[str] = []
    loaded = _run_constitution(layout, constitution, notes)
    checked = checkable(loaded) if loaded is not None else ()
    order = [*TRAITS, *(f"passes {p.id}" for p in checked)]
    groups: dict[str, _Group] = {"all": _Group()}
    length = LengthTally()
    for row in read_pairs(pairs_file):
        length.add_row(row)
        chosen, rejected = answer_text(row["chosen"]), answer_text(row["rejected"])
        conversation = (
            [m for m in row["prompt"] if isinstance(m, dict)] if isinstance(row["prompt"], list) else []
        )
        values = {name: (t.measure(chosen), t.measure(rejected)) for name, t in TRAITS.items()}
        for p in checked:
            outcomes = (run_check(p, conversation, chosen), run_check(p, conversation, rejected))
            values[f"passes {p.id}"] = (outcomes[0].score, outcomes[1].score)
        for name in ("all", *dict.fromkeys(row.get("principle_ids") or [])):
            group = groups.setdefault(name, _Group())
            group.pairs += 1
            for trait, (c, r) in values.items():
                group.add(trait, c, r)
    report = AuditReport(
        run_dir=str(layout.root),
        pairs_file=str(pairs_file),
        pairs=groups["all"].pairs,
        constitution=None if loaded is None else f"{loaded.name} v{loaded.version}",
        traits={name: t.description for name, t in TRAITS.items()}
        | {f"passes {p.id}": f"passes the check of principle {p.id}" for p in checked},
        groups=[g.report(name, order) for name, g in sorted(groups.items(), key=lambda kv: kv[0] != "all")],
        notes=notes,
        length_bias=length.report() if length.judged else None,
    )
    if report.length_bias is not None:
        warning = length_warning(report.length_bias, _length_threshold(layout))
        report.warnings += [warning] if warning else []
    if not report.pairs:
        report.notes.append(f"{pairs_file} has no pairs: nothing to audit")
    small = [g.group for g in report.groups if 0 < g.pairs < min_pairs]
    if small:
        report.notes.append(
            f"fewer than {min_pairs} pairs in {', '.join(small)}: their shares are noise (see the intervals)"
        )
    report.notes.append(
        "marker counts are raw, not per word: a longer answer tends to have more of every marker, so read "
        "them beside `longer`"
    )
    return report


def plot_audit(report: AuditReport, path: Path, *, max_groups: int = 6) -> Path:
    """Bar chart: per trait, the share of pairs whose chosen answer has more of it (95% Wilson intervals),
    for all pairs and the principles with the most pairs."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()

    groups = report.groups[: max_groups + 1]
    names = [t.trait for t in groups[0].traits] if groups else []
    fig, axis = plt.subplots(
        figsize=(1.1 * len(names) * max(1, len(groups)) ** 0.5 + 3, 4.6), constrained_layout=True
    )
    width = 0.8 / max(1, len(groups))
    for index, group in enumerate(groups):
        rates = [t.chosen_more for t in group.traits]
        values = [float("nan") if r.value is None else 100 * r.value for r in rates]  # n/a: no bar
        errors = [
            [100 * ((r.value or 0) - r.ci95[0]) if r.ci95 and r.value is not None else 0 for r in rates],
            [100 * (r.ci95[1] - (r.value or 0)) if r.ci95 and r.value is not None else 0 for r in rates],
        ]
        xs = [i - 0.4 + width * (index + 0.5) for i in range(len(names))]
        axis.bar(xs, values, width, yerr=errors, capsize=2, label=f"{group.group} ({group.pairs} pairs)")
    axis.axhline(50, color="grey", linestyle="--", linewidth=1)
    axis.set_xticks(range(len(names)), names, fontsize=8, rotation=20, ha="right")
    axis.set_ylabel("chosen has more (% of pairs that differ)")
    axis.set_ylim(0, 105)
    axis.set_title(
        f"What the pairs of {Path(report.run_dir).name} reward ({report.pairs} pairs)", fontsize=10
    )
    axis.legend(loc="upper left", fontsize=7)
    return save_png(fig, path, dpi=110)
