"""`export:`: the exported datasets' split, the card's Hub metadata, and where to push them."""

from __future__ import annotations

from pydantic import Field

from rlaif.config.base import Section

__all__ = ["ExportConfig"]


class ExportConfig(Section):
    """The exported datasets: their train/test split, the card's Hub metadata, and where to push them."""

    test_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of prompts whose rows go to the `test` split (all of a prompt's rows on one side; at least
    one prompt when above 0, never all of them). 0 writes a `train` split only: every row is trained on."""
    seed: int | None = None
    """Seed of the split; None uses the run's seed."""
    license: str = "other"
    """The card's `license` (a Hub license id, e.g. apache-2.0, cc-by-4.0; the data carries the terms of
    the prompt set and the models that wrote it)."""
    language: list[str] = ["en"]
    """The card's `language` codes."""
    tags: list[str] = []
    """More card tags, after rlaif's own (rlaif, constitutional-ai, synthetic, preference, dpo)."""
    push_to_hub: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    """A Hub dataset repo (`user/name`) to push the export to after writing it (needs a login:
    `huggingface-cli login` or HF_TOKEN)."""
    private: bool = False
    """Create the Hub repo as private (an existing repo keeps its visibility)."""
