"""A Python reviewer for `rlaif review hook`: any callable that takes review items and returns answers.

Name it in the run config (a `path/file.py:function`, relative to the config, or `module:function`):

    review:
      hook: review_callback.py:review

then run `rlaif review hook RUN_DIR --config CONFIG`. Each item shows the two answers as `first`
and `second` in a seeded random order, with the AI's choice hidden unless `review.show_ai_verdict`
is set. Return one answer per item you decide ("first", "second", "tie" or "flag", an optional
note); items you leave out stay pending. A real hook would call a stronger model, a rules engine
or a labelling service; this one only flags empty answers and otherwise prefers the shorter one.
"""

from __future__ import annotations

from rlaif.records import ReviewAnswer, ReviewItem


def review(items: list[ReviewItem]) -> list[ReviewAnswer]:
    """Flag a pair with an empty answer; otherwise prefer the shorter answer, tie on equal length."""
    answers = []
    for item in items:
        first, second = item.first.strip(), item.second.strip()
        if not first or not second:
            answers.append(ReviewAnswer(pair_id=item.pair_id, verdict="flag", note="empty answer"))
        elif len(first) == len(second):
            answers.append(ReviewAnswer(pair_id=item.pair_id, verdict="tie"))
        else:
            verdict = "first" if len(first) < len(second) else "second"
            answers.append(ReviewAnswer(pair_id=item.pair_id, verdict=verdict, note="shorter answer"))
    return answers
