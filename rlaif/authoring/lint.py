"""`rlaif constitution lint`: what in a constitution that loads may still not work as its author meant.

Each rule is a function from the loaded constitution (and where its parts are in the file) to warnings;
`RULES` lists them in the order they run. Lines come from the loader's own line finder
(`locate_constitution`), so a warning points where a load error would.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

from rlaif.authoring.preview import TokenCounter, principle_requests
from rlaif.authoring.reports import LintReport, LintWarning
from rlaif.config import JudgeConfig, ReviseConfig
from rlaif.inputs.constitution import load_constitution, locate_constitution
from rlaif.judging.checks import run_check
from rlaif.records import Constitution, Message, Principle
from rlaif.reports import percent
from rlaif.yamlfile import Locate

__all__ = ["RULES", "Lint", "lint_constitution"]

# A judge question asks which of two answers is better: "Which response ...", "Compare ...". A yes/no
# question about one answer ("Is the response harmful?") gives the A/B judge nothing to choose between.
_COMPARES = re.compile(r"(?i)\b(which|whichever|compare|comparing|comparison)\b")
NEAR_DUPLICATE = 90.0
"""rapidfuzz token-sort ratio (0-100) at or above which two principles count as near-duplicates."""
MIN_ROOM_SHARE = 0.25
"""A request whose fixed part and generated tokens leave less than this share of the context for the
conversation is flagged."""


@dataclass(frozen=True)
class Lint:
    """What the rules read: the constitution, its lines, and the settings it runs under."""

    constitution: Constitution
    file: Path
    locate: Locate
    revise: ReviseConfig
    judge: JudgeConfig
    answer_tokens: int
    """Most tokens of a first answer (`generation.max_tokens`)."""
    max_context: int
    counter: TokenCounter
    min_share: float

    def warning(
        self, rule: str, loc: tuple[object, ...], message: str, principle: str | None = None
    ) -> LintWarning:
        return LintWarning(
            rule=rule, file=str(self.file), line=self.locate(loc), principle_id=principle, message=message
        )

    def principles(self) -> Iterator[tuple[int, Principle]]:
        return iter(enumerate(self.constitution.principles))


def judge_question(lint: Lint) -> Iterator[LintWarning]:
    for i, p in lint.principles():
        if p.judge_question is not None and not _COMPARES.search(p.judge_question):
            yield lint.warning(
                "judge-question", ("principles", i, "judge_question"),
                f"judge_question {p.judge_question!r} does not ask for a comparison: the judge picks A or "
                "B, so ask \"Which response ...?\"",
                p.id,
            )  # fmt: skip


def context(lint: Lint) -> Iterator[LintWarning]:
    # The fixed part of each request is measured with an empty conversation and empty answers, rendered
    # by the pipeline's own functions; the answers the model writes are reserved at their max_tokens.
    empty = (Message(role="user", content=""),)
    revise_out, answer = lint.revise.max_tokens, lint.answer_tokens
    for i, p in lint.principles():
        requests = principle_requests(
            lint.constitution, p, revise=lint.revise, judge=lint.judge, seed=0, conversation=empty,
            answers=("", ""), critique="",
        )  # fmt: skip
        for name, messages, _ in requests:
            if name == "critique" or name == "judge (B first)":
                continue  # the revision holds the critique request; the judge's orders are the same size
            fixed = lint.counter.messages(messages)
            reserved = answer + 2 * revise_out if name == "revision" else 2 * answer
            room = lint.max_context - fixed - reserved
            if room >= MIN_ROOM_SHARE * lint.max_context:
                continue
            what = "critique and revision requests" if name == "revision" else "judge question"
            field = "critique_request" if name == "revision" else "judge_question"
            few = f", {lint.revise.few_shot} few-shot example(s)" if name == "revision" else ""
            outcome = (
                "nothing is left for the conversation"
                if room <= 0
                else f"only {room} are left for the conversation"
            )
            yield lint.warning(
                "context", ("principles", i, field),
                f"the {what} take {fixed} tokens with the template{few}; with {reserved} reserved for the "
                f"answers written, {outcome} in a {lint.max_context}-token context "
                f"({lint.counter.description}): shorten them, show fewer examples, or raise the context",
                p.id,
            )  # fmt: skip


def _text(p: Principle) -> str:
    return " ".join(t for t in (p.critique_request, p.revision_request, p.judge_question) if t)


def _same_requests(a: Principle, b: Principle) -> float | None:
    """The lower similarity of the critique and of the revision requests when both are near-duplicates,
    field by field: joined with a judge question that differs, two principles whose requests differ by
    one character scored under the threshold, yet revise the same way."""
    pairs = [(a.critique_request, b.critique_request), (a.revision_request, b.revision_request)]
    if not all(x and y for x, y in pairs):
        return None
    score = min(fuzz.token_sort_ratio(x, y) for x, y in pairs)
    return score if score >= NEAR_DUPLICATE else None


def near_duplicate(lint: Lint) -> Iterator[LintWarning]:
    ps = lint.constitution.principles
    for i, p in enumerate(ps):
        for j in range(i):
            score = fuzz.token_sort_ratio(_text(ps[j]), _text(p))
            if score >= NEAR_DUPLICATE:
                yield lint.warning(
                    "near-duplicate", ("principles", i),
                    f"nearly the same text as {ps[j].id!r} (similarity {score:.0f}/100): the two are one "
                    "principle drawn twice as often; merge them or make them differ",
                    p.id,
                )  # fmt: skip
            elif (fields := _same_requests(ps[j], p)) is not None:
                yield lint.warning(
                    "near-duplicate", ("principles", i),
                    f"critique_request and revision_request nearly the same as {ps[j].id!r}'s (similarity "
                    f"{fields:.0f}/100 or more each): the two revise alike, one principle drawn twice as "
                    "often; merge them or make the requests differ",
                    p.id,
                )  # fmt: skip


def no_judge_question(lint: Lint) -> Iterator[LintWarning]:
    if not lint.judge.enabled:
        return
    for i, p in lint.principles():
        if p.judge_question is None:
            yield lint.warning(
                "no-judge-question", ("principles", i),
                "no judge_question: with judging on, this principle shapes revisions but the judge never "
                "asks about it; add a judge_question, or ignore this if that is meant",
                p.id,
            )  # fmt: skip


def rarely_sampled(lint: Lint) -> Iterator[LintWarning]:
    pools = (("critique", lint.constitution.for_critique()), ("judge", lint.constitution.for_judging()))
    for i, p in lint.principles():
        for purpose, pool in pools:
            if p not in pool:
                continue
            share = p.weight / sum(q.weight for q in pool)
            if share < lint.min_share:
                yield lint.warning(
                    "rarely-sampled", ("principles", i, "weight"),
                    f"weight {p.weight:g} of {sum(q.weight for q in pool):g} in all: drawn to {purpose} in "
                    f"{percent(share, 2)} of draws (about 1 in {round(1 / share):,}); raise its weight, or "
                    "remove it",
                    p.id,
                )  # fmt: skip


def tag_once(lint: Lint) -> Iterator[LintWarning]:
    import difflib

    uses = Counter(tag for p in lint.constitution.principles for tag in set(p.tags))
    if len(lint.constitution.principles) < 2:
        return
    for i, p in lint.principles():
        for tag in p.tags:
            if uses[tag] == 1:
                others = [t for t in uses if t != tag]
                close = difflib.get_close_matches(tag, others, n=1, cutoff=0.8)
                guess = f" (a typo of {close[0]!r}?)" if close else ""
                yield lint.warning(
                    "tag-once", ("principles", i, "tags"),
                    f"tag {tag!r} is used by this principle only{guess}: a per-tag report of it is this one "
                    "principle (fine if that is meant)",
                    p.id,
                )  # fmt: skip


def example_check(lint: Lint) -> Iterator[LintWarning]:
    # Few-shot examples are shown before every critique, whatever principle is drawn: a revision that
    # fails a principle's check teaches the model the opposite of that check.
    checked = [p for p in lint.constitution.principles if p.check is not None]
    for j, example in enumerate(lint.constitution.examples):
        conversation = (Message(role="user", content=example.prompt),)
        for p in checked:
            outcome = run_check(p, conversation, example.revision)
            if outcome.error is not None:
                problem = f"its check could not decide ({outcome.error})"
            elif outcome.passed is False:
                problem = f"fails its check ({', '.join(outcome.failed)})"
            else:
                continue
            yield lint.warning(
                "example-check", ("examples", j, "revision"),
                f"the revision of example {j + 1} {problem} under principle {p.id!r}; the example teaches "
                "the opposite: fix the example, or the check",
                p.id,
            )  # fmt: skip


Rule = Callable[[Lint], Iterator[LintWarning]]
RULES: dict[str, Rule] = {
    "judge-question": judge_question,
    "context": context,
    "near-duplicate": near_duplicate,
    "no-judge-question": no_judge_question,
    "rarely-sampled": rarely_sampled,
    "tag-once": tag_once,
    "example-check": example_check,
}
"""Every rule, by the name its warnings carry, in the order they run."""


def lint_constitution(
    path: str | Path,
    *,
    counter: TokenCounter,
    max_context: int,
    revise: ReviseConfig | None = None,
    judge: JudgeConfig | None = None,
    answer_tokens: int = 128,
    min_share: float = 0.01,
) -> LintReport:
    """Run every rule on a constitution file; the warnings sorted by line.

    Args:
        path: The file (it must load: `load_constitution` errors are raised as they are).
        counter: Counts the tokens of the rendered requests.
        max_context: The model's context in tokens (`model.server.max_model_len`).
        revise: Critique settings (few-shot examples, max_tokens); the defaults when None.
        judge: Judge settings (enabled, template, few-shot); the defaults when None.
        answer_tokens: Most tokens of a first answer (`generation.max_tokens`).
        min_share: A principle drawn in fewer than this share of draws is flagged.
    """
    path = Path(path)
    constitution = load_constitution(path, import_checks=True)
    lint = Lint(
        constitution=constitution, file=path, locate=locate_constitution(path),
        revise=revise or ReviseConfig(), judge=judge or JudgeConfig(), answer_tokens=answer_tokens,
        max_context=max_context, counter=counter, min_share=min_share,
    )  # fmt: skip
    warnings = [w for rule in RULES.values() for w in rule(lint)]
    return LintReport(
        file=str(path),
        constitution=f"{constitution.name} v{constitution.version}",
        principles=len(constitution.principles),
        max_context=max_context,
        tokens=counter.description,
        warnings=sorted(warnings, key=lambda w: w.line or 0),
    )
