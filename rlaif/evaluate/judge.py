"""How far to trust the judge: agreement with human labels on a labelled pairwise set.

Reads hh-rlhf transcript rows (`{"chosen", "rejected"}` full transcripts, split at the last
`\\n\\nAssistant:`, prefixes checked) or `{prompt, chosen, rejected}` rows, and judges every pair with
the configured judge, or answers with a baseline (random, first position, shorter or longer reply)
through the same report. The human-chosen reply is shown in position A for a seeded half of the
rows and in B for the other half, so one-order agreement is not confounded with position bias. A row
that names its principle (`principle_id`) is judged under that principle; the others under a seeded draw.

The report: agreement (one order, both orders averaged) with a Wilson 95% interval, a tie (a label
of exactly 0.5) counting half as RewardBench and FastChat count it, beside the decided-rows-only rate
and the tie count; "n/a" when no row was decided. Then order-consistency, same-position rate, parse
failures, agreement per principle (rows judged under a fixed principle only), calibration (ECE, Brier
score and a reliability plot, one point per row) and injection flags, with a warning wherever a
figure means the data is noise. An unreadable verdict is left out of every rate and counted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.backends.bundled import cache_dir
from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig, RunConfig
from rlaif.errors import ConfigError, PromptSetError
from rlaif.evaluate.calibration import fit_calibration, save_calibration
from rlaif.evaluate.ensemble import ensemble_votes
from rlaif.evaluate.reports import Calibration, JudgeEvaluation, LabelledDataInfo, ParseCounts
from rlaif.evaluate.stats import (
    bias_warnings,
    brier_score,
    expected_calibration_error,
    rate,
    reliability_bins,
    reliability_plot,
)
from rlaif.inputs.labelled import LabelledData, LabelledPair, load_labelled_pairs
from rlaif.inputs.load import load_run_constitution
from rlaif.judging.engine import judge_items, judge_stats, judgment_id
from rlaif.judging.labels import position_means, side
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles, judge_nonce
from rlaif.records import Constitution, Judgment, Principle, derive_seed
from rlaif.reports import Rate
from rlaif.store import Stage
from rlaif.templates import SHIPPED, Templates

__all__ = [
    "BASELINES",
    "LabelledData",
    "LabelledPair",
    "RowResult",
    "baseline_rows",
    "calibration_points",
    "chosen_first",
    "evaluate_judge",
    "judge_rows",
    "labelled_items",
    "load_labelled_pairs",
    "principle_members",
    "save_fit",
    "summarize",
]

BASELINES = ("random", "first", "shorter", "longer")


def chosen_first(count: int, *, seed: int) -> list[bool]:
    """Whether the chosen reply is shown in position A: in each consecutive pair of rows exactly one
    of the two, picked by the seed, so exactly half of an even number of rows (an odd last row gets a
    seeded coin). The assignment of a row does not depend on `count`, so a larger `--limit` extends
    an earlier run instead of reshuffling it."""
    first = []
    for index in range(count):
        coin = random.Random(derive_seed(seed, f"evaluate:positions:{index // 2}")).random() < 0.5
        first.append(coin if index % 2 == 0 else not coin)
    return first


@dataclass(frozen=True)
class RowResult:
    """The verdict on one labelled pair, in the pair's frame (P(chosen is better))."""

    line: int
    chosen_first: bool
    """Whether the chosen reply was in position A in the first presentation order."""
    p_orders: tuple[float | None, ...]
    """P(chosen is better) per presentation order: the first order, then the swapped one if judged."""
    p_chosen: float | None
    """P(chosen is better), averaged over orders and ensemble members; None when nothing parsed."""
    consistent: bool | None = None
    same_position: bool | None = None
    unparsed_orders: int = 0
    error_orders: int = 0
    principle_id: str | None = None
    """The fixed principle the row was judged under (its `principle_id`); None when it was sampled."""
    flagged: tuple[str, ...] = ()
    """Injection flags on either candidate."""


def _baseline_p(pair: LabelledPair, name: str, first: bool, seed: int) -> float:
    if name == "first":
        return 1.0 if first else 0.0
    if name == "random":
        pick_first = random.Random(derive_seed(seed, f"random:{pair.line}")).random() < 0.5
        return 1.0 if pick_first == first else 0.0
    shorter, longer = len(pair.chosen_reply.strip()), len(pair.rejected_reply.strip())
    if shorter == longer:
        return 0.5  # equal lengths: no preference, which never counts as agreement
    chosen_is_shorter = shorter < longer
    return float(chosen_is_shorter if name == "shorter" else not chosen_is_shorter)


def baseline_rows(pairs: Sequence[LabelledPair], name: str, *, seed: int = 0) -> list[RowResult]:
    """Verdicts of a baseline in place of a model: random, first (position A), shorter or longer reply."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    positions = chosen_first(len(pairs), seed=seed)
    rows = []
    for pair, first in zip(pairs, positions, strict=True):
        p = _baseline_p(pair, name, first, seed)
        rows.append(RowResult(pair.line, first, (p,), p))
    return rows


def _row(pair: LabelledPair, first: bool, judgment: Judgment, chosen_id: str) -> RowResult:
    p_a = judgment.p_a
    p_chosen = None if p_a is None else (p_a if judgment.response_a_id == chosen_id else 1.0 - p_a)
    if judgment.mode in ("pointwise", "rubric"):
        p_orders: tuple[float | None, ...] = (p_chosen,)
        same_position = None
    else:
        # P(chosen) when it was shown at A, and when it was shown at B.
        at_a, at_b = position_means(judgment.orders, chosen_id)
        first_order, second_order = (at_a, at_b) if first else (at_b, at_a)
        swapped = any(o.first_id != judgment.response_a_id for o in judgment.orders)
        p_orders = (first_order, second_order) if swapped else (first_order,)
        same_position = None
        if at_a is not None and at_b is not None:
            same_position = side(at_a) == -side(at_b) != 0  # A both times, or B both times
    return RowResult(
        line=pair.line,
        chosen_first=first,
        p_orders=p_orders,
        p_chosen=p_chosen,
        consistent=judgment.consistent,
        same_position=same_position,
        unparsed_orders=sum(o.status == "unparsed" for o in judgment.orders),
        error_orders=sum(o.status == "error" for o in judgment.orders),
        principle_id=pair.principle_id,
        flagged=tuple(sorted({f for flags in judgment.flags.values() for f in flags})),
    )


def principle_members(
    pairs: Sequence[LabelledPair],
    constitution: Constitution,
    config: JudgeConfig,
    *,
    seed: int,
    source: str | Path | None = None,
) -> list[tuple[tuple[Principle, ...], ...]]:
    """The principles each pair is judged under: the one its row names (`principle_id`: one member,
    no ensemble, no draw), else `judge.ensemble` seeded draws. An id the constitution does not have
    raises `PromptSetError` naming the file (`source`) and line."""
    by_id = {p.id: p for p in constitution.principles}
    members = []
    for pair in pairs:
        if pair.principle_id is None:
            members.append(draw_principles(constitution, config, seed=seed, key=f"evaluate:{pair.line}"))
        elif pair.principle_id in by_id:
            members.append(((by_id[pair.principle_id],),))
        else:
            where = f"{source}:{pair.line}" if source is not None else f"line {pair.line}"
            raise PromptSetError(
                f"{where}: principle_id {pair.principle_id!r} is not a principle of constitution "
                f"{constitution.name!r}; use one of {', '.join(by_id)}, or leave principle_id out to "
                "sample one"
            )
    return members


def labelled_items(
    pairs: Sequence[LabelledPair],
    constitution: Constitution,
    config: JudgeConfig,
    *,
    seed: int,
    source: str | Path | None = None,
) -> list[JudgeItem]:
    """One judge item per labelled pair, the chosen reply at A for a seeded half (`chosen_first`)."""
    items = []
    positions = chosen_first(len(pairs), seed=seed)
    members = principle_members(pairs, constitution, config, seed=seed, source=source)
    for pair, first, principles in zip(pairs, positions, members, strict=True):
        chosen = Candidate(f"row{pair.line}:chosen", pair.chosen)
        rejected = Candidate(f"row{pair.line}:rejected", pair.rejected)
        a, b = (chosen, rejected) if first else (rejected, chosen)
        items.append(JudgeItem(f"row{pair.line}", pair.conversation, a, b, principles))
    return items


async def judge_rows(
    backend: Backend,
    pairs: Sequence[LabelledPair],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int = 0,
    quiet: bool = False,
    store: Stage[Judgment] | None = None,
    templates: Templates = SHIPPED,
) -> tuple[list[RowResult], list[Judgment]]:
    """Judge every labelled pair with the configured judge; the chosen reply is A for a seeded half.

    With a `store`, each judgment is appended as it completes and those already stored are reused,
    so an interrupted evaluation resumes where it stopped.
    """
    positions = chosen_first(len(pairs), seed=seed)
    items = labelled_items(pairs, constitution, config, seed=seed)
    by_rubric = await _rubric_judgments(
        backend, items, constitution=constitution, config=config, seed=seed, store=store, templates=templates
    )
    made = await judge_items(
        backend,
        [item for item in items if item.prompt_id not in by_rubric],
        constitution=constitution,
        config=config,
        seed=seed,
        done={j.id for j in store} if store is not None else set(),
        on_judgment=None if store is None else lambda judgment: _store(store, judgment),
        quiet=quiet,
        description="evaluate",
        templates=templates,
    )
    by_id = {j.id: j for j in made} | ({j.id: j for j in store} if store is not None else {})
    nonce = judge_nonce(seed)
    judgments = [
        by_rubric[item.prompt_id]
        if item.prompt_id in by_rubric
        else by_id[
            judgment_id(
                item,
                model=backend.label,
                config=config,
                constitution=constitution,
                nonce=nonce,
                templates=templates,
            )
        ]
        for item in items
    ]
    rows = [
        _row(pair, first, judgment, f"row{pair.line}:chosen")
        for pair, first, judgment in zip(pairs, positions, judgments, strict=True)
    ]
    return rows, judgments


async def _rubric_judgments(
    backend: Backend,
    items: Sequence[JudgeItem],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    store: Stage[Judgment] | None,
    templates: Templates,
) -> dict[str, Judgment]:
    """Row key -> the rubric's judgment of the rows whose principles are all judged by a checklist
    (`judge.rubric`, or a principle's own `rubric: true`): items written for the row's conversation, both
    answers scored per item, filtered on the two answers alone (the label is what is measured, so it is
    never used to filter). Reused from `store` when there; a row with a failed request is unparsed."""
    from rlaif._version import __version__
    from rlaif.judging.rubric import RubricAsker, rubric_pair, rubric_principles
    from rlaif.records import Provenance, stable_id

    chosen = {item.prompt_id: rubric_principles(item.members, config) for item in items}
    wanted = [item for item in items if chosen[item.prompt_id] is not None]
    if not wanted:
        return {}
    asker = RubricAsker(backend, config.rubric_items, seed, judge_nonce(seed), templates)
    hashes = "+".join(templates.hash(t) for t in ("rubric_items", "rubric_score"))
    stored = {j.id: j for j in store} if store is not None else {}
    gate = asyncio.Semaphore(8)

    async def one(item: JudgeItem) -> Judgment:
        principles = chosen[item.prompt_id] or ()
        jid = stable_id(
            "judgment", prompt_id=item.prompt_id, response_ids=[item.a.id, item.b.id],
            principle_ids=[p.id for p in principles], model=backend.label, template_hash=hashes,
            constitution_hash=constitution.hash, texts=[item.a.text, item.b.text], seed=seed,
            settings={"rubric": "per_prompt", "rubric_items": config.rubric_items},
        )  # fmt: skip
        if jid in stored:
            return stored[jid]
        async with gate:
            verdict, failed = await rubric_pair(
                asker, item.conversation, principles, (item.a.id, item.a.text), (item.b.id, item.b.text),
                f"evaluate-rubric:{jid}",
            )  # fmt: skip
        judgment = Judgment(
            id=jid, prompt_id=item.prompt_id, response_a_id=item.a.id, response_b_id=item.b.id,
            principle_ids=tuple(p.id for p in principles), orders=verdict.orders, p_a=verdict.p_a,
            consistent=None, status="unparsed" if verdict.unparsed else "ok", mode="rubric",
            rubric_items=verdict.decided,
            provenance=Provenance(
                model=backend.label, template="rubric_items+rubric_score", template_hash=hashes,
                constitution_hash=constitution.hash, seed=seed, rlaif_version=__version__,
            ),
        )  # fmt: skip
        if store is not None and not failed:  # a failed request is asked again by the next evaluation
            _store(store, judgment)
        return judgment

    found = await asyncio.gather(*(one(item) for item in wanted))
    return {item.prompt_id: judgment for item, judgment in zip(wanted, found, strict=True)}


def _store(store: Stage[Judgment], judgment: Judgment) -> None:
    store.append([judgment])


def _credit(p: float) -> float:
    """Agreement credit of P(chosen is better): 1 above 0.5, half for a tie, 0 below."""
    return 1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0


def _tie_half(labels: Sequence[float]) -> Rate:
    """Agreement of labels P(chosen), a tie counting half; "n/a" when none is decided."""
    if not any(p != 0.5 for p in labels):
        return Rate(value=None, n=len(labels))
    return rate(sum(map(_credit, labels)), len(labels))


def calibration_points(rows: Sequence[RowResult]) -> list[tuple[float, bool]]:
    """One calibration point per labelled row: (P(response A is better), whether A is the human-chosen one).

    A is the response shown first in the row's first presentation order; the label is the row's final
    one (averaged over both orders when both were judged, so each row counts once, however many orders
    and ensemble members it took). Because the chosen reply is A for a seeded half of the rows, the
    outcome is 1 for about half of the points and 0 for the rest: a label that always favours the chosen
    reply is not made perfect by an outcome that is always 1, and a judge that always favours position A
    shows up far off the diagonal. A judge with no signal (every label near 0.5) still lands on the
    diagonal at 0.5: calibration says nothing about signal, which is why the Brier score (0.25 for no
    signal) and the agreement are reported beside it.
    """
    points = []
    for row in rows:
        if row.p_chosen is not None:
            p_a = row.p_chosen if row.chosen_first else 1.0 - row.p_chosen
            points.append((p_a, row.chosen_first))
    return points


def calibration_label(two_orders: bool) -> str:
    """What a calibration point is, as the report and the plot say it."""
    averaged = ", averaged over both orders" if two_orders else ""
    return (
        f"predicted P(response A is better){averaged}, one point per row; A is the response shown first "
        "(the human-chosen one in a seeded half of the rows); observed: A is the human-chosen one"
    )


def summarize(rows: Sequence[RowResult], data: LabelledData | None = None) -> JudgeEvaluation:
    """The evaluation report (`judge`, timing and settings left for the caller to fill in).

    Every agreement counts a tie as half and leaves rows without a label out (counted in `parse`); the
    headline is None ("n/a") when no row was decided, with a warning.
    """
    n = len(rows)
    labels = [r.p_chosen for r in rows if r.p_chosen is not None]
    decided = [p for p in labels if p != 0.5]
    two_orders = n > 0 and all(len(r.p_orders) == 2 for r in rows)
    headline = _tie_half(labels)
    first_labels = [r.p_orders[0] for r in rows if r.p_orders and r.p_orders[0] is not None]
    both = [r for r in rows if r.consistent is not None]
    first_verdicts = [r for r in rows if r.p_orders and r.p_orders[0] is not None and r.p_orders[0] != 0.5]
    # In the first order the chosen reply is at A when chosen_first: the verdict picks A when it
    # prefers the chosen reply there, or the rejected one otherwise.
    picks_a = sum((r.p_orders[0] > 0.5) == r.chosen_first for r in first_verdicts)  # type: ignore[operator]
    fixed: dict[str, list[float]] = {}
    for r in rows:
        if r.principle_id is not None and r.p_chosen is not None:
            fixed.setdefault(r.principle_id, []).append(r.p_chosen)
    points = calibration_points(rows)
    bins = reliability_bins(points)
    consistency = rate(sum(bool(r.consistent) for r in both), len(both)) if both else None
    same_position = rate(sum(bool(r.same_position) for r in both), len(both)) if both else None
    parse = ParseCounts(
        unparsed_orders=sum(r.unparsed_orders for r in rows),
        error_orders=sum(r.error_orders for r in rows),
        rows_without_label=n - len(labels),
    )
    warnings = []
    if not decided:
        warnings.append(
            f"no row was decided ({len(labels)} ties, {parse.rows_without_label} without a parsed verdict): "
            "agreement is n/a, the judge gave no usable signal; `rlaif evaluate judge` exits with status 1"
        )
    warnings += bias_warnings(consistency, same_position, unit="row")
    method = "two orders averaged" if two_orders else "one order"
    report = JudgeEvaluation(
        n=n,
        agreement=headline.value,
        agreement_ci95=headline.ci95,
        agreement_method=f"{method}, a tie counts half",
        agreement_one_order=_tie_half(first_labels),
        agreement_two_orders=headline if two_orders else None,
        agreement_decisive=rate(sum(p > 0.5 for p in decided), len(decided)),
        ties=len(labels) - len(decided),
        decided=len(decided),
        order_consistency=consistency,
        same_position_rate=same_position,
        first_order_picks_a=rate(picks_a, len(first_verdicts)),
        parse=parse,
        per_principle={pid: _tie_half(fixed[pid]) for pid in sorted(fixed)},
        calibration=Calibration(
            label=calibration_label(two_orders),
            points=len(points),
            ece=expected_calibration_error(bins),
            brier=brier_score(points),
            bins=bins,
        ),
        flagged_rows=sum(bool(r.flagged) for r in rows),
        warnings=warnings,
        calibration_fit=fit_calibration(points),
    )
    if data is not None:
        report.data = LabelledDataInfo(
            path=str(data.path),
            format=data.format,
            rows=len(data.pairs),
            prefix_mismatch_lines=data.mismatched,
            empty_chosen=sum(not p.chosen.strip() for p in data.pairs),
            empty_rejected=sum(not p.rejected.strip() for p in data.pairs),
            principle_rows=sum(p.principle_id is not None for p in data.pairs),
        )
    return report


def _eval_backend(config: RunConfig, log_dir: Path) -> Any:
    from rlaif.backends.serving import served_backend

    return served_backend(config.judge.model or config.model, log_dir, name="judge-eval", ray=True)


def evaluate_judge(
    data_path: str | Path,
    *,
    config: RunConfig,
    baseline: str | None = None,
    limit: int | None = None,
    json_path: Path | None = None,
    plot_path: Path | None = None,
    judgments_path: Path | None = None,
    save_calibration_path: Path | None = None,
    quiet: bool = False,
) -> JudgeEvaluation:
    """Evaluate the config's judge (`judge.model`, else `model`) or a baseline on a labelled file.

    Writes the report to `json_path` and the reliability plot to `plot_path` (default: next to the
    JSON, `NAME.reliability.png`) when given. Judgments are appended to `judgments_path` (default:
    next to the JSON, `NAME.judgments.jsonl`) as they complete, so rerunning the same evaluation
    resumes instead of starting over. `seconds` times the judging; starting the judge's server is
    timed apart (`startup_seconds`). With `save_calibration_path`, the temperature fitted on the rows
    (`calibration_fit`) is saved there for runs to reuse (`judge.calibration: FILE`). Returns the report.
    """
    data = load_labelled_pairs(data_path, limit=limit)
    if baseline:
        started = time.perf_counter()
        rows = baseline_rows(data.pairs, baseline, seed=config.seed)
        report = summarize(rows, data)
        report.seconds = round(time.perf_counter() - started, 1)
        report.judge, report.baseline = f"baseline:{baseline}", baseline
        report.calibration_fit = None  # a baseline's 0/1 labels are not a judge's to calibrate
    else:
        constitution = load_run_constitution(config)
        # A principle_id the constitution lacks is refused before any server starts.
        principle_members(data.pairs, constitution, config.judge, seed=config.seed, source=data.path)
        log_dir = cache_dir("logs")
        log_dir.mkdir(parents=True, exist_ok=True)
        if judgments_path is None and json_path is not None:
            judgments_path = json_path.with_name(json_path.stem + ".judgments.jsonl")
        store = None
        if judgments_path is not None:
            judgments_path.parent.mkdir(parents=True, exist_ok=True)
            store = Stage(judgments_path, Judgment)
        reused = len(store) if store is not None else 0
        started = time.perf_counter()
        with _eval_backend(config, log_dir) as args:
            startup = time.perf_counter() - started
            engine = "ray.data.llm" if "ray" in args else "vLLM server"
            started = time.perf_counter()
            try:
                rows, judgments, judge_label = asyncio.run(
                    _judge_served(args, data, constitution, config, quiet, store)
                )
            finally:
                if store is not None:
                    store.sync()
            seconds = time.perf_counter() - started
        report = summarize(rows, data)
        report.judge, report.mode = judge_label, config.judge.mode
        report.seconds, report.startup_seconds = round(seconds, 1), round(startup, 1)
        report.engine = engine
        report.judge_config = config.judge.model_dump(mode="json", exclude={"model"})
        report.constitution = config.constitution
        report.orders_parsed = judge_stats(judgments).parsed_orders
        report.judgments_file = None if judgments_path is None else str(judgments_path)
        report.judgments_stored_before = reused  # > 0: a resumed run, `seconds` covers only the rest
        fit = report.calibration_fit
        if fit is not None and judgments:
            fit.judge_model, fit.template_hash = judge_label, judgments[0].provenance.template_hash
        if config.judge.ensemble > 1:
            report.ensemble = ensemble_votes(judgments, config.judge.ensemble)
    report.seed = config.seed
    if plot_path is None and json_path is not None:
        plot_path = json_path.with_name(json_path.stem + ".reliability.png")
    if plot_path is not None:
        calibration = report.calibration
        ece = "n/a" if calibration.ece is None else f"{calibration.ece:.3f}"
        brier = "n/a" if calibration.brier is None else f"{calibration.brier:.3f}"
        title = (
            f"{report.judge} on {data.path.name}: {calibration.points} rows, one point per row "
            f"(ECE {ece}, Brier {brier}; a constant 0.5 scores Brier 0.25)"
        )
        plot = reliability_plot(calibration.bins, plot_path, title=title, xlabel=calibration.label)
        calibration.plot = str(plot)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if save_calibration_path is not None:
        save_fit(report, save_calibration_path)
    return report


def save_fit(report: JudgeEvaluation, path: Path) -> None:
    """Save the evaluation's temperature fit for runs to reuse (`judge.calibration: FILE`); a baseline's
    report, or a fit that does not apply (too few rows, no signal), raises `ConfigError` in one line."""
    if report.calibration_fit is None:
        raise ConfigError(f"--save-calibration {path}: a baseline has no judge labels to calibrate")
    data = report.data.path if report.data is not None else None
    save_calibration(report.calibration_fit, path, mode=report.mode, data=data)


async def _judge_served(
    args: dict[str, Any],
    data: LabelledData,
    constitution: Constitution,
    config: RunConfig,
    quiet: bool,
    store: Stage[Judgment] | None,
) -> tuple[list[RowResult], list[Judgment], str]:
    from rlaif.backends.serving import make_backend

    backend = make_backend(args, quiet=quiet)
    try:
        await backend.resolve_model()
        rows, judgments = await judge_rows(
            backend,
            data.pairs,
            constitution=constitution,
            config=config.judge,
            seed=config.seed,
            quiet=quiet,
            store=store,
            templates=config.template_set(),
        )
    finally:
        await backend.aclose()
    return rows, judgments, backend.label
