"""Agreement between the AI judge and people, and between people, with bootstrap intervals.

The AI's label is always "chosen" in a pair's own frame, so a kappa there would be degenerate.
Labels are compared instead in a fixed A/B orientation of each pair (a hash of the pair id makes
the chosen answer A for about half the pairs): the AI says A or B, a person says A, B or tie.
Accuracy is the share of a person's decisive verdicts (not tie, not flag) that pick the AI's
answer; kappa also counts ties. Flags (a broken pair) are left out of AI-human agreement and
reported as a rate; between reviewers they are a category like any other.

Every statistic is a function of per-pair count vectors summed over pairs, so the bootstrap
resamples pairs (all of a pair's decisions together) with one matrix product per batch.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rlaif.config import GateConfig
from rlaif.records import ReviewDecision, derive_seed
from rlaif.review.reports import (
    AgreementReport,
    AIAgreement,
    AIvsHuman,
    BootstrapSettings,
    CohenAgreement,
    FleissAgreement,
    GateStatus,
    ReviewerAgreement,
)
from rlaif.review.session import REVIEWS, ReviewSettings, current_decisions
from rlaif.store import RunDir, write_atomic

__all__ = [
    "agreement_report",
    "ai_agreement",
    "bootstrap_ci",
    "cohen_kappa",
    "evaluate_gate",
    "fleiss_kappa",
    "oriented",
    "pair_agreement",
    "reviewer_agreement",
    "write_report",
]

AI_CATEGORIES = ("A", "B", "tie")
ALL_CATEGORIES = ("A", "B", "tie", "flag")
Statistic = Callable[[np.ndarray], np.ndarray]


def oriented(verdict: str, pair_id: str) -> str:
    """A pair-frame verdict (`chosen`/`rejected`/`tie`/`flag`) as A/B/tie/flag."""
    if verdict in ("tie", "flag"):
        return verdict
    chosen_is_a = derive_seed(0, f"orient:{pair_id}") & 1 == 1
    return "A" if (verdict == "chosen") == chosen_is_a else "B"


# --- kappa ---------------------------------------------------------------------------------------


def cohen_kappa(table: Any) -> float | None:
    """Cohen's kappa of a k×k table of counts (rows: rater 1, columns: rater 2); None if undefined."""
    values = _cohen(np.asarray(table, dtype=float).reshape(1, -1))
    return _scalar(values[0])


def fleiss_kappa(counts: Any) -> float | None:
    """Fleiss' kappa of an items × categories table of counts; None if undefined.

    Items may have different numbers of raters (at least two each): each item's agreement is
    averaged with its own rater count, which is Fleiss' formula when every count is the same.
    """
    features = _fleiss_features(np.asarray(counts, dtype=float))
    return _scalar(_fleiss(features.sum(axis=0, keepdims=True))[0])


def _scalar(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _cohen(totals: np.ndarray) -> np.ndarray:
    k = int(round(np.sqrt(totals.shape[1])))
    table = totals.reshape(-1, k, k)
    n = table.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(table, axis1=1, axis2=2) / n
        expected = (table.sum(axis=2) * table.sum(axis=1)).sum(axis=1) / n**2
        kappa = (observed - expected) / (1 - expected)
    return np.where(np.isclose(expected, 1.0), np.nan, kappa)


def _accuracy(totals: np.ndarray) -> np.ndarray:
    table = totals.reshape(-1, 3, 3)  # AI (A, B, tie) × human (A, B, tie)
    agree = table[:, 0, 0] + table[:, 1, 1]
    decisive = table[:, :, :2].sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return agree / decisive


def _fleiss_features(counts: np.ndarray) -> np.ndarray:
    raters = counts.sum(axis=1)
    agreement = (counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))
    return np.column_stack([counts, agreement, np.ones(len(counts))])


def _fleiss(totals: np.ndarray) -> np.ndarray:
    counts, agreement, items = totals[:, :-2], totals[:, -2], totals[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / counts.sum(axis=1, keepdims=True)
        expected = (shares**2).sum(axis=1)
        kappa = (agreement / items - expected) / (1 - expected)
    return np.where(np.isclose(expected, 1.0), np.nan, kappa)


# --- bootstrap -------------------------------------------------------------------------------------


def bootstrap_ci(
    features: Any, statistic: Statistic, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `statistic` over rows of `features` (one row per unit).

    `statistic` maps summed feature rows (shape M × d) to M values; resamples where it is
    undefined (NaN) are dropped, and None is returned when most are.
    """
    rows = np.asarray(features, dtype=float)
    n = len(rows)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    values: list[np.ndarray] = []
    for start in range(0, n_boot, 256):  # bounded memory: 256 × n weights at a time
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=min(256, n_boot - start))
        values.append(statistic(weights @ rows))
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if len(finite) < n_boot / 2:
        return None
    tail = (1 - level) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


# --- AI vs people ------------------------------------------------------------------------------------


def _ai_features(decisions: Iterable[ReviewDecision]) -> tuple[np.ndarray, Counter[str]]:
    """One 3×3 AI-by-human count row per pair, and the verdict counts (flags included)."""
    rows: dict[str, np.ndarray] = {}
    verdicts: Counter[str] = Counter()
    for d in decisions:
        verdicts[d.verdict] += 1
        if d.verdict == "flag":
            continue
        ai = AI_CATEGORIES.index(oriented("chosen", d.pair_id))
        human = AI_CATEGORIES.index(oriented(d.verdict, d.pair_id))
        row = rows.setdefault(d.pair_id, np.zeros(9))
        row[ai * 3 + human] += 1
    return (np.array(list(rows.values())) if rows else np.zeros((0, 9))), verdicts


def ai_agreement(
    decisions: Iterable[ReviewDecision],
    *,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> AIAgreement:
    """Accuracy and Cohen's kappa of people against the AI; intervals when `n_boot` > 0."""
    decisions = list(decisions)
    features, verdicts = _ai_features(decisions)
    totals = features.sum(axis=0, keepdims=True) if len(features) else np.zeros((1, 9))
    total = sum(verdicts.values())
    accuracy_ci = kappa_ci = None
    if n_boot:
        accuracy_ci = bootstrap_ci(
            features, _accuracy, n_boot=n_boot, level=level, seed=derive_seed(seed, "accuracy")
        )
        kappa_ci = bootstrap_ci(features, _cohen, n_boot=n_boot, level=level, seed=derive_seed(seed, "kappa"))
    return AIAgreement(
        pairs=len(features),
        decisions=total,
        agree=verdicts["chosen"],
        disagree=verdicts["rejected"],
        ties=verdicts["tie"],
        flags=verdicts["flag"],
        accuracy=_scalar(_accuracy(totals)[0]),
        kappa=_scalar(_cohen(totals)[0]),
        tie_rate=verdicts["tie"] / total if total else None,
        flag_rate=verdicts["flag"] / total if total else None,
        accuracy_ci=accuracy_ci,
        kappa_ci=kappa_ci,
    )


# --- between people ------------------------------------------------------------------------------------


def reviewer_agreement(
    standing: dict[str, dict[str, ReviewDecision]], *, n_boot: int, level: float, seed: int
) -> ReviewerAgreement:
    """Cohen's kappa and counts for every two reviewers on their shared pairs; Fleiss' kappa with
    three or more."""
    reviewers = sorted({r for by in standing.values() for r in by})
    cohen: dict[str, CohenAgreement] = {}
    for first, second in itertools.combinations(reviewers, 2):
        shared = [
            (oriented(by[first].verdict, pid), oriented(by[second].verdict, pid))
            for pid, by in standing.items()
            if first in by and second in by
        ]
        cohen[f"{first} | {second}"] = pair_agreement(
            shared, n_boot=n_boot, level=level, seed=derive_seed(seed, first + second)
        )
    fleiss = None
    if len(reviewers) >= 3:
        counts = [
            [sum(oriented(d.verdict, pid) == c for d in by.values()) for c in ALL_CATEGORIES]
            for pid, by in standing.items()
            if len(by) >= 2
        ]
        if counts:
            features = _fleiss_features(np.array(counts, dtype=float))
            ci = bootstrap_ci(features, _fleiss, n_boot=n_boot, level=level, seed=derive_seed(seed, "fleiss"))
            fleiss = FleissAgreement(
                pairs=len(counts), kappa=_scalar(_fleiss(features.sum(0, keepdims=True))[0]), kappa_ci=ci
            )
    return ReviewerAgreement(reviewers=reviewers, cohen=cohen, fleiss=fleiss)


def pair_agreement(
    shared: list[tuple[str, str]], *, n_boot: int = 0, level: float = 0.95, seed: int = 0
) -> CohenAgreement:
    """Two reviewers' agreement from their oriented verdicts (A/B/tie/flag) on each shared pair.

    Raw agreement counts a tie against a pick as a disagreement and two ties as agreement; the
    decisive share leaves out every pair where either said tie or flag, and says how many those were.
    """
    k = len(ALL_CATEGORIES)
    features = np.zeros((len(shared), k * k))
    for row, (a, b) in enumerate(shared):
        features[row, ALL_CATEGORIES.index(a) * k + ALL_CATEGORIES.index(b)] = 1
    agree = sum(a == b for a, b in shared)
    decisive = [(a, b) for a, b in shared if a in ("A", "B") and b in ("A", "B")]
    decisive_agree = sum(a == b for a, b in decisive)
    return CohenAgreement(
        pairs=len(shared),
        agree=agree,
        raw_agreement=agree / len(shared) if shared else None,
        decisive=len(decisive),
        decisive_agree=decisive_agree,
        decisive_agreement=decisive_agree / len(decisive) if decisive else None,
        ties=sum("tie" in (a, b) for a, b in shared),
        flags=sum("flag" in (a, b) for a, b in shared),
        kappa=_scalar(_cohen(features.sum(0, keepdims=True))[0]) if shared else None,
        kappa_ci=bootstrap_ci(features, _cohen, n_boot=n_boot, level=level, seed=seed) if n_boot else None,
    )


# --- report and gate ---------------------------------------------------------------------------------


def evaluate_gate(overall: AIAgreement, gate: GateConfig | None) -> GateStatus | None:
    """Whether AI-human agreement (`ai_agreement` output) passes the gate, and why not."""
    if gate is None:
        return None
    value: float | None = getattr(overall, gate.metric)
    pairs = overall.pairs
    reasons = []
    if pairs < gate.min_reviewed:
        reasons.append(f"only {pairs} reviewed pairs count toward {gate.metric}, need {gate.min_reviewed}")
    if value is None:
        reasons.append(f"{gate.metric} is undefined (no decisive human verdicts yet)")
    elif value < gate.min_agreement:
        reasons.append(f"{gate.metric} {value:.3f} is below min_agreement {gate.min_agreement}")
    return GateStatus(
        passed=not reasons,
        metric=gate.metric,
        value=value,
        pairs=pairs,
        min_agreement=gate.min_agreement,
        min_reviewed=gate.min_reviewed,
        reasons=reasons,
    )


def agreement_report(
    decisions: Iterable[ReviewDecision],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    gate: GateConfig | None = None,
) -> AgreementReport:
    """Everything `rlaif review report` shows: counts, AI-human agreement overall and per principle,
    agreement between reviewers, and the gate."""
    standing = current_decisions(decisions)
    flat = [d for by in standing.values() for d in by.values()]
    boot = {"n_boot": n_boot, "level": level}
    principles = sorted({pid for d in flat for pid in d.principle_ids})
    overall = ai_agreement(flat, seed=seed, **boot)
    return AgreementReport(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        settings=BootstrapSettings(bootstrap=n_boot, confidence=level, seed=seed),
        reviewers=dict(Counter(d.reviewer for d in flat)),
        pairs_reviewed=len(standing),
        ai_vs_human=AIvsHuman(
            overall=overall,
            by_principle={
                pid: ai_agreement(
                    [d for d in flat if pid in d.principle_ids], seed=derive_seed(seed, pid), **boot
                )
                for pid in principles
            },
            by_reviewer={
                name: ai_agreement(
                    [d for d in flat if d.reviewer == name], seed=derive_seed(seed, name), **boot
                )
                for name in sorted({d.reviewer for d in flat})
            },
        ),
        between_reviewers=reviewer_agreement(standing, seed=seed, **boot),
        gate=evaluate_gate(overall, gate),
    )


def write_report(run: RunDir, settings: ReviewSettings) -> AgreementReport:
    """Compute the agreement report of a run and write it to `review_report.json`."""
    config = settings.config
    report = agreement_report(
        run.stage(REVIEWS, ReviewDecision),
        n_boot=config.bootstrap,
        level=config.confidence,
        seed=settings.seed,
        gate=config.gate,
    )
    write_atomic(run.layout.review_report, report.model_dump_json(indent=2))
    return report
