"""What every section of the run config shares: the pydantic base, and a list of regular expressions
checked to compile when the file loads."""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

__all__ = ["PairSource", "Patterns", "Section"]

PairSource = Literal["check", "judge", "revision"]


class Section(BaseModel):
    # inf and nan are never a setting: refused at the door instead of crashing a run later.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_at_the_door(cls, value: Any, info: ValidationInfo) -> Any:
        """No boolean where a number goes (pydantic reads `true` as 1: `--set generation.max_tokens=true`
        sent max_tokens 1), and no NUL byte in any text (no path or name holds one; the OS refuses it
        only later, mid-run)."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_number(field.annotation):
            raise ValueError(f"{str(value).lower()} is not a number; give a number")
        if _has_nul(value):
            raise ValueError("the text holds a NUL byte ('\\x00'); remove it")
        return value


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


def _is_number(annotation: Any) -> bool:
    """int or float (not bool), alone or with None."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(members) and all(a in (int, float) for a in members)
    return False


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    # Mappings are left to the section they validate into, so the error names the inner field.
    return isinstance(value, (list, tuple)) and any(isinstance(v, str) and "\x00" in v for v in value)
