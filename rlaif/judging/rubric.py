"""Rubrics per prompt: checklist items drawn from a principle, each answer scored item by item.

For a prompt and a principle the judge writes k concrete yes/no requirements (`rubric_items.jinja`,
answered as a JSON list); each answer is then asked about each item (`rubric_score.jinja`, one token,
Yes or No) and scored P(yes) from the log-probs, as the pairwise judge reads A and B. Items that do not
separate the answers, or that rank labelled pairs the wrong way (the OpenRubrics filter), are dropped;
a principle's score is the mean of its kept items, a pair's label comes from its two scores.

Pure functions here (parsing, the probability, the filter, the label) and `RubricAsker`, which sends the
two kinds of request; the pipeline's stage is `rlaif.pipeline.rubric`. Nothing guesses: an item answer
that is not a list, or a verdict that is not a clean Yes or No, is recorded `unparsed`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlaif.backends.protocol import Backend, ChatRequest, ChatResult
from rlaif.config import JudgeConfig
from rlaif.errors import TemplateError
from rlaif.records import Message, OrderVerdict, Principle, derive_seed
from rlaif.templates import SHIPPED, Templates

__all__ = [
    "YES_NO",
    "RubricAsker",
    "check_items_template",
    "deciding_items",
    "filter_items",
    "items_schema",
    "mean_score",
    "parse_items",
    "RubricVerdict",
    "rubric_label",
    "rubric_verdict",
    "rubric_principles",
    "uses_rubric",
    "yes_probability",
]

YES_NO = ("Yes", "No")
"""The scorer's two answers."""

PASS = 0.5
"""An answer passes an item when P(yes) is above this."""


def uses_rubric(principle: Principle, config: JudgeConfig) -> bool:
    """Whether `principle` is judged by a checklist: its own `rubric` field, else `judge.rubric`."""
    if principle.rubric is not None:
        return principle.rubric
    return config.rubric == "per_prompt"


def rubric_principles(
    members: Sequence[Sequence[Principle]], config: JudgeConfig
) -> tuple[Principle, ...] | None:
    """The principles of a judgment, when every one of them is judged by a checklist; else None (the
    pairwise judge asks as before: a verdict is one kind or the other, never half of each)."""
    principles = tuple(dict.fromkeys(p for member in members for p in member))
    if not principles or not all(uses_rubric(p, config) for p in principles):
        return None
    return principles


def items_schema(k: int) -> dict[str, Any]:
    """Structured-output schema of an item-writing answer: a list of 1 to k non-blank strings."""
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 300},
        "minItems": 1,
        "maxItems": k,
    }


_SPACE = re.compile(r"\s+")


def _key(item: str) -> str:
    return _SPACE.sub(" ", item).strip().rstrip(".").casefold()


def parse_items(text: str, k: int) -> tuple[tuple[str, ...], int] | None:
    """(the items, repeats dropped) of a JSON list of 1 to k non-blank strings; None for anything else
    (not JSON, not a list, a non-string or blank entry, more than k): recorded `unparsed`, never guessed."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= k:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    kept: dict[str, str] = {}
    for v in value:
        kept.setdefault(_key(v), _SPACE.sub(" ", v).strip())
    return tuple(kept.values()), len(value) - len(kept)


def yes_probability(logprobs: Mapping[str, float]) -> float | None:
    """P(Yes) renormalised over Yes and No from first-token top log-probs (spellings such as " yes" and
    "YES" summed); None when neither appears."""
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in logprobs.items():
        key = token.strip().strip("()[]*\"'.").casefold()
        if key in mass and logprob > -math.inf:
            mass[key] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else None


def check_items_template(templates: Templates = SHIPPED) -> None:
    """Refuse an item-writing template that does not ask for a list: its answers could never parse."""
    sample = templates.render(
        "rubric_items",
        conversation=(Message(role="user", content="Hi"),),
        principle=Principle(id="sample", judge_question="Which response is kinder?"),
        k=3,
        nonce="0a1b2c3d",
    ).text
    if not re.search(r"\b(list|json|array)\b", sample, re.IGNORECASE):
        where = templates.files.get("rubric_items", "prompts/rubric_items.jinja")
        raise TemplateError(
            f"template {where}: the rubric item writer must ask for a JSON list of items (its answers are "
            "parsed as one); say so in the template"
        )


Scores = Mapping[str, Mapping[str, float | None]]
"""Response id -> item -> P(yes) (None where unparsed)."""


def filter_items(
    items: Sequence[str], scores: Scores, labelled: Iterable[tuple[str, str]] = ()
) -> tuple[list[str], list[tuple[str, str]]]:
    """(kept items, [(item, reason)] dropped) of one prompt and principle.

    Dropped: an item scored on fewer than two answers; one every scored answer passes, or every one
    fails (it separates nothing); and one that ranks the labelled (better, worse) pairs the wrong way
    more often than the right way (the OpenRubrics filter; pairs a check labelled, say).
    """
    pairs = list(labelled)
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for item in items:
        values = [p for by_item in scores.values() if (p := by_item.get(item)) is not None]
        if len(values) < 2:
            dropped.append((item, "scored on fewer than two answers"))
            continue
        passed = [p > PASS for p in values]
        if all(passed):
            dropped.append((item, f"every sampled answer passes ({len(values)})"))
            continue
        if not any(passed):
            dropped.append((item, f"every sampled answer fails ({len(values)})"))
            continue
        right = wrong = 0
        for better, worse in pairs:
            pb, pw = scores.get(better, {}).get(item), scores.get(worse, {}).get(item)
            if pb is None or pw is None or pb == pw:
                continue
            right += pb > pw
            wrong += pb < pw
        if wrong > right:
            dropped.append((item, f"ranks {wrong} of {right + wrong} labelled pairs the wrong way"))
            continue
        kept.append(item)
    return kept, dropped


def mean_score(items: Sequence[str], scores: Mapping[str, float | None]) -> float | None:
    """The mean P(yes) of one answer over `items` (each weighs the same); None when none was scored."""
    values = [p for item in items if (p := scores.get(item)) is not None]
    return sum(values) / len(values) if values else None


def weighted(scores: Sequence[tuple[float, float]]) -> float | None:
    """The weighted mean of (score, weight) pairs (principles by their weight); None when empty."""
    total = sum(w for _, w in scores)
    return sum(s * w for s, w in scores) / total if scores and total > 0 else None


def rubric_label(score_a: float, score_b: float) -> float:
    """P(a is better) from two scores in [0, 1]: 0.5 plus half their difference (all items met by a and
    none by b gives 1.0; equal scores a tie)."""
    return min(1.0, max(0.0, 0.5 + (score_a - score_b) / 2))


def deciding_items(
    items: Sequence[tuple[str, str]],
    a: Mapping[str, float | None],
    b: Mapping[str, float | None],
    *,
    top: int = 3,
) -> tuple[str, ...]:
    """Up to `top` of the (principle id, item) that moved the label toward its winner, widest gap first,
    as "principle: item"; () for a tie."""
    gaps = []
    for principle_id, item in items:
        pa, pb = a.get(item), b.get(item)
        if pa is not None and pb is not None and pa != pb:
            gaps.append((pa - pb, f"{principle_id}: {item}"))
    lead = sum(g for g, _ in gaps)
    if lead == 0:
        return ()
    toward = sorted((g for g in gaps if (g[0] > 0) == (lead > 0)), key=lambda g: -abs(g[0]))
    return tuple(text for _, text in toward[:top])


@dataclass
class RubricVerdict:
    """What a pair's checklists say: the label, one score "order" per answer, the deciding items, the kept
    items per principle and the dropped ones with their reasons."""

    p_a: float | None
    orders: tuple[OrderVerdict, ...]
    decided: tuple[str, ...]
    kept: dict[str, list[str]]
    dropped: list[tuple[str, str, str]]
    """(principle id, item, reason)."""
    unparsed: bool


def rubric_verdict(
    principles: Sequence[Principle],
    items: Mapping[str, Sequence[str]],
    scores: Mapping[str, Scores],
    a: str,
    b: str,
    *,
    unparsed: bool,
    labelled: Mapping[str, Sequence[tuple[str, str]]] | None = None,
) -> RubricVerdict:
    """The verdict on answers `a` and `b` from each principle's items (`items`: principle id -> items) and
    scores (principle id -> response id -> item -> P(yes), over every answer scored): the items filtered
    (`filter_items`, with `labelled` pairs per principle), each principle's score the mean of its kept
    items, the pair's the principles' mean weighted by `weight`, `p_a` from the two (`rubric_label`).
    `unparsed` (no item list parsed) gives `p_a` None; no kept item leaves a tie (0.5)."""
    per_a: list[tuple[float, float]] = []
    per_b: list[tuple[float, float]] = []
    kept_all: list[tuple[str, str]] = []
    kept: dict[str, list[str]] = {}
    dropped: list[tuple[str, str, str]] = []
    for principle in principles:
        table = scores.get(principle.id, {})
        kept[principle.id], gone = filter_items(
            items.get(principle.id, ()), table, (labelled or {}).get(principle.id, ())
        )
        dropped += [(principle.id, item, reason) for item, reason in gone]
        kept_all += [(principle.id, item) for item in kept[principle.id]]
        sa, sb = (
            mean_score(kept[principle.id], table.get(a, {})),
            mean_score(kept[principle.id], table.get(b, {})),
        )
        if sa is not None and sb is not None:
            per_a.append((sa, principle.weight))
            per_b.append((sb, principle.weight))
    total_a, total_b = weighted(per_a), weighted(per_b)
    flat = {r: {item: p for t in scores.values() for item, p in t.get(r, {}).items()} for r in (a, b)}
    ids = tuple(p.id for p in principles)
    orders = tuple(
        OrderVerdict(
            first_id=r,
            p_first=None,
            status="unparsed" if unparsed else "ok",
            principle_ids=ids,
            score=total,
            raw=f"{_met(flat[r], kept_all)} of {len(kept_all)} kept items met",
        )  # fmt: skip
        for r, total in ((a, total_a), (b, total_b))
    )
    if unparsed:
        p_a = None
    elif total_a is None or total_b is None:
        p_a = 0.5  # no item survived the filter: the rubric cannot tell the two apart, a tie
    else:
        p_a = rubric_label(total_a, total_b)
    decided = () if p_a is None else deciding_items(kept_all, flat[a], flat[b])
    return RubricVerdict(p_a, orders, decided, kept, dropped, unparsed)


def _met(scores: Mapping[str, float | None], items: Sequence[tuple[str, str]]) -> int:
    return sum((scores.get(item) or 0.0) > PASS for _, item in items)


async def rubric_pair(
    asker: RubricAsker,
    conversation: Sequence[Message],
    principles: Sequence[Principle],
    a: tuple[str, str],
    b: tuple[str, str],
    key: str,
) -> tuple[RubricVerdict, int]:
    """Write each principle's items for `conversation` and score the two answers `a` and `b` ((id, text)
    each) on them: the verdict with only the two answers to filter on (no labelled pairs), and how many
    requests failed (then the verdict is unparsed)."""
    results = await asyncio.gather(*(asker.write(conversation, p, f"{key}:items:{p.id}") for p in principles))
    failed = sum(bool(r.error) for r in results)
    items: dict[str, tuple[str, ...]] = {}
    for principle, result in zip(principles, results, strict=True):
        parsed = None if result.error else parse_items(result.texts[0] if result.texts else "", asker.k)
        items[principle.id] = parsed[0] if parsed else ()
    jobs = [(p.id, item, r) for p in principles for item in items[p.id] for r in (a, b)]
    scored = await asyncio.gather(
        *(
            asker.score(conversation, item, text, f"{key}:score:{pid}:{item}:{rid}")
            for pid, item, (rid, text) in jobs
        )
    )
    scores: dict[str, dict[str, dict[str, float | None]]] = {}
    for (pid, item, (rid, _)), (p, _, result) in zip(jobs, scored, strict=True):
        failed += bool(result.error)
        scores.setdefault(pid, {}).setdefault(rid, {})[item] = p
    unparsed = failed > 0 or not any(items.values())
    return rubric_verdict(principles, items, scores, a[0], b[0], unparsed=unparsed), failed


@dataclass
class RubricAsker:
    """The two requests of a rubric: write a principle's items for a conversation, score an answer on one
    item (the preview renders the same requests without sending them)."""

    backend: Backend
    k: int
    seed: int
    nonce: str
    templates: Templates = SHIPPED

    def write_request(self, conversation: Sequence[Message], principle: Principle, key: str) -> ChatRequest:
        text = self.templates.render(
            "rubric_items", conversation=conversation, principle=principle, k=self.k, nonce=self.nonce
        ).text
        return ChatRequest(
            messages=({"role": "user", "content": text},), max_tokens=48 * self.k, temperature=0.0,
            seed=derive_seed(self.seed, key), json_schema=items_schema(self.k),
        )  # fmt: skip

    async def write(self, conversation: Sequence[Message], principle: Principle, key: str) -> ChatResult:
        return await self.backend.chat(self.write_request(conversation, principle, key))

    def score_request(
        self, conversation: Sequence[Message], item: str, response: str, key: str
    ) -> ChatRequest:
        text = self.templates.render(
            "rubric_score", conversation=conversation, item=item, response=response, nonce=self.nonce
        ).text
        return ChatRequest(
            messages=({"role": "user", "content": text},), max_tokens=1, temperature=0.0,
            seed=derive_seed(self.seed, key), top_logprobs=5, choices=YES_NO,
        )  # fmt: skip

    async def score(
        self, conversation: Sequence[Message], item: str, response: str, key: str
    ) -> tuple[float | None, str, ChatResult]:
        """(P(yes) or None when the answer is not a clean Yes/No, the raw answer, the result)."""
        result = await self.backend.chat(self.score_request(conversation, item, response, key))
        raw = result.texts[0] if result.texts else ""
        p = yes_probability(result.first_token_logprobs)
        ok = not result.error and raw.strip() in YES_NO and p is not None
        return (p if ok else None), raw, result
