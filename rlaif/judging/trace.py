"""What the judge and the checks see of a tool-using answer, by the principles' `scope`.

`scope: trace` (the default) shows the whole trajectory: the judge reads the calls and results as tagged
lines before the final answer (`rlaif.inputs.trajectory.render_trace`), between the judge template's
delimiters like any candidate text; a check reads the conversation with the trace appended, so its
tool rules see every call. `scope: final` shows only the final answer. A plain answer is the same
either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlaif.inputs.trajectory import render_trace
from rlaif.records import Message, Principle

__all__ = ["checked_conversation", "judged_text"]


def judged_text(text: str, trace: Sequence[Message], principles: Sequence[Principle]) -> str:
    """The candidate text the judge reads under `principles`: the whole trace unless every one of them
    judges only the final answer."""
    if trace and any(p.scope == "trace" for p in principles):
        return render_trace(trace, text)
    return text


def checked_conversation(
    conversation: Sequence[Message], trace: Sequence[Message], principle: Principle
) -> tuple[Message, ...]:
    """The conversation a principle's check reads: the prompt, then the trace under `scope: trace`."""
    return (*conversation, *trace) if principle.scope == "trace" else tuple(conversation)
