"""Pairs, run directories and decisions for the review tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlaif.config import ReviewConfig
from rlaif.records import Message, PreferencePair, Provenance, ReviewDecision
from rlaif.review.session import ReviewSettings, new_decision
from rlaif.store import RunDir

PROVENANCE = Provenance(model="fake", template="judge", template_hash="t0")


def make_pair(
    index: int,
    *,
    principle: str | tuple[str, ...] = "harm",
    score: float = 0.8,
    consistent: bool | None = True,
    source: str = "judge",
    chosen: str | None = None,
    rejected: str | None = None,
    prompt: str | None = None,
) -> PreferencePair:
    principles = (principle,) if isinstance(principle, str) else principle
    return PreferencePair(
        id=f"pair-{index:04d}",
        prompt_id=f"prompt-{index}",
        prompt=(Message(role="user", content=prompt or f"question {index}?"),),
        chosen=chosen if chosen is not None else f"good answer {index}",
        rejected=rejected if rejected is not None else f"bad answer {index}",
        score=score,
        source=source,  # type: ignore[arg-type]
        source_id=f"jud-{index}",
        principle_ids=principles,
        consistent=consistent,
        provenance=PROVENANCE,
    )


def make_pairs(count: int, *, principles: Sequence[str] = ("harm", "honest")) -> list[PreferencePair]:
    return [
        make_pair(i, principle=principles[i % len(principles)], score=0.5 + (i % 50) / 100)
        for i in range(count)
    ]


def run_with_pairs(path: Path, pairs: Sequence[PreferencePair]) -> RunDir:
    run = RunDir(path)
    run.stage("pairs", PreferencePair).append(pairs)
    return run


def settings(reviewer: str = "alice", *, seed: int = 0, **review: object) -> ReviewSettings:
    return ReviewSettings(config=ReviewConfig.model_validate(review), seed=seed, reviewer=reviewer)


def decision(pair: PreferencePair, verdict: str, reviewer: str = "alice", **kwargs: object) -> ReviewDecision:
    return new_decision(pair, reviewer=reviewer, verdict=verdict, **kwargs)  # type: ignore[arg-type]
