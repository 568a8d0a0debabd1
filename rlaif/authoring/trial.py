"""Try a constitution's judge questions on human labels: `rlaif constitution test` (each principle as the
judge's only principle, the same rows and seeds for all) and `rlaif constitution compare` (two
constitutions, principles drawn per row as a run draws them, the difference paired over rows).

Both go through the judge evaluation (`labelled_items`, `judge_rows`, `summarize`), so a principle is
judged here exactly as `rlaif evaluate judge` would judge it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from rlaif.authoring.reports import (
    ConstitutionComparison,
    ConstitutionTrial,
    PairedDifference,
    PrincipleTrial,
)
from rlaif.backends.bundled import cache_dir
from rlaif.backends.protocol import Backend
from rlaif.backends.serving import make_backend, served_backend
from rlaif.config import JudgeConfig, RunConfig
from rlaif.errors import ConstitutionError
from rlaif.evaluate.judge import RowResult, judge_rows, principle_members, summarize
from rlaif.evaluate.stats import bias_warnings, rate
from rlaif.inputs.labelled import LabelledData, LabelledPair
from rlaif.records import Constitution, derive_seed
from rlaif.reports import Rate
from rlaif.review.agreement import bootstrap_ci

__all__ = [
    "compare_constitutions",
    "comparison_report",
    "credit",
    "paired_difference",
    "principle_trial",
    "trial_constitution",
    "trial_principles",
]

T = TypeVar("T")


def credit(p_chosen: float | None) -> float | None:
    """Agreement credit of a row's label P(chosen): 1 above 0.5, half for a tie, 0 below, None unlabelled."""
    if p_chosen is None:
        return None
    return 1.0 if p_chosen > 0.5 else 0.5 if p_chosen == 0.5 else 0.0


def paired_difference(
    a: Sequence[float | None], b: Sequence[float | None], *, resamples: int = 2000, seed: int = 0
) -> PairedDifference:
    """Mean of `b - a` over the rows where both have a score, with a percentile bootstrap 95% interval
    that resamples rows (so each row's two scores stay together: the pairing is what makes it tight)."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not both:
        return PairedDifference(value=None, n=0, resamples=resamples, seed=seed)
    # One feature row per table row: (b - a, 1); a resample's statistic is its sum over its count.
    features = np.array([[y - x, 1.0] for x, y in both])
    interval = bootstrap_ci(
        features, lambda sums: sums[:, 0] / sums[:, 1], n_boot=resamples, seed=derive_seed(seed, "compare")
    )
    value = float(features[:, 0].mean())
    return PairedDifference(value=value, n=len(both), ci95=interval, resamples=resamples, seed=seed)


def principle_trial(principle_id: str, rows: Sequence[RowResult]) -> PrincipleTrial:
    """The figures of one principle's rows, from the judge evaluation's own summary."""
    summary = summarize(rows)
    labelled = summary.decided + summary.ties
    return PrincipleTrial(
        principle_id=principle_id,
        n=len(rows),
        agreement=Rate(value=summary.agreement, n=labelled, ci95=summary.agreement_ci95),
        order_consistency=summary.order_consistency,
        same_position_rate=summary.same_position_rate,
        decisive=rate(summary.decided, labelled),
        rows_without_label=summary.parse.rows_without_label,
    )


def trial_principles(constitution: Constitution, principle_id: str | None) -> list[str]:
    """The ids to try: the one given (a "did you mean" if unknown), else every principle that judges."""
    if principle_id is not None:
        principle = constitution.principle(principle_id)
        if not principle.judges:
            raise ConstitutionError(
                f"principle {principle_id!r} has no judge_question, so the judge cannot use it; add one, "
                "or test another principle"
            )
        return [principle.id]
    ids = [p.id for p in constitution.for_judging()]
    if not ids:
        raise ConstitutionError(
            f"constitution {constitution.name!r} has no principle with a judge_question: nothing to test"
        )
    return ids


def _served(config: RunConfig, work: Callable[[Backend], Awaitable[T]], *, quiet: bool) -> tuple[T, str]:
    """Run `work` against the config's judge (`judge.model`, else `model`), a managed server if needed."""
    log_dir = cache_dir("logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    with served_backend(config.judge.model or config.model, log_dir, name="constitution-test") as args:

        async def main() -> tuple[T, str]:
            backend = make_backend(args, quiet=quiet)
            try:
                await backend.resolve_model()
                return await work(backend), backend.label
            finally:
                await backend.aclose()

        return asyncio.run(main())


def _fixed(pairs: Sequence[LabelledPair], principle_id: str) -> list[LabelledPair]:
    return [dataclasses.replace(p, principle_id=principle_id) for p in pairs]


def trial_constitution(
    data: LabelledData,
    constitution: Constitution,
    *,
    config: RunConfig,
    principle_id: str | None = None,
    quiet: bool = False,
) -> ConstitutionTrial:
    """Judge every labelled row under each principle in turn (fixed, not sampled; the same positions and
    seeds for every principle) and report each principle's agreement with the labels."""
    ids = trial_principles(constitution, principle_id)
    judge, seed = config.judge, config.seed

    async def work(backend: Backend) -> list[list[RowResult]]:
        runs = [
            judge_rows(
                backend,
                _fixed(data.pairs, pid),
                constitution=constitution,
                config=judge,
                seed=seed,
                quiet=quiet,
            )
            for pid in ids
        ]
        return [rows for rows, _ in await asyncio.gather(*runs)]

    started = time.perf_counter()
    results, label = _served(config, work, quiet=quiet)
    report = ConstitutionTrial(
        constitution=f"{constitution.name} v{constitution.version}",
        data=str(data.path),
        rows=len(data.pairs),
        judge=label,
        seed=seed,
        principles=[principle_trial(pid, rows) for pid, rows in zip(ids, results, strict=True)],
        seconds=round(time.perf_counter() - started, 1),
    )
    for trial in report.principles:
        report.warnings += [
            f"{trial.principle_id}: {w}"
            for w in bias_warnings(trial.order_consistency, trial.same_position_rate, unit="row")
        ]
        if trial.decisive.n and not trial.decisive.value:
            report.warnings.append(f"{trial.principle_id}: no row was decided: its agreement is only ties")
    return report


def _unfixed(
    pairs: Sequence[LabelledPair], constitution: Constitution, judge: JudgeConfig
) -> list[LabelledPair]:
    """Rows that name a principle the constitution lacks are judged under drawn principles instead."""
    ids = {p.id for p in constitution.principles}
    return [p if p.principle_id in ids else dataclasses.replace(p, principle_id=None) for p in pairs]


def compare_constitutions(
    data: LabelledData,
    a: Constitution,
    b: Constitution,
    *,
    config: RunConfig,
    disagreements: Path | None = None,
    top: int = 20,
    resamples: int = 2000,
    quiet: bool = False,
) -> ConstitutionComparison:
    """Judge the same labelled rows under two constitutions, with the same positions and seeds; the
    difference in agreement (B - A) with a paired bootstrap interval, and the rows where the two labels
    differ most written to `disagreements` (JSONL, most different first)."""
    judge, seed = config.judge, config.seed
    pairs_a, pairs_b = _unfixed(data.pairs, a, judge), _unfixed(data.pairs, b, judge)
    # Refused before a server starts; the ids drawn for each row go in the disagreements file.
    drawn = [
        [
            tuple(p.id for member in row for p in member)
            for row in principle_members(pairs, c, judge, seed=seed)
        ]
        for pairs, c in ((pairs_a, a), (pairs_b, b))
    ]

    async def work(backend: Backend) -> tuple[list[RowResult], list[RowResult]]:
        (rows_a, _), (rows_b, _) = await asyncio.gather(
            judge_rows(backend, pairs_a, constitution=a, config=judge, seed=seed, quiet=quiet),
            judge_rows(backend, pairs_b, constitution=b, config=judge, seed=seed, quiet=quiet),
        )
        return rows_a, rows_b

    started = time.perf_counter()
    (rows_a, rows_b), label = _served(config, work, quiet=quiet)
    seconds = round(time.perf_counter() - started, 1)
    return comparison_report(
        data, a, b, rows_a, rows_b, judge=label, seed=seed, disagreements=disagreements, top=top,
        resamples=resamples, seconds=seconds, drawn=(drawn[0], drawn[1]),
    )  # fmt: skip


def comparison_report(
    data: LabelledData,
    a: Constitution,
    b: Constitution,
    rows_a: Sequence[RowResult],
    rows_b: Sequence[RowResult],
    *,
    judge: str,
    seed: int,
    disagreements: Path | None,
    top: int = 20,
    resamples: int = 2000,
    seconds: float | None = None,
    drawn: tuple[Sequence[tuple[str, ...]], Sequence[tuple[str, ...]]] | None = None,
) -> ConstitutionComparison:
    """The comparison of two constitutions' verdicts on the same rows (see `compare_constitutions`)."""
    summary_a, summary_b = summarize(rows_a), summarize(rows_b)
    credits_a, credits_b = [credit(r.p_chosen) for r in rows_a], [credit(r.p_chosen) for r in rows_b]
    common = sorted({p.id for p in a.principles} & {p.id for p in b.principles})
    report = ConstitutionComparison(
        a=f"{a.name} v{a.version}",
        b=f"{b.name} v{b.version}",
        data=str(data.path),
        rows=len(data.pairs),
        judge=judge,
        seed=seed,
        agreement_a=Rate(
            value=summary_a.agreement, n=summary_a.decided + summary_a.ties, ci95=summary_a.agreement_ci95
        ),
        agreement_b=Rate(
            value=summary_b.agreement, n=summary_b.decided + summary_b.ties, ci95=summary_b.agreement_ci95
        ),
        difference=paired_difference(credits_a, credits_b, resamples=resamples, seed=seed),
        common_principles=common,
        seconds=seconds,
    )
    if not common:
        report.notes.append(
            "the two constitutions have no principle id in common: they are compared as wholes, principle "
            "by principle comparison is not possible"
        )
    ids_a, ids_b = drawn or ([()] * len(rows_a), [()] * len(rows_b))
    ranked = []
    for index, (pair, ra, rb) in enumerate(zip(data.pairs, rows_a, rows_b, strict=True)):
        if ra.p_chosen is None or rb.p_chosen is None:
            continue
        if (ra.p_chosen > 0.5) != (rb.p_chosen > 0.5) or (ra.p_chosen == 0.5) != (rb.p_chosen == 0.5):
            report.disagreeing_rows += 1
        ranked.append((abs(ra.p_chosen - rb.p_chosen), pair, ra, rb, ids_a[index], ids_b[index]))
    ranked.sort(key=lambda item: -item[0])
    if disagreements is not None:
        disagreements.parent.mkdir(parents=True, exist_ok=True)
        with disagreements.open("w", encoding="utf-8") as handle:
            for gap, pair, ra, rb, principles_a, principles_b in ranked[:top]:
                row = {
                    "line": pair.line, "gap": round(gap, 4), "p_chosen_a": ra.p_chosen,
                    "p_chosen_b": rb.p_chosen, "principles_a": list(principles_a),
                    "principles_b": list(principles_b),
                    "last_user_turn": next(
                        (m.content for m in reversed(pair.conversation) if m.role == "user"), ""
                    ),
                    "chosen": pair.chosen, "rejected": pair.rejected,
                }  # fmt: skip
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        report.disagreements_file = str(disagreements)
    for name, summary in (("A", summary_a), ("B", summary_b)):
        report.notes += [f"{name}: {w}" for w in summary.warnings]
    return report
