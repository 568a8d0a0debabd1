"""The judge's arithmetic: option probabilities, order averaging, clamping, ensembles and strict parsing.

Pure functions over `OrderVerdict`s, so the rules that turn model outputs into soft labels are tested
without a server. Nothing here guesses: an answer that is not a clean A or B stays `None`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from rlaif.records import OrderVerdict

__all__ = [
    "OPTIONS",
    "clamp",
    "combine_orders",
    "option_probability",
    "parse_score",
    "parse_verdict",
    "position_means",
    "score_label",
    "side",
]

OPTIONS = ("A", "B")

_VERDICT = re.compile(r"verdict\s*[:\-]?\s*[*_\"'`]*\s*[(\[]?\s*(?:response\s+)?([AB])\b", re.IGNORECASE)


def option_probability(logprobs: dict[str, float]) -> float | None:
    """P(A) renormalised over A and B from first-token top log-probs; None if neither appears.

    Tokenizers spell an option several ways ("A", " A", "(A"); their probabilities are summed.
    """
    mass = dict.fromkeys(OPTIONS, 0.0)
    for token, logprob in logprobs.items():
        key = token.strip().strip("()[]*").strip()
        if key in mass and logprob > -math.inf:
            mass[key] += math.exp(logprob)
    total = sum(mass.values())
    return mass["A"] / total if total > 0 else None


def side(p: float) -> int:
    """+1 when p prefers the first of two, -1 the second, 0 a tie."""
    return (p > 0.5) - (p < 0.5)


def clamp(p: float, band: tuple[float, float] | None) -> float:
    """p limited to `band` (Constitutional AI clamps chain-of-thought labels to 0.4–0.6); None: as is."""
    if band is None:
        return p
    low, high = band
    return min(max(p, low), high)


def _p_a(order: OrderVerdict, a_id: str) -> float | None:
    if order.p_first is None:
        return None
    return order.p_first if order.first_id == a_id else 1.0 - order.p_first


def position_means(orders: Sequence[OrderVerdict], a_id: str) -> tuple[float | None, float | None]:
    """Mean P(a is better) over the parsed orders that showed a first, and over those that showed it second.

    With an ensemble there are several verdicts per position; averaging within a position first makes
    the consistency check compare the two presentation orders, not individual principles.
    """
    first = [p for o in orders if o.first_id == a_id and (p := _p_a(o, a_id)) is not None]
    second = [p for o in orders if o.first_id != a_id and (p := _p_a(o, a_id)) is not None]
    return (sum(first) / len(first) if first else None, sum(second) / len(second) if second else None)


def score_label(score_a: float, score_b: float, *, low: float = 1.0, high: float = 10.0) -> float:
    """A soft label from two rubric scores: 0.5 plus the score difference over the scale's span, in [0, 1]."""
    return min(1.0, max(0.0, 0.5 + (score_a - score_b) / (2 * (high - low))))


def combine_orders(orders: Sequence[OrderVerdict], a_id: str) -> tuple[float | None, bool | None, str]:
    """(P(a is better), whether the two presentation orders agree, status) from all verdicts of a pair.

    Pairwise verdicts are averaged over every parsed order and ensemble member. Pointwise verdicts
    (those with a `score`) give the label from the mean score of each response. `consistent` is None
    unless both positions have a parsed verdict. Status: `ok` when every verdict parsed, `partial`
    when some did, `unparsed` when none did.
    """
    parsed = [o for o in orders if o.status == "ok"]
    status = "ok" if parsed and len(parsed) == len(orders) else ("partial" if parsed else "unparsed")
    if any(o.score is not None for o in orders):
        scores_a = [o.score for o in parsed if o.first_id == a_id and o.score is not None]
        scores_b = [o.score for o in parsed if o.first_id != a_id and o.score is not None]
        if not scores_a or not scores_b:
            return None, None, "partial" if parsed else "unparsed"
        return score_label(sum(scores_a) / len(scores_a), sum(scores_b) / len(scores_b)), None, status
    probs = [p for o in orders if (p := _p_a(o, a_id)) is not None]
    p_a = sum(probs) / len(probs) if probs else None
    first, second = position_means(orders, a_id)
    consistent = side(first) == side(second) if first is not None and second is not None else None
    return p_a, consistent, status


def parse_verdict(text: str) -> str | None:
    """The letter of a chain of thought's final "Verdict: A" / "Verdict: B"; None unless exactly one letter.

    Strict on purpose: no verdict line, or verdict lines naming both letters, give None (recorded as
    unparsed), never a guess from the prose.
    """
    letters = {match.group(1).upper() for match in _VERDICT.finditer(text)}
    return letters.pop() if len(letters) == 1 else None


def parse_score(text: str, *, low: int = 1, high: int = 10) -> int | None:
    """The integer `score` of a pointwise JSON answer, if it is valid JSON and within [low, high]."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    score = value.get("score") if isinstance(value, dict) else None
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        return None
    return score
