"""A synthetic world whose truth is known exactly: answers with a hidden quality, and judges of set
accuracy, length bias and position bias (`rlaif bench-trust`, served by `rlaif.bench.stub_server`).

Prompts carry a marker (`q0007`). An answer to one opens with its tag, `q0007-<8 hex>` (a hash of the
request's messages and seed), and its whole text follows from the tag: `words(tag)` words (12 to 72) in
sentences of 6 to 9, drawn by hashing the tag. Its hidden quality is another hash of the tag, uniform
on [0, 1); the length is drawn from different bits, so length and quality are independent.

A candidate's merit, as a judge sees it: its tag's quality when the text is exactly the tag's answer
and the tag's prompt is the conversation's; -1 otherwise (a padded, cut, repeated or off-topic copy: the
universal probes). The better of two candidates has the higher merit; the benchmark reads the truth
of an exported pair the same way, from its texts.

A judge `(a, l, q)` answers each constrained A/B request (each order is its own request) by three
independent uniform draws hashed from its name and the request's messages:

1. with probability `q` it answers the first position (A), whatever the candidates;
2. else, with probability `l`, the longer candidate in words (equal lengths skip to 3);
3. else the better candidate with probability `a`, the worse one otherwise.

It says P(its answer) = 0.6 + 0.35 u for a fourth draw u: a confidence that carries no information.
On pairs of the run's own answers (the better one equally likely either side and either length) one
verdict is right with probability `single_order_accuracy(a, l, q)`; `two_order_expectation` gives the
share of pairs whose two orders agree and how often those are right.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any

__all__ = [
    "JUDGE_PREFIX",
    "POLICY",
    "JudgeSpec",
    "answer",
    "canonical",
    "merit",
    "prompt_text",
    "quality",
    "single_order_accuracy",
    "tag_of",
    "two_order_expectation",
    "verdict",
    "words",
]

POLICY = "trust-policy"
"""The served name whose plain chat requests get synthetic answers."""
JUDGE_PREFIX = "trust-judge:"
"""Served names `trust-judge:a=0.90,l=0.30,q=0.00` judge as that judge."""
_JUDGE = re.compile(r"^trust-judge:a=([0-9.]+),l=([0-9.]+),q=([0-9.]+)$")
_MARKER = re.compile(r"\bq\d{4,}\b")
_TAG = re.compile(r"\bq\d{4,}-[0-9a-f]{8}\b")
_CANDIDATE = re.compile(r"<response_([AB])_([^>\s]+)>\n(.*?)\n</response_\1_\2>", re.DOTALL)
_VOCABULARY = tuple(
    " ".join((
        "water light garden river market window paper coffee bridge winter summer forest engine letter",
        "number method result example answer reader question simple careful steady honest useful clear",
        "often usually because which when also should could might always never each every first then",
        "build check keep make take give find show tell plan test read write learn start finish",
    )).split(" ")
)  # fmt: skip


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _uniform(*parts: object) -> float:
    return _hash(*parts) / 2**64


def prompt_text(index: int) -> str:
    """The benchmark's prompt number `index`, with its marker."""
    return f"Question q{index:04d}: explain topic {index} to a new reader in a few sentences."


def words(tag: str) -> int:
    """Words in the answer of `tag` (the tag included): 12 to 72, independent of its quality."""
    return 12 + _hash(tag, "length") % 61


def quality(tag: str) -> float:
    """The hidden quality of the answer of `tag`, uniform on [0, 1)."""
    return _uniform(tag, "quality")


@lru_cache(maxsize=1 << 16)
def canonical(tag: str) -> str:
    """The one text of the answer of `tag`: lower-case sentences of 6 to 9 words, the tag first."""
    total, sentences, done = words(tag), [], 1
    current = [tag]
    size = 6 + _hash(tag, "sentence", 0) % 4
    while done < total:
        current.append(_VOCABULARY[_hash(tag, "word", done) % len(_VOCABULARY)])
        done += 1
        if len(current) >= size or done == total:
            sentences.append(" ".join(current) + ".")
            current, size = [], 6 + _hash(tag, "sentence", done) % 4
    return " ".join(sentences)


def tag_of(text: str) -> str | None:
    """The first answer tag in `text`."""
    found = _TAG.search(text)
    return found.group(0) if found else None


def merit(text: str, topic: str | None) -> float:
    """The candidate's merit: its tag's quality when it is exactly that answer, to prompt `topic`; else -1."""
    tag = tag_of(text)
    if tag is None or canonical(tag) != text.strip() or (topic is not None and tag.split("-")[0] != topic):
        return -1.0
    return quality(tag)


def answer(body: dict[str, Any]) -> str:
    """The synthetic answer to a plain chat request: the answer of a tag hashed from messages and seed."""
    messages = body.get("messages") or []
    user = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    marker = _MARKER.search(user)
    digest = f"{_hash(messages, body.get('seed')) % 2**32:08x}"
    return canonical(f"{marker.group(0) if marker else 'q0000'}-{digest}")


class JudgeSpec:
    """A synthetic judge: accuracy `a`, length bias `l`, position bias `q` (see the module)."""

    def __init__(self, accuracy: float, length_bias: float, position_bias: float) -> None:
        for name, value in (("accuracy", accuracy), ("length_bias", length_bias),
                            ("position_bias", position_bias)):  # fmt: skip
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} {value} must be between 0 and 1")
        self.accuracy, self.length_bias, self.position_bias = accuracy, length_bias, position_bias

    @property
    def name(self) -> str:
        """Its served model name."""
        return f"{JUDGE_PREFIX}a={self.accuracy:.2f},l={self.length_bias:.2f},q={self.position_bias:.2f}"

    @classmethod
    def parse(cls, name: str) -> JudgeSpec | None:
        """The judge a served name stands for; None when it names none."""
        found = _JUDGE.match(name)
        return cls(*(float(g) for g in found.groups())) if found else None

    def pick(self, body: dict[str, Any]) -> tuple[int, float]:
        """(0 for A or 1 for B, P(that answer)) for a constrained A/B request."""
        messages = body.get("messages") or []
        shown = "\n".join(str(m.get("content", "")) for m in messages)
        found = {m.group(1): m.group(3) for m in _CANDIDATE.finditer(shown)}
        first = _CANDIDATE.search(shown)
        topic = _MARKER.search(shown[: first.start()] if first else shown)
        draws = [_uniform(self.name, messages, k) for k in range(4)]
        confidence = 0.6 + 0.35 * draws[3]
        if "A" not in found or "B" not in found or draws[0] < self.position_bias:
            return 0, confidence
        a, b = found["A"], found["B"]
        if draws[1] < self.length_bias and len(a.split()) != len(b.split()):
            return (0 if len(a.split()) > len(b.split()) else 1), confidence
        better = 0 if merit(a, topic and topic.group(0)) >= merit(b, topic and topic.group(0)) else 1
        return (better if draws[2] < self.accuracy else 1 - better), confidence


def verdict(body: dict[str, Any]) -> tuple[int, float] | None:
    """The synthetic judge's (choice index, its probability) when the request names one; else None."""
    spec = JudgeSpec.parse(str(body.get("model", "")))
    return None if spec is None else spec.pick(body)


def single_order_accuracy(accuracy: float, length_bias: float, position_bias: float) -> float:
    """P(one verdict is right) on a pair whose better answer is equally likely first or second and
    longer or shorter (lengths never equal): q/2 + (1-q) (l/2 + (1-l) a)."""
    a, ln, q = accuracy, length_bias, position_bias
    return q / 2 + (1 - q) * (ln / 2 + (1 - ln) * a)


def two_order_expectation(accuracy: float, length_bias: float, position_bias: float) -> tuple[float, float]:
    """(share of pairs whose two orders agree, share of those that are right), same assumptions.

    With the better answer longer (L = 1) or shorter (L = 0), each half the pairs, one order picks it
    with m = (1-q)(l L + (1-l) a) when it is second and q + m when it is first; both orders agree on
    it with (q + m) m and on the worse one with (1 - q - m)(1 - m).
    """
    a, ln, q = accuracy, length_bias, position_bias
    right = wrong = 0.0
    for longer in (1, 0):
        m = (1 - q) * (ln * longer + (1 - ln) * a)
        right += (q + m) * m / 2
        wrong += (1 - q - m) * (1 - m) / 2
    agree = right + wrong
    return agree, (right / agree if agree else 0.5)
