"""`prompts:`: the prompt set, a JSONL file or anything `datasets` loads."""

from __future__ import annotations

from pydantic import Field, model_validator

from rlaif.config.base import Section

__all__ = ["PromptColumns", "PromptsConfig"]


class PromptColumns(Section):
    """Which column of a `datasets` prompt set holds the conversation (one of messages, prompt,
    transcript, user), and an optional system column. Unset: `messages`, `prompt` or an hh-rlhf
    `chosen` column, as in a JSONL prompt set."""

    messages: str | None = None
    """A column of chat messages (`[{role, content}, ...]`) ending with a user turn."""
    prompt: str | None = None
    """A column of prompt text (one user turn), or of chat messages."""
    transcript: str | None = None
    """A column of hh-rlhf transcripts (`\\n\\nHuman: ...\\n\\nAssistant: ...`); a final Assistant
    turn is cut off, so the prompt ends with the last Human turn."""
    user: str | None = None
    """A column of user text, usually with `system`."""
    system: str | None = None
    """A column of system prompts put before the `user` (or `prompt`) text; an empty one is left out."""

    @model_validator(mode="after")
    def _one_conversation(self) -> PromptColumns:
        chosen = [name for name in ("messages", "prompt", "transcript", "user") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                f"name one column of messages, prompt, transcript or user (got {chosen or 'none'}), "
                "e.g. {prompt: question}"
            )
        if self.system and chosen[0] not in ("prompt", "user"):
            raise ValueError(f"system goes with a prompt or user column, not with {chosen[0]}")
        return self


_DATASET_ONLY = ("config", "split", "revision", "streaming", "columns")


class PromptsConfig(Section):
    """The prompt set: a JSONL file (`path`) or anything `datasets` loads (`dataset`)."""

    path: str | None = None
    """JSONL file: rows with `messages`, `prompt`, or hh-rlhf `chosen` transcripts."""
    dataset: str | None = None
    """A Hugging Face Hub dataset id (`org/name`), or a local Parquet, JSON, JSONL, CSV or Arrow file, or a
    folder saved with `save_to_disk` (relative paths: to the config's folder)."""
    config: str | None = None
    """`dataset`: the Hub dataset's configuration (subset) name."""
    split: str = "train"
    """`dataset`: the split to read."""
    revision: str | None = None
    """`dataset`: a Hub branch, tag or commit, so the same config reads the same rows."""
    streaming: bool = False
    """`dataset`: read rows as they download (an `IterableDataset`) instead of preparing the whole set in
    the `datasets` cache first; for large sets, with `limit`."""
    columns: PromptColumns | None = None
    """`dataset`: which columns hold the conversation; None looks for `messages`, `prompt` or `chosen`."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first N prompts."""

    @model_validator(mode="after")
    def _one_source(self) -> PromptsConfig:
        if self.path is None and self.dataset is None:
            raise ValueError(
                "prompts.path is missing: give prompts.path (a JSONL file) or prompts.dataset "
                "(a Hub id, or a Parquet/JSON/CSV/Arrow file or saved dataset folder)"
            )
        if self.path is not None and self.dataset is not None:
            raise ValueError("give prompts.path (a JSONL file) or prompts.dataset, not both")
        if self.path is not None:
            defaults = {name: PromptsConfig.model_fields[name].default for name in _DATASET_ONLY}
            given = sorted(name for name, default in defaults.items() if getattr(self, name) != default)
            if given:
                raise ValueError(f"{', '.join(given)} apply to prompts.dataset only; prompts.path is JSONL")
        return self
