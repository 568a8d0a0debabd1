"""`quality:`: the gates on the data trainers would read, and the filters that drop noisy pairs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlaif.config.base import Patterns, Section

__all__ = ["FILTERS", "META_PATTERNS", "FilterConfig", "FilterName", "QualityConfig"]

FilterName = Literal[
    "judge_inconsistent", "judge_low_confidence", "revision_near_identical", "revision_few_shot_copy",
    "revision_degenerate", "revision_meta_talk", "revision_still_fails_check", "revision_judged_worse",
]  # fmt: skip
FILTERS: tuple[str, ...] = FilterName.__args__  # type: ignore[attr-defined]
META_PATTERNS = (
    r"(?i)\b(the|this|my|your) (previous |original |last |first |revised |new |above )?"
    r"(answer|response|reply)"
    r"\b (is|was|helps|provides|does|doesn't|contains|should|could|would|gives|offers|addresses)\b"
    r"(?!:?\s*[-+$€£]?\d)",  # "The answer is 42." answers
    r"(?i)^\W*(here is|here's|below is) (the|a|my|an) (revised|rewritten|new|improved|updated)\b",
    r"(?i)^\W*(revised|rewritten|improved|updated) (answer|response|version)\s*:",
    r"(?i)\b(critique|revision request|critique request)\s*:",
)
"""Text about "the answer" instead of an answer: the tell-tale of a model that did not rewrite."""


class FilterConfig(Section):
    """Which exported pairs are dropped as noise, and the thresholds. Dropped pairs stay in pairs.jsonl;
    `export/dropped.jsonl` says why each was dropped, so a changed threshold needs only a re-export."""

    off: list[FilterName] = []
    """Filters to switch off (all are on): judge_inconsistent (see `judge.inconsistent`),
    judge_low_confidence (`judge.min_confidence`), revision_near_identical, revision_few_shot_copy,
    revision_degenerate, revision_meta_talk, revision_still_fails_check, revision_judged_worse."""
    near_identical: float = Field(default=0.1, ge=0.0, le=1.0)
    """A revision whose normalised edit distance to the original is below this is no real rewrite."""
    few_shot_overlap: float = Field(default=0.5, ge=0.0, le=1.0)
    """A revision with this share of its word 5-grams in the constitution's examples copies them."""
    repetition: float = Field(default=0.3, ge=0.0, le=1.0)
    """A revision whose word 4-grams repeat earlier ones at this share or more is a repetition loop."""
    meta_patterns: Patterns = list(META_PATTERNS)
    """Regular expressions (Python `re`) that mark a revision that talks about "the answer" instead of
    answering."""


class QualityConfig(Section):
    """Gates on the data trainers would read, checked after export and before any trainer. A gate that
    fails stops training (and `rlaif run` exits 1); `--force` trains anyway and is recorded in the
    manifest. A threshold of null switches its gate off."""

    min_pairs: int = Field(default=8, ge=0)
    """Fewest exported pairs (from the trainers' sources) worth training on."""
    min_order_consistency: float | None = Field(default=0.6, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least share of judgments whose two orders agree."""
    max_same_position: float | None = Field(default=0.8, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: most share of judgments that picked the same position twice."""
    max_unparsed: float | None = Field(default=0.1, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: most share of judge orders that did not parse."""
    min_decisive: float | None = Field(default=0.5, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least share of judgments that give a pair (not a tie,
    not dropped as inconsistent or unsure)."""
    min_check_agreement: float | None = Field(default=0.6, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least agreement of the judge with the checks where both
    decided (`judge.checks: probe`), once `min_check_probes` such pairs exist."""
    min_check_probes: int = Field(default=10, ge=1)
    """Probes needed before `min_check_agreement` applies."""
    min_revision_kept: float | None = Field(default=0.25, ge=0.0, le=1.0)
    """Revision pairs in the training data: least share of revision candidates that pass the filters."""
    filters: FilterConfig = FilterConfig()
    # Judge biases beyond position (length, self-preference): see rlaif/evaluate/bias.py.
    max_length_bias: float | None = Field(default=0.25, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: most excess of the share whose chosen answer is the longer
    one over the reference (known-label pairs, else 0.5), read at the lower end of its 95% interval.
    0.25: refused when, at 95% confidence, over half the judge's verdicts are explained by length alone."""
    max_self_preference: float | None = Field(default=None, ge=0.0, le=1.0)
    """LLM-judged pairs mixing an answer of the judge's own model with another model's: most excess of
    the share where it chose its own over the reference, at the lower end of its 95% interval; null: off."""
    # Universal probes (judge.probes)
    min_probe_accuracy: float | None = Field(default=0.8, ge=0.0, le=1.0)
    """LLM-judged pairs in the training data: least accuracy of the judge on the universal probes it
    decided (both orders agreeing, as a judge pair needs; ties and unparsed ones left out), overall and
    on each probe kind with `min_probes` decided, once `min_probes` have a verdict; a judge that decided
    none of them is refused."""
    min_probes: int = Field(default=20, ge=1)
    """Probes with a verdict needed before `min_probe_accuracy` applies."""
