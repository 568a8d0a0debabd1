"""How many votes a judge ensemble is worth: Kish's effective number from the members' correlation.

k members that always agree are one vote; k independent members are k. Between, Kish's design effect
gives n_eff = k / (1 + (k - 1) * rho), rho the mean pairwise Pearson correlation of the members' labels
over the judged pairs. A member's label on a pair is its own P(A better) from its verdicts (both orders
averaged, as the pair's label is); its verdicts are those asked under its principle draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import combinations

from rlaif.evaluate.reports import EnsembleVotes
from rlaif.judging.labels import combine_orders
from rlaif.records import Judgment, OrderVerdict

__all__ = ["ensemble_votes", "member_labels", "votes_from_labels"]

MIN_ITEMS = 3
"""Fewest pairs a correlation is computed over."""


def member_labels(judgment: Judgment, members: int) -> list[float | None] | None:
    """Each member's P(A better) on one judgment (None where its verdicts did not parse); None when the
    judgment has no LLM verdicts or not `members` members (a row judged under one fixed principle).

    A member is the verdicts asked under one principle draw (`OrderVerdict.principle_ids`; the engine's
    draws are distinct); records without principle ids split into `members` equal consecutive runs.
    """
    orders = judgment.orders
    groups: dict[tuple[str, ...], list[OrderVerdict]] = {}
    for order in orders:
        groups.setdefault(order.principle_ids, []).append(order)
    if orders and set(groups) == {()} and len(orders) % members == 0:
        size = len(orders) // members
        runs = [list(orders[m * size : (m + 1) * size]) for m in range(members)]
    elif len(groups) == members and () not in groups:
        runs = list(groups.values())
    else:
        return None
    return [combine_orders(run, judgment.response_a_id)[0] for run in runs]


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r; 1 for two equal constant series, None when only one is constant (undefined)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx <= 1e-18 or syy <= 1e-18:
        both = sxx <= 1e-18 and syy <= 1e-18
        return (
            1.0
            if both and all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(x, y, strict=True))
            else None
        )
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / math.sqrt(sxx * syy)


def votes_from_labels(rows: Sequence[Sequence[float | None]], members: int) -> EnsembleVotes:
    """`EnsembleVotes` from one row of member labels per pair (rows with a missing label are left out)."""
    full = [list(map(float, r)) for r in rows if len(r) == members and all(v is not None for v in r)]  # type: ignore[arg-type]
    report = EnsembleVotes(members=members, items=len(full), left_out=len(rows) - len(full))
    if members < 2:
        report.effective_votes, report.note = 1.0, "one member: one vote"
        return report
    if len(full) < MIN_ITEMS:
        report.note = f"n/a: {len(full)} pairs with every member's label (a correlation needs {MIN_ITEMS})"
        return report
    found = [_pearson([r[i] for r in full], [r[j] for r in full]) for i, j in combinations(range(members), 2)]
    defined = [r for r in found if r is not None]
    report.pairs_undefined = len(found) - len(defined)
    if not defined:
        report.note = "n/a: every member pair has a constant member (no correlation is defined)"
        return report
    rho = sum(defined) / len(defined)
    report.mean_correlation = rho
    report.effective_votes = members / (1 + (members - 1) * max(rho, 0.0))
    report.note = (
        f"{members} judges, {report.effective_votes:.1f} effective votes (mean pairwise correlation "
        f"{rho:.2f} over {len(full)} pairs)"
    )
    return report


def ensemble_votes(judgments: Iterable[Judgment], members: int) -> EnsembleVotes:
    """The effective votes of a `judge.ensemble` of `members` over the judgments the LLM judge labelled."""
    rows = [labels for j in judgments if (labels := member_labels(j, members)) is not None]
    return votes_from_labels(rows, members)
