"""The terminal reviewer (`rlaif review terminal RUN_DIR`): one pair at a time, one key per verdict.

Model text is printed as `rich.text.Text`, never as markup, so brackets in an answer stay text, and with
every control character shown as an escape (`visible`): an answer holding ESC[2J, an OSC title or an OSC 8
hidden link could otherwise clear, retitle or rewrite what the person is judging.
Keys and note lines come from injectable sources, so tests drive it with a script.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from rlaif.records import ReviewAnswer, ReviewItem
from rlaif.review.session import ReviewSession

__all__ = ["KEYS", "TerminalResult", "review_in_terminal", "visible"]

# C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides and isolates that
# reorder what is shown ("Trojan Source").
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every control character written as its escape (ESC as `\\x1b`), so nothing in it
    acts on the terminal and the reviewer sees that it was there."""
    return _HIDDEN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


KEYS = {
    "1": "first is better",
    "2": "second is better",
    "t": "tie",
    "f": "flag (broken pair)",
    "n": "add a note",
    "u": "undo last",
    "s": "skip",
    "q": "quit (resume later)",
}
VERDICTS = {"1": "first", "2": "second", "t": "tie", "f": "flag"}


@dataclass(frozen=True)
class TerminalResult:
    """What a terminal session did."""

    decided: int
    undone: int
    skipped: int
    remaining: int
    quit: bool


def review_in_terminal(
    session: ReviewSession,
    *,
    console: Console,
    read_key: Callable[[], str],
    read_line: Callable[[str], str],
) -> TerminalResult:
    """Review the session's pending pairs; stops when none are left, on `q`, or when keys run out."""
    decided = undone = skipped = 0
    note = ""
    message = ""
    while (item := session.next_item()) is not None:
        console.clear()
        _show(console, session, item, note=note, message=message)
        message = ""
        try:
            key = read_key().lower()
        except (EOFError, KeyboardInterrupt):
            return TerminalResult(decided, undone, skipped, len(session.pending()), True)
        if key in VERDICTS:
            session.decide(ReviewAnswer(pair_id=item.pair_id, verdict=VERDICTS[key], note=note))  # type: ignore[arg-type]
            decided += 1
            note = ""
            message = f"saved: {VERDICTS[key]}"
        elif key == "n":
            try:
                note = read_line("note: ").strip()
            except (EOFError, KeyboardInterrupt):
                note = ""
        elif key == "u":
            back = session.undo()
            undone += back is not None
            message = "undone: that pair is shown again" if back else "nothing to undo"
            note = ""
        elif key == "s":
            session.skip(item.pair_id)
            skipped += 1
            note = ""
        elif key in ("q", "\x03", "\x04"):
            console.print(f"[yellow]stopped[/yellow]: {_progress(session)}; run the same command to resume")
            return TerminalResult(decided, undone, skipped, len(session.pending()), True)
        else:
            message = f"unknown key {key!r}"
    console.print(f"[green]done[/green]: {_progress(session)}")
    return TerminalResult(decided, undone, skipped, 0, False)


def _progress(session: ReviewSession) -> str:
    skipped = f", {len(session.skipped)} skipped" if session.skipped else ""
    return f"{session.done} of {session.total} reviewed by {session.reviewer}{skipped}"


def _show(console: Console, session: ReviewSession, item: ReviewItem, *, note: str, message: str) -> None:
    console.rule(Text(f"pair {session.done + 1} of {session.total} · {_progress(session)}"))
    for turn in item.prompt:
        console.print(
            Panel(
                Text(visible(turn.content)),
                title=Text(visible(turn.role)),
                title_align="left",
                border_style="dim",
            )
        )
    console.print(
        Panel(Text(visible(item.first)), title="1 · first answer", title_align="left", border_style="cyan")
    )
    console.print(
        Panel(
            Text(visible(item.second)), title="2 · second answer", title_align="left", border_style="magenta"
        )
    )
    for pid, question in zip(item.principle_ids, item.principle_questions, strict=True):
        console.print(
            Text.assemble(
                ("principle ", "bold"), (visible(pid), "bold"), (f": {visible(question)}" if question else "")
            )
        )
    if item.rubric_items:
        console.print(Text("checklist items that decided it (a bad one: flag it with a note):", style="bold"))
        for rubric_item in item.rubric_items:
            console.print(Text(f"  - {visible(rubric_item)}"))
    if item.ai_preferred is not None:
        probability = "" if item.ai_probability is None else f" (p = {item.ai_probability:.2f})"
        console.print(Text(f"AI prefers the {item.ai_preferred} answer{probability}", style="yellow"))
    if note:
        console.print(Text.assemble(("note: ", "bold"), visible(note)))
    console.print(Text("  ".join(f"[{k}] {v}" for k, v in KEYS.items()), style="dim"))
    if message:
        console.print(Text(message, style="green"))
