"""`revise:`: the critique-and-revise loop."""

from __future__ import annotations

from pydantic import Field

from rlaif.config.base import Section

__all__ = ["ReviseConfig"]


class ReviseConfig(Section):
    """Critique-and-revise loop."""

    enabled: bool = True
    rounds: int = Field(default=2, ge=1, le=16)
    """Critique/revision rounds per prompt."""
    max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    few_shot: int = Field(default=1, ge=0)
    """How many of the constitution's examples to show before each conversation."""
