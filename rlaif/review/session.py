"""Human spot-checks: sample stored pairs, show them to reviewers, store their decisions.

A reviewer is anything that takes a batch of `ReviewItem`s and answers `ReviewAnswer`s: a person at
the terminal (`terminal.py`), in a browser (`web.py`), annotators through files
(`files.py`), or a Python callable named in the config (`review.hook: module:function`).
Items show the two answers in a seeded random order, so position does not give the AI's choice
away; answers (`first` / `second`) are turned back into the pair's frame (`chosen` / `rejected`)
here. Decisions are appended to `reviews.jsonl`; a reviewer's latest record for a pair is their
decision, so sessions stop and resume and undo is one more record. Several reviewers work at once,
each in their own process: sessions open the run directory without its lock and append under the
decisions file's own lock (`store.SharedStage`), and each reviewer sees the sample in an order
seeded by their name. Sampling is in `sample.py`,
Python reviewers in `hook.py`, agreement in `agreement.py`, the training gate in `gate.py`.
"""

from __future__ import annotations

import getpass
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from rlaif.config import ReviewConfig, RunConfig, reviewer_problem
from rlaif.errors import ConfigError, ReviewError, RlaifError
from rlaif.records import (
    PreferencePair,
    ReviewAnswer,
    ReviewDecision,
    ReviewItem,
    derive_seed,
    stable_id,
)
from rlaif.review.sample import reviewer_order, sample_pairs
from rlaif.store import RunDir, RunLayout

__all__ = [
    "ReviewSession",
    "ReviewSettings",
    "consensus",
    "current_decisions",
    "new_decision",
    "review_settings",
    "sampled_pairs",
    "shown_first",
    "to_pair_verdict",
]

REVIEWS = RunLayout.REVIEWS
"""Stage name of the decisions: `reviews.jsonl` in the run directory."""

Verdict = Literal["chosen", "rejected", "tie", "flag"]
_SEQ = itertools.count()


# --- decisions ----------------------------------------------------------------------------------


def shown_first(pair_id: str, *, reviewer: str, seed: int) -> Literal["chosen", "rejected"]:
    """Which answer a reviewer sees first: a seeded coin per (pair, reviewer), stable across sessions."""
    return "chosen" if derive_seed(seed, f"review-order:{reviewer}:{pair_id}") & 1 else "rejected"


def to_pair_verdict(
    verdict: Literal["first", "second", "tie", "flag"], first: Literal["chosen", "rejected"]
) -> Verdict:
    """A positional answer in the pair's frame: `first` means whichever answer was shown first."""
    if verdict in ("tie", "flag"):
        return verdict
    picked_first = verdict == "first"
    return "chosen" if picked_first == (first == "chosen") else "rejected"


def new_decision(
    pair: PreferencePair,
    *,
    reviewer: str,
    verdict: Verdict,
    note: str = "",
    first: Literal["chosen", "rejected"] | None = None,
    ai_verdict_shown: bool = False,
    withdrawn: bool = False,
    via: str = "",
    session: str = "",
) -> ReviewDecision:
    """A decision record, stamped now; each act gets its own id (append-only history)."""
    created_at = datetime.now(UTC).isoformat(timespec="microseconds")
    fields = {
        "pair_id": pair.id,
        "reviewer": reviewer,
        "verdict": verdict,
        "note": note,
        "withdrawn": withdrawn,
        "session": session,
        "created_at": created_at,
    }
    return ReviewDecision(
        id=stable_id("review", seq=next(_SEQ), **fields),
        shown_first=first,
        principle_ids=pair.principle_ids,
        ai_verdict_shown=ai_verdict_shown,
        via=via,
        **fields,
    )


def current_decisions(decisions: Iterable[ReviewDecision]) -> dict[str, dict[str, ReviewDecision]]:
    """pair id → reviewer → that reviewer's standing decision (latest record, unless withdrawn)."""
    latest: dict[tuple[str, str], ReviewDecision] = {}
    for decision in decisions:
        latest[(decision.pair_id, decision.reviewer)] = decision
    standing: dict[str, dict[str, ReviewDecision]] = {}
    for (pair_id, reviewer), decision in latest.items():
        if not decision.withdrawn:
            standing.setdefault(pair_id, {})[reviewer] = decision
    return standing


def consensus(decisions: Iterable[ReviewDecision]) -> Verdict | None:
    """The people's verdict on one pair: `flag` if anyone flagged it, else the most common verdict,
    and `tie` when reviewers split evenly (a disputed pair is dropped from the export)."""
    counts = Counter(d.verdict for d in decisions)
    if not counts:
        return None
    if counts["flag"]:
        return "flag"
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return "tie"
    return ranked[0][0]  # type: ignore[return-value]


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewSettings:
    """The review config of a run, with what it leaves open filled in."""

    config: ReviewConfig
    seed: int
    reviewer: str
    questions: dict[str, str] = field(default_factory=dict)
    """Principle id → judge question, from the run's constitution when it can be found."""
    base_dir: Path = Path(".")
    """Folder a relative hook path is resolved against."""


def review_settings(
    run: RunDir, config: RunConfig | None = None, *, reviewer: str | None = None
) -> ReviewSettings:
    """Settings from `config`, else from the config saved in the run's manifest, else defaults."""
    if config is None:
        data = run.manifest.get("config") or {}
        try:
            review = ReviewConfig.model_validate(data.get("review") or {})
        except ValidationError as exc:
            raise ConfigError(
                f"{run.layout.manifest}: the saved review section is invalid "
                f"({exc.errors()[0]['msg']}); pass --config with a valid run config"
            ) from None
        seed, constitution, base_dir = int(data.get("seed", 0)), data.get("constitution"), Path.cwd()
    else:
        review, seed, constitution = config.review, config.seed, config.constitution
        base_dir = Path(config.base_dir)
    if reviewer is not None and (problem := reviewer_problem(reviewer)):
        raise ConfigError(f"--reviewer {reviewer!r} {problem}")
    name = reviewer or review.reviewer or _login()
    return ReviewSettings(
        config=review,
        seed=review.seed if review.seed is not None else seed,
        reviewer=name,
        questions=_questions(constitution, base_dir),
        base_dir=base_dir,
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


def _questions(constitution: str | None, base_dir: Path) -> dict[str, str]:
    from rlaif.inputs.constitution import load_constitution
    from rlaif.inputs.load import constitution_file

    if not constitution:
        return {}
    try:
        # Only the questions are read: no python check of a shared run folder is imported.
        loaded = load_constitution(constitution_file(constitution, base_dir), import_checks=False)
    except RlaifError:
        return {}  # the questions only help the reviewer; reviewing works without them
    return {p.id: p.judge_question for p in loaded.principles if p.judge_question}


def sampled_pairs(run: RunDir, settings: ReviewSettings) -> list[PreferencePair]:
    """The run's review sample, in the settings' reviewer's own order: stored pairs drawn by
    `review.sample`, leaving out the candidates the quality filters dropped (people's time goes to
    pairs that can reach training)."""
    stored = run.stage(RunLayout.PAIRS, PreferencePair)
    if not len(stored):
        raise ReviewError(
            f"{run.path} has no pairs to review (pairs.jsonl is empty or missing); "
            "run `rlaif export CONFIG` first"
        )
    dropped = _dropped_ids(run.layout.export / "dropped.jsonl")
    pairs = [p for p in stored if p.id not in dropped]
    if not pairs:
        raise ReviewError(
            f"every pair in {run.path} was dropped by the quality filters (see export/dropped.jsonl); "
            "nothing would reach training, so there is nothing to review"
        )
    sample = sample_pairs(pairs, settings.config.sample, seed=settings.seed)
    return reviewer_order(sample, settings.config.sample, reviewer=settings.reviewer, seed=settings.seed)


def _dropped_ids(path: Path) -> set[str]:
    """Pair ids in the export's `dropped.jsonl` (none when there is no export yet)."""
    if not path.exists():
        return set()
    return {json.loads(line)["pair_id"] for line in path.read_text().splitlines() if line.strip()}


# --- a reviewer's session ---------------------------------------------------------------------


class ReviewSession:
    """One reviewer working through a sample: what is pending, decide, skip, undo.

    Decisions are stored as they are made; pairs this reviewer decided before (in any session)
    are not asked again. Skips last for this session only.
    """

    def __init__(
        self,
        run: RunDir,
        pairs: Sequence[PreferencePair],
        settings: ReviewSettings,
        *,
        via: str,
    ):
        self.reviewer = settings.reviewer
        self.show_ai = settings.config.show_ai_verdict
        self.via = via
        self.store = run.stage(REVIEWS, ReviewDecision)
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        self.session = stable_id("session", reviewer=self.reviewer, via=via, started=now)
        self.pairs = {p.id: p for p in pairs}
        self.order = [p.id for p in pairs]
        self.first = {p.id: shown_first(p.id, reviewer=self.reviewer, seed=settings.seed) for p in pairs}
        self.items = {p.id: self._item(p, settings.questions) for p in pairs}
        self.skipped: set[str] = set()
        self._front: list[str] = []
        # This reviewer's standing decisions, oldest first: the undo order.
        self.decided: dict[str, ReviewDecision] = {}
        for pair_id, by_reviewer in current_decisions(self.store).items():
            if self.reviewer in by_reviewer:
                self.decided[pair_id] = by_reviewer[self.reviewer]
        self.decided = dict(sorted(self.decided.items(), key=lambda kv: kv[1].created_at))

    def _item(self, pair: PreferencePair, questions: dict[str, str]) -> ReviewItem:
        chosen_first = self.first[pair.id] == "chosen"
        return ReviewItem(
            pair_id=pair.id,
            prompt=pair.prompt,
            first=pair.chosen if chosen_first else pair.rejected,
            second=pair.rejected if chosen_first else pair.chosen,
            principle_ids=pair.principle_ids,
            principle_questions=tuple(questions.get(pid, "") for pid in pair.principle_ids),
            rubric_items=pair.rubric_items,
            ai_preferred=("first" if chosen_first else "second") if self.show_ai else None,
            ai_probability=pair.score if self.show_ai else None,
        )

    @property
    def total(self) -> int:
        """Pairs in the sample."""
        return len(self.order)

    @property
    def done(self) -> int:
        """Pairs of the sample this reviewer has decided."""
        return sum(pid in self.decided for pid in self.order)

    def pending(self) -> list[ReviewItem]:
        """Items still to review, in order (an undone pair comes back first)."""
        ids = self._front + [pid for pid in self.order if pid not in self._front]
        return [self.items[pid] for pid in ids if pid not in self.decided and pid not in self.skipped]

    def next_item(self) -> ReviewItem | None:
        """The next item to show, or None when the sample is done."""
        pending = self.pending()
        return pending[0] if pending else None

    def decide(self, answer: ReviewAnswer) -> ReviewDecision:
        """Store an answer, turned into the pair's frame."""
        if answer.pair_id not in self.pairs:
            raise ReviewError(f"pair {answer.pair_id!r} is not in this review sample")
        pair = self.pairs[answer.pair_id]
        if answer.reviewer and (problem := reviewer_problem(answer.reviewer)):
            raise ReviewError(f"pair {answer.pair_id!r}: reviewer {answer.reviewer!r} {problem}")
        decision = new_decision(
            pair,
            reviewer=answer.reviewer or self.reviewer,
            verdict=to_pair_verdict(answer.verdict, self.first[pair.id]),
            note=answer.note,
            first=self.first[pair.id],
            ai_verdict_shown=self.show_ai,
            via=self.via,
            session=self.session,
        )
        self.store.append([decision])
        if decision.reviewer == self.reviewer:
            self.decided.pop(pair.id, None)
            self.decided[pair.id] = decision
            self.skipped.discard(pair.id)
            if pair.id in self._front:
                self._front.remove(pair.id)
        return decision

    def skip(self, pair_id: str) -> None:
        """Leave a pair for later (this session only)."""
        self.skipped.add(pair_id)
        if pair_id in self._front:
            self._front.remove(pair_id)

    def undo(self) -> ReviewItem | None:
        """Take back this reviewer's most recent decision; returns its item, now first in line."""
        if not self.decided:
            return None
        pair_id, last = next(reversed(self.decided.items()))
        pair = self.pairs.get(pair_id) or _stub(last)
        withdrawal = new_decision(
            pair,
            reviewer=self.reviewer,
            verdict=last.verdict,
            first=last.shown_first,
            withdrawn=True,
            via=self.via,
            session=self.session,
        )
        self.store.append([withdrawal])
        del self.decided[pair_id]
        if pair_id not in self.items:
            return None  # decided in an older sample: withdrawn, but not shown again here
        self.skipped.discard(pair_id)
        self._front.insert(0, pair_id)
        return self.items[pair_id]


def _stub(decision: ReviewDecision) -> PreferencePair:
    """Enough of a pair to withdraw a decision on a pair that is no longer sampled."""
    from rlaif.records import Provenance

    return PreferencePair(
        id=decision.pair_id, prompt_id="", prompt=(), chosen="", rejected="", score=0.5,
        source="judge", source_id="", principle_ids=decision.principle_ids,
        provenance=Provenance(model="", template="", template_hash=""),
    )  # fmt: skip
