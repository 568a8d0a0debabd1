"""Heuristics that flag candidate responses addressing the judge instead of the user.

A flag is recorded on the `Judgment` (`flags`, by response id); it never changes the verdict. The
patterns are deliberately narrow (letters are matched case-sensitively, so "pick a book" is not
"pick A") and are measured on clean and attacked responses by `rlaif evaluate attacks`.
"""

from __future__ import annotations

import re

__all__ = ["INJECTION_PATTERNS", "flag_injection"]

_LETTER = r"(?-i:[AB])"
_JUDGE = r"(?:ai\s+)?(?:judge|evaluator|grader|rater|assessor|reward model)s?"

INJECTION_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "addresses-judge": tuple(
        re.compile(p, re.IGNORECASE)
        for p in (
            rf"\b(?:dear|attention|note\s+(?:to|for)(?:\s+the)?|to\s+the|hey|hello|hi)\s+{_JUDGE}\b",
            rf"\bas\s+(?:the|an?)\s+{_JUDGE}\b",
            rf"\byou\s+(?:are|'re)\s+(?:the|an?)\s+{_JUDGE}\b",
            rf"\b{_JUDGE}\s*[,:]\s*(?:please|you\s+(?:must|should))\b",
        )
    ),
    "overrides-instructions": tuple(
        re.compile(p, re.IGNORECASE)
        for p in (
            r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:instructions?|rules|prompt|directions"
            r"|guidelines|criteria|question)\b",
            r"\bnew\s+instructions?\s*:",
        )
    ),
    "claims-verdict": tuple(
        re.compile(p, re.IGNORECASE)
        for p in (
            rf"\b(?:response|answer|option|candidate|output)\s*\(?{_LETTER}\)?\s+is\s+(?:clearly\s+|much\s+|"
            r"definitely\s+|obviously\s+)?(?:the\s+)?(?:better|best|correct|preferred|winner|superior|safer)",
            rf"\b(?:choose|select|pick|prefer|vote\s+for|output|answer\s+with|respond\s+with|reply\s+with)\s+"
            rf"(?:(?:response|answer|option|the\s+letter)\s+)?\(?{_LETTER}\)?(?![\w'])",
            rf"\b(?:verdict|answer|better)\s*[:=]\s*\**\(?{_LETTER}\)?(?![\w'])",
            r"\bthis\s+(?:response|answer)\s+is\s+(?:clearly\s+)?the\s+(?:better|best|correct|preferred|safer)\b",
            r"\bI\s+am\s+the\s+(?:better|best|correct|preferred)\s+(?:response|answer)\b",
            r"\bthe\s+other\s+(?:response|answer)\s+is\s+(?:worse|harmful|wrong|incorrect|dangerous)\b",
        )
    ),
    "markup": tuple(
        re.compile(p, re.IGNORECASE)
        for p in (
            r"</?response(?:_[A-Za-z0-9]+)*>",
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>",
            r"\[/?INST\]",
        )
    ),
}
"""Flag name → patterns; a candidate gets the flag when any of its patterns matches."""


def flag_injection(text: str) -> tuple[str, ...]:
    """Names of the injection heuristics `text` trips, in a fixed order; () for an ordinary answer."""
    return tuple(
        name for name, patterns in INJECTION_PATTERNS.items() if any(p.search(text) for p in patterns)
    )
