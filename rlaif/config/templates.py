"""`templates:`: your own Jinja files in place of the shipped ones."""

from __future__ import annotations

from rlaif.config.base import Section

__all__ = ["TemplatesConfig"]


class TemplatesConfig(Section):
    """Your own Jinja files in place of the shipped templates of `prompts/` (paths relative to the config
    file's folder). Each is checked when the config loads, and its hash enters the ids of what it makes."""

    respond: str | None = None
    """The system message of first answers (variable: `system_prompt`)."""
    critique: str | None = None
    """The user turn asking for a critique (variable: `principle`)."""
    revise: str | None = None
    """The user turn asking for a revision (variable: `principle`)."""
    judge: str | None = None
    """The pairwise judge (`conversation`, `principles`, `examples`, `response_a`, `response_b`, `nonce`)."""
    judge_plain: str | None = None
    """The pairwise judge without injection defences (`judge.defences: false`; same variables)."""
    judge_cot: str | None = None
    """The reasoning judge (`judge.mode: cot`; same variables, and `final` for the follow-up question)."""
    judge_pointwise: str | None = None
    """The pointwise judge (`judge.mode: pointwise`; `conversation`, `principles`, `response`, `nonce`)."""
    rubric_items: str | None = None
    """The rubric item writer (`judge.rubric`; `conversation`, `principle`, `k`, `nonce`); it must ask
    for a JSON list."""
    rubric_score: str | None = None
    """The rubric item scorer, answered Yes or No (`conversation`, `item`, `response`, `nonce`)."""
    red_team: str | None = None
    """`rlaif iterate`'s red team: asks for one new prompt (`principles`: [{id, rule}], `examples`: texts)."""
