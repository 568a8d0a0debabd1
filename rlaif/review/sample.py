"""Which stored pairs people review: a count or fraction, seeded, by one of four strategies.

Each pair gets a seeded hash rank, so a sample is reproducible and stays the same when more pairs
are stored later (a new pair enters only if it outranks one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rlaif.config import ReviewSampleConfig
from rlaif.records import PreferencePair, derive_seed

__all__ = ["allocate", "reviewer_order", "sample_pairs", "stratum"]


def sample_pairs(
    pairs: Iterable[PreferencePair], config: ReviewSampleConfig, *, seed: int
) -> list[PreferencePair]:
    """The pairs to review, in the order to review them.

    Each pair gets a seeded hash rank, so the sample is reproducible and stays the same when more
    pairs are stored later (a new pair enters only if it outranks one). `stratified` gives every
    principle (the set of a pair's principle ids) at least one pair, the rest in proportion to its
    size; `lowest_confidence` orders by the AI's P(chosen); `inconsistent_first` puts pairs whose
    two judge orders disagreed first, the rest at random.
    """
    pool = [p for p in pairs if p.source in config.sources]
    if config.fraction is not None:
        k = min(len(pool), math.ceil(config.fraction * len(pool)))
    else:
        k = min(len(pool), config.size if config.size is not None else len(pool))

    def rank(pair: PreferencePair) -> tuple[int, str]:
        return derive_seed(seed, f"review-sample:{pair.id}"), pair.id

    if config.strategy == "lowest_confidence":
        return sorted(pool, key=lambda p: (p.score, rank(p)))[:k]
    if config.strategy == "inconsistent_first":
        return sorted(pool, key=lambda p: (p.consistent is not False, rank(p)))[:k]
    ranked = sorted(pool, key=rank)
    if config.strategy == "uniform":
        return ranked[:k]
    strata: dict[str, list[PreferencePair]] = {}
    for pair in ranked:
        strata.setdefault(stratum(pair), []).append(pair)
    quota = allocate({name: len(members) for name, members in strata.items()}, k, seed=seed)
    chosen = {p.id for name, members in strata.items() for p in members[: quota[name]]}
    return [p for p in ranked if p.id in chosen]


def reviewer_order(
    pairs: Sequence[PreferencePair], config: ReviewSampleConfig, *, reviewer: str, seed: int
) -> list[PreferencePair]:
    """The sample in the order one reviewer sees it.

    Every reviewer gets the same pairs (so their verdicts overlap and can be compared), in an order
    of their own, seeded by their name: reviewers working at once do not all start on the same
    pairs, and one reviewer's order is the same in every session. `lowest_confidence` and
    `inconsistent_first` keep their order: there the order is the point.
    """
    if config.strategy in ("lowest_confidence", "inconsistent_first"):
        return list(pairs)
    return sorted(pairs, key=lambda p: (derive_seed(seed, f"review-queue:{reviewer}:{p.id}"), p.id))


def stratum(pair: PreferencePair) -> str:
    """The principle stratum of a pair: its sorted distinct principle ids, or `(none)`."""
    return "+".join(sorted(set(pair.principle_ids))) or "(none)"


def allocate(sizes: dict[str, int], k: int, *, seed: int) -> dict[str, int]:
    """Split `k` draws over strata: one each first (seeded order if there are more strata than
    draws), then one at a time to the stratum furthest below its proportional share."""
    total = sum(sizes.values())
    alloc = dict.fromkeys(sizes, 0)
    order = sorted(sizes, key=lambda name: (derive_seed(seed, f"stratum:{name}"), name))
    left = min(k, total)
    for name in order[:left]:
        alloc[name] = 1
    left -= min(left, len(order))
    while left > 0:
        open_ = [n for n in order if alloc[n] < sizes[n]]
        best = max(open_, key=lambda n: sizes[n] * k / total - alloc[n])
        alloc[best] += 1
        left -= 1
    return alloc
