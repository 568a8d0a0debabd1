"""How fast check rules run (`rlaif constitution bench`): a measurement, not a timed test.

Checks label pairs and score rewards for every response a run makes, so they must cost next to nothing
beside generation. The benchmark checks a seeded mix of responses shaped like a small model's answers
(plain and long answers, canned openers, links, lists, JSON, code, other scripts, empty ones) under
every checkable principle of a constitution, and reports responses per second over the median of a few
timed passes. Python rules are left out: they run the user's own code, at its own speed.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from collections import Counter
from collections.abc import Callable

from rlaif.bench.reports import CheckBenchPrinciple, CheckBenchReport
from rlaif.errors import ConstitutionError
from rlaif.judging.checks import checkable, run_check
from rlaif.records import Check, CheckOutcome, Constitution, Principle

__all__ = ["MIX", "bench_checks", "response_mix"]

_VOCABULARY = (
    "the a of to and in is it that for on with as this be are by can you your more most water light heat "
    "time people city river small large often usually because which when also may should answer question "
    "energy plant cell body history market price sleep health language number method result example step"
)
_WORDS = tuple(_VOCABULARY.split(" "))
_OPENERS = ("Sure! ", "Certainly, ", "Of course. ", "Absolutely - ", "Great question! ", "sure, ")
_OTHER_SCRIPTS = (
    "Ça dépend. ",
    "東京は日本の首都です。",
    "Привет, мир. ",
    "😀 Great! ",
    "العربية جميلة. ",
    "naïve café ",
)


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(max(words, 1)))
    return text[:1].upper() + text[1:] + "."


def _prose(rng: random.Random, low: int, high: int) -> str:
    target, sentences = rng.randint(low, high), []
    while target > 0:
        size = min(target, rng.randint(5, 18))
        sentences.append(_sentence(rng, size))
        target -= size
    return " ".join(sentences)


MIX: dict[str, tuple[float, Callable[[random.Random], str]]] = {
    "plain": (0.38, lambda rng: _prose(rng, 5, 80)),
    "long": (0.08, lambda rng: "\n\n".join(_prose(rng, 40, 90) for _ in range(rng.randint(2, 4)))),
    "canned opener": (0.10, lambda rng: rng.choice(_OPENERS) + _prose(rng, 5, 60)),
    "link": (
        0.08,
        lambda rng: f"{_prose(rng, 5, 40)} See https://example.org/{rng.choice(_WORDS)} for more.",
    ),
    "list": (
        0.10,
        lambda rng: "\n".join(f"{rng.choice(['-', '*', '1.'])} {_prose(rng, 3, 12)}" for _ in range(4)),
    ),
    "json": (0.05, lambda rng: json.dumps({"answer": _prose(rng, 3, 15), "score": rng.randint(1, 10)})),
    "code": (0.06, lambda rng: f"{_prose(rng, 4, 12)}\n```python\nprint({rng.randint(0, 99)})\n```"),
    "unicode": (0.07, lambda rng: rng.choice(_OTHER_SCRIPTS) + _prose(rng, 4, 30)),
    "empty": (0.03, lambda rng: rng.choice(["", " ", "\n"])),
    "very short": (0.05, lambda rng: rng.choice(["Yes.", "No.", "Paris.", "42", "I don't know."])),
}
"""Kind of response → (share of the mix, how one is made)."""


def response_mix(count: int, *, seed: int = 0) -> tuple[list[str], dict[str, int]]:
    """`count` responses drawn from `MIX`, fixed by `seed`, and how many of each kind."""
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=[share for share, _ in MIX.values()], k=count)
    return [MIX[kind][1](rng) for kind in kinds], dict(Counter(kinds))


def _declarative(principle: Principle) -> Principle | None:
    assert principle.check is not None
    rules = {name: value for name, value in principle.check.rules().items() if name != "python"}
    if not rules:
        return None
    return principle.model_copy(update={"check": Check.model_validate(rules)})


def bench_checks(
    constitution: Constitution, *, responses: int = 20_000, repeats: int = 3, seed: int = 0
) -> CheckBenchReport:
    """Time the declarative rules of every checkable principle on a mix of `responses` responses.

    Raises:
        ConstitutionError: no principle has a declarative rule to measure.
    """
    measured, left_out = [], []
    for principle in checkable(constitution):
        declarative = _declarative(principle)
        if declarative is None:
            left_out.append(f"{principle.id}: only a python rule (runs your code; not measured)")
            continue
        if principle.check is not None and principle.check.python is not None:
            left_out.append(f"{principle.id}: its python rule (runs your code; not measured)")
        measured.append(declarative)
    if not measured:
        raise ConstitutionError(
            f"constitution {constitution.name!r} has no principle with a declarative check to measure; "
            "add `check:` rules to a principle (see constitution/README.md)"
        )
    texts, mix = response_mix(responses, seed=seed)
    outcomes: list[list[CheckOutcome]] = [[] for _ in measured]
    for text in texts:  # warm-up: compiles the patterns; its outcomes are the ones reported
        for index, principle in enumerate(measured):
            outcomes[index].append(run_check(principle, (), text))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            for principle in measured:
                run_check(principle, (), text)
        seconds.append(time.perf_counter() - start)
    return CheckBenchReport(
        constitution=constitution.name,
        constitution_hash=constitution.hash,
        responses=responses,
        mix=mix,
        principles=[_summary(p, results) for p, results in zip(measured, outcomes, strict=True)],
        left_out=left_out,
        repeats=repeats,
        seconds=seconds,
        machine=f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    )


def _summary(principle: Principle, outcomes: list[CheckOutcome]) -> CheckBenchPrinciple:
    assert principle.check is not None
    decided = [o for o in outcomes if o.passed is not None]
    return CheckBenchPrinciple(
        principle_id=principle.id,
        rules=list(principle.check.rules()),
        pass_rate=sum(bool(o.passed) for o in decided) / len(decided) if decided else None,
        check_errors=len(outcomes) - len(decided),
    )
