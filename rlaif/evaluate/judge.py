"""How far to trust the judge: agreement with human labels on a labelled pairwise set.

Reads hh-rlhf transcript rows (`{"chosen", "rejected"}` full transcripts, split at the last
`\\n\\nAssistant:`, prefixes checked) or `{prompt, chosen, rejected}` rows, and judges every pair with
the configured judge, or answers with a baseline (random, first position, shorter or longer reply)
through the same report. The human-chosen reply is shown in position A for a seeded half of the
rows and in B for the other half, so one-order agreement is not confounded with position bias.

The report: agreement (one order, both orders averaged) with a Wilson 95% interval, order-consistency,
same-position rate, parse failures, agreement per principle, calibration (ECE and a reliability
plot) and injection flags. A tie or an unreadable verdict never counts as agreement.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.backends.bundled import cache_dir
from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig, RunConfig
from rlaif.errors import ConfigError
from rlaif.evaluate.stats import expected_calibration_error, reliability_bins, reliability_plot, wilson
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.labelled import LabelledData, LabelledPair, load_labelled_pairs
from rlaif.judging.engine import judge_items, judge_stats, judgment_id
from rlaif.judging.labels import combine_orders, position_means, side
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles, judge_nonce
from rlaif.records import Constitution, Judgment, derive_seed
from rlaif.store import Stage

__all__ = [
    "BASELINES",
    "LabelledData",
    "LabelledPair",
    "RowResult",
    "baseline_rows",
    "chosen_first",
    "evaluate_judge",
    "judge_rows",
    "load_labelled_pairs",
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
    members: tuple[tuple[tuple[str, ...], float | None], ...] = ()
    """(principle ids, P(chosen)) per ensemble member."""
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
    if judgment.mode == "pointwise":
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
    groups: dict[tuple[str, ...], list[Any]] = {}
    for order in judgment.orders:
        groups.setdefault(order.principle_ids, []).append(order)
    members = tuple((ids, combine_orders(orders, chosen_id)[0]) for ids, orders in groups.items())
    return RowResult(
        line=pair.line,
        chosen_first=first,
        p_orders=p_orders,
        p_chosen=p_chosen,
        consistent=judgment.consistent,
        same_position=same_position,
        unparsed_orders=sum(o.status == "unparsed" for o in judgment.orders),
        error_orders=sum(o.status == "error" for o in judgment.orders),
        members=members,
        flagged=tuple(sorted({f for flags in judgment.flags.values() for f in flags})),
    )


async def judge_rows(
    backend: Backend,
    pairs: Sequence[LabelledPair],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int = 0,
    quiet: bool = False,
    store: Stage[Judgment] | None = None,
) -> tuple[list[RowResult], list[Judgment]]:
    """Judge every labelled pair with the configured judge; the chosen reply is A for a seeded half.

    With a `store`, each judgment is appended as it completes and those already stored are reused,
    so an interrupted evaluation resumes where it stopped.
    """
    positions = chosen_first(len(pairs), seed=seed)
    items = []
    for pair, first in zip(pairs, positions, strict=True):
        chosen = Candidate(f"row{pair.line}:chosen", pair.chosen)
        rejected = Candidate(f"row{pair.line}:rejected", pair.rejected)
        a, b = (chosen, rejected) if first else (rejected, chosen)
        members = draw_principles(constitution, config, seed=seed, key=f"evaluate:{pair.line}")
        items.append(JudgeItem(f"row{pair.line}", pair.conversation, a, b, members))
    made = await judge_items(
        backend,
        items,
        constitution=constitution,
        config=config,
        seed=seed,
        done={j.id for j in store} if store is not None else set(),
        on_judgment=None if store is None else lambda judgment: _store(store, judgment),
        quiet=quiet,
        description="evaluate",
    )
    by_id = {j.id: j for j in made} | ({j.id: j for j in store} if store is not None else {})
    nonce = judge_nonce(seed)
    judgments = [
        by_id[judgment_id(item, model=backend.label, config=config, constitution=constitution, nonce=nonce)]
        for item in items
    ]
    rows = [
        _row(pair, first, judgment, f"row{pair.line}:chosen")
        for pair, first, judgment in zip(pairs, positions, judgments, strict=True)
    ]
    return rows, judgments


def _store(store: Stage[Judgment], judgment: Judgment) -> None:
    store.append([judgment])


def _rate(hits: int, total: int) -> dict[str, Any]:
    return {"value": hits / total if total else None, "n": total, "ci95": wilson(hits, total)}


def summarize(rows: Sequence[RowResult], data: LabelledData | None = None) -> dict[str, Any]:
    """The evaluation report (JSON-ready); `agreement` is a fraction of all rows."""
    n = len(rows)
    agree = sum(r.p_chosen is not None and r.p_chosen > 0.5 for r in rows)
    one = sum(bool(r.p_orders) and r.p_orders[0] is not None and r.p_orders[0] > 0.5 for r in rows)
    two_rows = [r for r in rows if len(r.p_orders) == 2]
    decisive = [r for r in rows if r.p_chosen is not None and r.p_chosen != 0.5]
    both = [r for r in rows if r.consistent is not None]
    first_verdicts = [r for r in rows if r.p_orders and r.p_orders[0] is not None and r.p_orders[0] != 0.5]
    # In the first order the chosen reply is at A when chosen_first: the verdict picks A when it
    # prefers the chosen reply there, or the rejected one otherwise.
    picks_a = sum((r.p_orders[0] > 0.5) == r.chosen_first for r in first_verdicts)  # type: ignore[operator]
    per_principle: dict[str, list[bool]] = {}
    for r in rows:
        for ids, p in r.members:
            for pid in ids:
                per_principle.setdefault(pid, []).append(p is not None and p > 0.5)
    bins = reliability_bins([r.p_chosen for r in rows if r.p_chosen is not None])
    two_orders = len(two_rows) == n and n > 0
    report: dict[str, Any] = {
        "n": n,
        "agreement": agree / n if n else None,
        "agreement_ci95": wilson(agree, n),
        "agreement_method": "two orders averaged" if two_orders else "one order",
        "agreement_one_order": _rate(one, n),
        "agreement_two_orders": _rate(agree, n) if two_orders else None,
        "agreement_decisive": _rate(sum(r.p_chosen > 0.5 for r in decisive), len(decisive)),  # type: ignore[operator]
        "ties": sum(r.p_chosen == 0.5 for r in rows),
        "order_consistency": _rate(sum(bool(r.consistent) for r in both), len(both)) if both else None,
        "same_position_rate": _rate(sum(bool(r.same_position) for r in both), len(both)) if both else None,
        "first_order_picks_a": _rate(picks_a, len(first_verdicts)),
        "parse": {
            "unparsed_orders": sum(r.unparsed_orders for r in rows),
            "error_orders": sum(r.error_orders for r in rows),
            "rows_without_label": sum(r.p_chosen is None for r in rows),
        },
        "per_principle": {pid: _rate(sum(hits), len(hits)) for pid, hits in sorted(per_principle.items())},
        "calibration": {"ece": expected_calibration_error(bins), "bins": [b.as_dict() for b in bins]},
        "flagged_rows": sum(bool(r.flagged) for r in rows),
    }
    if data is not None:
        report["data"] = {
            "path": str(data.path),
            "format": data.format,
            "rows": len(data.pairs),
            "prefix_mismatch_lines": data.mismatched,
            "empty_chosen": sum(not p.chosen.strip() for p in data.pairs),
            "empty_rejected": sum(not p.rejected.strip() for p in data.pairs),
        }
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
    quiet: bool = False,
) -> dict[str, Any]:
    """Evaluate the config's judge (`judge.model`, else `model`) or a baseline on a labelled file.

    Writes the report to `json_path` and the reliability plot to `plot_path` (default: next to the
    JSON, `NAME.reliability.png`) when given. Judgments are appended to `judgments_path` (default:
    next to the JSON, `NAME.judgments.jsonl`) as they complete, so rerunning the same evaluation
    resumes instead of starting over. Returns the report.
    """
    data = load_labelled_pairs(data_path, limit=limit)
    started = time.perf_counter()
    judge_label = f"baseline:{baseline}" if baseline else ""
    if baseline:
        rows = baseline_rows(data.pairs, baseline, seed=config.seed)
        stats = None
    else:
        candidate = config.resolve(config.constitution)
        constitution = load_constitution(
            candidate if candidate.exists() else find_constitution(config.constitution)
        )
        log_dir = cache_dir() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        if judgments_path is None and json_path is not None:
            judgments_path = json_path.with_name(json_path.stem + ".judgments.jsonl")
        store = None
        if judgments_path is not None:
            judgments_path.parent.mkdir(parents=True, exist_ok=True)
            store = Stage(judgments_path, Judgment)
        reused = len(store) if store is not None else 0
        with _eval_backend(config, log_dir) as args:
            engine = "ray.data.llm" if "ray" in args else "vLLM server"
            rows, judgments, judge_label = asyncio.run(
                _judge_served(args, data, constitution, config, quiet, store)
            )
        stats = judge_stats(judgments)
    report = summarize(rows, data)
    report = {
        "judge": judge_label,
        "baseline": baseline,
        "mode": None if baseline else config.judge.mode,
        "seed": config.seed,
        **report,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if not baseline:
        report["judge_config"] = config.judge.model_dump(mode="json", exclude={"model"})
        report["constitution"] = config.constitution
        report["orders_parsed"] = stats.parsed_orders if stats else 0
        report["judgments_file"] = None if judgments_path is None else str(judgments_path)
        report["engine"] = engine
        report["judgments_stored_before"] = reused  # > 0: a resumed run, `seconds` covers only the rest
    if plot_path is None and json_path is not None:
        plot_path = json_path.with_name(json_path.stem + ".reliability.png")
    if plot_path is not None:
        bins = reliability_bins([r.p_chosen for r in rows if r.p_chosen is not None])
        ece = report["calibration"]["ece"]
        title = (
            f"{judge_label} on {data.path.name} (n={len(rows)}, ECE={'n/a' if ece is None else f'{ece:.3f}'})"
        )
        report["calibration"]["plot"] = str(reliability_plot(bins, plot_path, title=title))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


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
        )
    finally:
        await backend.aclose()
    return rows, judgments, backend.label
