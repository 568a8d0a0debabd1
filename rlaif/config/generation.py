"""`generation:`: sampling of the first answers."""

from __future__ import annotations

from pydantic import Field

from rlaif.config.base import Section

__all__ = ["GenerationConfig"]


class GenerationConfig(Section):
    """Sampling for first answers."""

    samples_per_prompt: int = Field(default=2, ge=1)
    """Answers per prompt; sample 0 is revised, samples 0 and 1 are judged."""
    max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
