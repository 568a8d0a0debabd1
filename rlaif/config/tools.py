"""`tools:`: the tools a model may call while answering prompts that offer them (see `rlaif.tools`)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from rlaif.config.base import Section

__all__ = ["ToolsConfig"]

_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


class ToolsConfig(Section):
    """Tool use: a prompt row's `tools` are offered to the model, run by this runtime, for up to
    `max_steps` model turns."""

    functions: dict[str, str] = {}
    """Tool name -> `package.module:function` that runs it (your code, in a worker process); the built-in
    `calculator` needs no entry."""
    max_steps: int = Field(default=4, ge=1, le=32)
    """Most model turns per answer; a model still calling tools at the last one ends as `step_limit`."""
    timeout: float = Field(default=5.0, gt=0, le=600)
    """Seconds one call of your tool may run before its process is stopped (status `timeout`)."""
    max_output_chars: int = Field(default=4000, ge=16)
    """Most characters a tool may return (as JSON) or print (status `output_limit`)."""

    @field_validator("functions")
    @classmethod
    def _targets(cls, functions: dict[str, str]) -> dict[str, str]:
        for name, target in functions.items():
            if not _TARGET.fullmatch(target):
                raise ValueError(
                    f"tools.functions.{name}: {target!r} is not a 'package.module:function' target"
                )
        return functions
