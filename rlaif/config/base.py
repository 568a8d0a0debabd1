"""What every section of the run config shares: the pydantic base, and a list of regular expressions
checked to compile when the file loads."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["PairSource", "Patterns", "Section"]

PairSource = Literal["check", "judge", "revision"]


class Section(BaseModel):
    # inf and nan are never a setting: refused at the door instead of crashing a run later.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


def _compiles(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"pattern {pattern!r} is not a valid regular expression ({exc}); fix or drop it"
            ) from None
    return patterns


Patterns = Annotated[list[str], AfterValidator(_compiles)]
"""Regular expressions (Python `re`), each checked to compile; a bad one names itself and the error."""
