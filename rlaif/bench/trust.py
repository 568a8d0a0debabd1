"""What the data-trust machinery is worth, against exact ground truth (`rlaif bench-trust`).

Synthetic judges of set accuracy, length bias and position bias (`rlaif.bench.synthetic`, served by the
stub server in its own process) judge the same synthetic answers, whose better one is known exactly,
through two pipelines:

- `naive`: one order, hard labels, no filters, no probes, no calibration, no gates: the way a pipeline
  without this machinery makes preference data (rlaif's own knobs set so, `NAIVE`);
- `rlaif`: the defaults (both orders, the filters, universal probes, the length and probe gates,
  calibration).

The prompts are answered once; every run copies those answers into its own run directory and runs
only the judge and export stages, so each judge sees the same pairs. For each judge and arm the report
gives the exported pairs' label accuracy against the truth (Wilson 95%), how many were kept, which gates
refused, and for `rlaif` the probe accuracy and the length figures. A refused run trains on nothing;
its accuracy is that of what it would have exported, and it is marked refused.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlaif.bench.reports import TrustArm, TrustBench, TrustCell, TrustJudge
from rlaif.bench.synthetic import (
    POLICY,
    JudgeSpec,
    prompt_text,
    quality,
    single_order_accuracy,
    tag_of,
    two_order_expectation,
)
from rlaif.config import FILTERS, RunConfig, config_from_dict
from rlaif.evaluate.stats import rate
from rlaif.pipeline.reports import RunSummary
from rlaif.pipeline.run import run_pipeline
from rlaif.store import RunLayout

__all__ = ["GRID", "NAIVE", "PROMPTS", "expected_on", "plot", "run_trust_bench", "truth"]

GRID: tuple[tuple[float, float, float], ...] = tuple(
    (a, ln, q) for q in (0.0, 0.3) for ln in (0.0, 0.3, 0.6) for a in (0.6, 0.75, 0.9)
)
"""(accuracy, length bias, position bias) of the 18 judges."""
PROMPTS = 400
"""Prompts of the full grid: 400 pairs for the naive arm; the rlaif arm keeps the pairs whose orders
agree (46-97% of them here), so each interval is at most about ±7 points wide."""
NAIVE: dict[str, Any] = {
    "judge.both_orders": False,
    "judge.inconsistent": "keep",
    "judge.min_confidence": 0.5,
    "judge.probes.share": 0.0,
    "judge.calibration": "off",
    "quality.filters.off": list(FILTERS),
    "quality.min_pairs": 0,
    **{
        f"quality.{gate}": None
        for gate in (
            "min_order_consistency",
            "max_same_position",
            "max_unparsed",
            "min_decisive",
            "min_check_agreement",
            "min_revision_kept",
            "max_length_bias",
            "max_self_preference",
            "min_probe_accuracy",
        )
    },
    "train.dpo.soft_labels": "off",
}
"""The naive arm: rlaif's own settings turned into a pipeline without its machinery."""


def _config(folder: Path, prompts: Path, base_url: str, judge: str, seed: int, **overrides: Any) -> RunConfig:
    model = {"base_urls": [base_url], "served_name": POLICY, "max_concurrency": 64}
    data = {
        "run_dir": str(folder),
        "prompts": {"path": str(prompts)},
        "seed": seed,
        "model": model,
        "revise": {"enabled": False},
        "judge": {"model": {**model, "served_name": judge}},
        "train": {"dpo": {"sources": ["judge"]}},
    }
    return config_from_dict(data, overrides=overrides)


def truth(row: dict[str, Any]) -> tuple[bool, int]:
    """(whether an exported pair's chosen answer is truly the better one, and +1, -1 or 0 as it is
    longer, shorter or as long in words)."""
    chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
    tags = tag_of(chosen), tag_of(rejected)
    if tags[0] is None or tags[1] is None:
        raise ValueError(f"pair {row.get('pair_id')}: an answer without its tag; not a synthetic answer")
    longer = len(chosen.split()) - len(rejected.split())
    return quality(tags[0]) > quality(tags[1]), (longer > 0) - (longer < 0)


def _pair_set(answers: Path) -> list[tuple[bool, bool | None]]:
    """For each prompt's judged pair (sample 0 against sample 1): whether sample 0 is the better, and
    whether the longer is the better (None when they are as long)."""
    by_prompt: dict[str, dict[int, str]] = {}
    for line in answers.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_prompt.setdefault(row["prompt_id"], {})[row["sample_index"]] = row["text"]
    made = []
    for texts in by_prompt.values():
        first, second = texts[0], texts[1]
        tags = tag_of(first), tag_of(second)
        assert tags[0] is not None and tags[1] is not None  # the stub's own answers
        first_better = quality(tags[0]) > quality(tags[1])
        longer = len(first.split()) - len(second.split())
        made.append((first_better, None if longer == 0 else (longer > 0) == first_better))
    return made


def expected_on(spec: JudgeSpec, pairs: Sequence[tuple[bool, bool | None]]) -> tuple[float, float]:
    """The generative model's expected label accuracy on these very pairs: (one order with sample 0
    first, the pairs whose two orders agree)."""
    a, ln, q = spec.accuracy, spec.length_bias, spec.position_bias
    one = right = wrong = 0.0
    for first_better, longer_better in pairs:
        by_length = a if longer_better is None else float(longer_better)
        m = (1 - q) * (ln * by_length + (1 - ln) * a)
        shown_first, shown_second = q * first_better + m, q * (not first_better) + m
        one += shown_first
        right += shown_first * shown_second
        wrong += (1 - shown_first) * (1 - shown_second)
    return one / len(pairs), right / (right + wrong) if right + wrong else 0.5


def _arm(name: str, summary: RunSummary, layout: RunLayout, seconds: float) -> TrustArm:
    rows = [json.loads(line) for line in (layout.export / "pairs.jsonl").read_text().splitlines() if line]
    judged = [truth(r) for r in rows if r["source"] == "judge"]
    right = sum(ok for ok, _ in judged)
    differ = [longer for _, longer in judged if longer]
    quality_report = summary.quality
    assert quality_report is not None  # the export ran
    gates = {g.name: g for g in quality_report.gates}
    failed = [g for g in quality_report.gates if g.passed is False]
    probes, length = summary.probes, summary.bias.length if summary.bias else None
    consistency = gates.get("judge order-consistency")
    return TrustArm(
        arm=name,
        judged=summary.judge.judged,
        exported=len(judged),
        label_accuracy=rate(right, len(judged)),
        chose_longer=rate(sum(longer > 0 for longer in differ), len(differ)),
        refused=bool(failed),
        failed_gates=[g.name for g in failed],
        gate_lines=[g.message() for g in failed],
        order_consistency=consistency.value if consistency else None,
        probe_accuracy=probes.decided if probes else None,
        probe_by_kind={k: t.decided for k, t in probes.by_kind.items() if t.decided} if probes else {},
        length_share=length.judged if length else None,
        length_excess_low=length.excess_low if length else None,
        calibration=summary.calibration.reason if summary.calibration else "",
        seconds=round(seconds, 2),
    )


def _run_arm(name: str, config: RunConfig, answers: Path) -> TrustArm:
    layout = RunLayout(Path(config.run_dir))
    if layout.root.exists():
        shutil.rmtree(layout.root)
    layout.root.mkdir(parents=True)
    shutil.copyfile(answers, layout.stage_file(layout.RESPONSES))  # the same answers for every judge
    started = time.perf_counter()
    summary = run_pipeline(config, stages=("judge", "export"), quiet=True)
    return _arm(name, summary, layout, time.perf_counter() - started)


def run_trust_bench(
    judges: Sequence[tuple[float, float, float]] = GRID,
    *,
    prompts: int = PROMPTS,
    seed: int = 0,
    folder: Path | None = None,
    progress: Callable[[TrustCell], None] | None = None,
) -> TrustBench:
    """Every judge of `judges` (accuracy, length bias, position bias) through the naive arm and rlaif's
    defaults on `prompts` synthetic prompts; run directories go under `folder` (default: a temporary one,
    removed after)."""
    from rlaif.bench.scale import Stub

    specs = [JudgeSpec(*judge) for judge in judges]  # a value out of [0, 1] raises before anything runs
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rlaif-trust-") as scratch:
        root = Path(folder) if folder is not None else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        prompt_file = root / "prompts.jsonl"
        prompt_file.write_text(
            "".join(json.dumps({"id": f"q{i:04d}", "prompt": prompt_text(i)}) + "\n" for i in range(prompts)),
            encoding="utf-8",
        )
        stub = Stub()
        try:
            base = _config(root / "answers", prompt_file, stub.base_url, specs[0].name, seed)
            t0 = time.perf_counter()
            run_pipeline(base, stages=("respond",), quiet=True)
            respond_seconds = time.perf_counter() - t0
            answers = RunLayout(root / "answers").stage_file(RunLayout.RESPONSES)
            pairs = _pair_set(answers)
            cells = []
            for spec in specs:
                slug = spec.name.split(":", 1)[1].replace(",", "_").replace("=", "")
                arms = {
                    arm: _run_arm(
                        arm,
                        _config(
                            root / f"{slug}-{arm}",
                            prompt_file,
                            stub.base_url,
                            spec.name,
                            seed,
                            **(NAIVE if arm == "naive" else {}),
                        ),
                        answers,
                    )
                    for arm in ("naive", "rlaif")
                }
                arms["naive"].expected_accuracy, arms["rlaif"].expected_accuracy = expected_on(spec, pairs)
                agree, agreed_right = two_order_expectation(
                    spec.accuracy, spec.length_bias, spec.position_bias
                )
                judge = TrustJudge(
                    accuracy=spec.accuracy, length_bias=spec.length_bias, position_bias=spec.position_bias,
                    served_name=spec.name,
                    single_order_accuracy=single_order_accuracy(spec.accuracy, spec.length_bias,
                                                                spec.position_bias),
                    two_order_agreement=agree, two_order_accuracy=agreed_right,
                )  # fmt: skip
                cell = TrustCell(judge=judge, **arms)
                cells.append(cell)
                if progress is not None:
                    progress(cell)
        finally:
            stub.stop()
    return TrustBench(
        prompts=prompts,
        seed=seed,
        naive_settings={k: json.dumps(v) for k, v in NAIVE.items()},
        first_better=rate(sum(first for first, _ in pairs), len(pairs)),
        longer_better=rate(sum(bool(x) for _, x in pairs), sum(x is not None for _, x in pairs)),
        cells=cells,
        respond_seconds=round(respond_seconds, 2),
        seconds=round(time.perf_counter() - started, 1),
        machine=f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    )


def plot(report: TrustBench, path: Path) -> Path:
    """Exported-label accuracy, naive against rlaif, for every judge (95% intervals; refused runs hatched)."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()
    cells = report.cells
    figure, axis = plt.subplots(figsize=(12, 5.4))
    width = 0.4
    for offset, arm, color in ((-width / 2, "naive", "tab:gray"), (width / 2, "rlaif", "tab:blue")):
        for x, cell in enumerate(cells):
            result: TrustArm = getattr(cell, arm)
            value = result.label_accuracy.value
            if value is None:
                continue
            low, high = result.label_accuracy.ci95 or (value, value)
            axis.bar(
                x + offset, value, width, color="white" if result.refused else color, edgecolor=color,
                hatch="//" if result.refused else None, yerr=[[value - low], [high - value]], capsize=2,
            )  # fmt: skip
            if result.refused:
                axis.text(x + offset, 0.02, "refused", rotation=90, ha="center", va="bottom", fontsize=7)
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor="tab:gray", label="naive (one order, no filters, no gates)"),
        Patch(facecolor="tab:blue", label="rlaif defaults, passed"),
        Patch(
            facecolor="white",
            edgecolor="tab:blue",
            hatch="//",
            label="rlaif defaults, refused: trains nothing",
        ),
    ]
    axis.axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    axis.set_xticks(
        range(len(cells)),
        [f"a {c.judge.accuracy:g}\nl {c.judge.length_bias:g}\nq {c.judge.position_bias:g}" for c in cells],
        fontsize=7,
    )
    title = f"Exported-label accuracy against exact truth ({report.prompts} pairs a judge)"
    axis.set(ylim=(0, 1.05), ylabel="exported pairs labelled right", title=title)
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3, fontsize=8)
    figure.tight_layout()
    return save_png(figure, path, dpi=120)
