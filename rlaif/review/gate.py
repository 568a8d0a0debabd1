"""The human-review gate: training starts only when people agree with the AI judge often enough.

Every training entry point calls `check_gate` first; it reads the run's `reviews.jsonl` and the
config's `review.gate` and raises `GateError` (unless forced) with what is missing and how to fix it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rlaif.config import RunConfig
from rlaif.errors import GateError
from rlaif.records import ReviewDecision
from rlaif.review.agreement import ai_agreement, evaluate_gate
from rlaif.review.reports import GateStatus
from rlaif.review.session import REVIEWS, current_decisions
from rlaif.store import RunDir

__all__ = ["check_gate"]

log = logging.getLogger(__name__)


def check_gate(run_dir: str | Path | RunDir, config: RunConfig, *, force: bool = False) -> GateStatus | None:
    """Raise `GateError` when the configured review gate fails; returns its status (None: no gate).

    With `force=True` a failing gate is logged as a warning and training may go on.
    """
    gate = config.review.gate
    if gate is None:
        return None
    # The pipeline holds the run's lock already; reading decisions needs none.
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir, lock=False)
    decisions = run.stage(REVIEWS, ReviewDecision)
    flat = [d for by in current_decisions(decisions).values() for d in by.values()]
    status = evaluate_gate(ai_agreement(flat), gate)
    assert status is not None
    if status.passed:
        return status
    message = (
        f"review gate failed for {run.path}: {'; '.join(status.reasons)} "
        f"(review.gate: {gate.metric} >= {gate.min_agreement} on >= {gate.min_reviewed} pairs). "
        f"Review more pairs with `rlaif review terminal {run.path}` (or `review serve`, `review hook`, "
        "`review import`), see `rlaif review report`, or pass --force to train anyway"
    )
    if force:
        log.warning("%s; --force given: training anyway", message)
        return status
    raise GateError(message)
