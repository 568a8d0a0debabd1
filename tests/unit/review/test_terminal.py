"""The terminal reviewer driven by a script of keys, printing to a rich Console over a string buffer."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console

from rlaif.records import PreferencePair, ReviewDecision
from rlaif.review.session import ReviewSession, current_decisions
from rlaif.review.terminal import review_in_terminal
from rlaif.store import RunDir
from tests.support.review import make_pair, run_with_pairs, settings


def keys(script: Iterable[str]) -> Callable[[], str]:
    it = iter(script)

    def read() -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return read


def drive(
    run: RunDir, pairs: list[PreferencePair], script: str, *, lines: Iterable[str] = (), **config: object
):
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    session = ReviewSession(run, pairs, settings(**config), via="terminal")
    answers = iter(lines)
    result = review_in_terminal(
        session, console=console, read_key=keys(script), read_line=lambda _: next(answers)
    )
    return result, out.getvalue(), session


def standing(run: RunDir) -> dict[str, ReviewDecision]:
    return {pid: by["alice"] for pid, by in current_decisions(run.stage("reviews", ReviewDecision)).items()}


def test_keys_decide_note_undo_skip_and_quit(tmp_path: Path) -> None:
    pairs = [make_pair(i) for i in range(5)]
    with run_with_pairs(tmp_path, pairs) as run:
        order = [i.pair_id for i in ReviewSession(run, pairs, settings(), via="t").pending()]
        # pair 0: note + "1"; pair 1: "2", undo, then tie; pair 2: skip; pair 3: flag; then quit
        result, screen, session = drive(
            run, pairs, ["n", "1", "2", "u", "t", "s", "f", "q"], lines=["clear winner"]
        )
        assert (result.decided, result.undone, result.skipped, result.quit) == (4, 1, 1, True)
        decided = standing(run)
        assert set(decided) == {order[0], order[1], order[3]}
        first = decided[order[0]]
        assert first.note == "clear winner" and first.verdict == first.shown_first  # "1" picks what was first
        assert decided[order[1]].verdict == "tie" and decided[order[3]].verdict == "flag"
        assert sum(d.withdrawn for d in run.stage("reviews", ReviewDecision)) == 1
        assert "stopped: 3 of 5 reviewed by alice, 1 skipped" in screen
        assert "pair 1 of 5" in screen and "[u] undo" in screen


def test_resume_asks_only_the_rest_and_finishes(tmp_path: Path) -> None:
    pairs = [make_pair(i) for i in range(3)]
    with run_with_pairs(tmp_path, pairs) as run:
        drive(run, pairs, ["1", "q"])
    with RunDir(tmp_path) as run:
        result, screen, _ = drive(run, pairs, ["2", "2"])
        assert (result.decided, result.quit, result.remaining) == (2, False, 0)
        assert "done: 3 of 3 reviewed by alice" in screen
        assert len(standing(run)) == 3


def test_model_text_is_text_not_markup_and_the_ai_choice_is_hidden(tmp_path: Path) -> None:
    pairs = [
        make_pair(
            0,
            chosen="[bold red]chosen[/bold red] <script>x</script>",
            rejected="[link=http://x]y[/link]",
            score=0.91,
        )
    ]
    with run_with_pairs(tmp_path, pairs) as run:
        _, screen, _ = drive(run, pairs, ["q"])
        assert "[bold red]chosen[/bold red] <script>x</script>" in screen
        assert "[link=http://x]y[/link]" in screen
        assert "AI prefers" not in screen and "0.91" not in screen
        _, shown, _ = drive(run, pairs, ["q"], show_ai_verdict=True)
        assert "AI prefers the" in shown and "p = 0.91" in shown


def test_keys_running_out_stops_cleanly(tmp_path: Path) -> None:
    pairs = [make_pair(i) for i in range(2)]
    with run_with_pairs(tmp_path, pairs) as run:
        result, _, _ = drive(run, pairs, ["x", "1"])
        assert (result.decided, result.quit, result.remaining) == (1, True, 1)


ESCAPES = {
    "clear screen": "\x1b[2J\x1b[H",
    "window title (OSC 0)": "\x1b]0;pwned\x07",
    "hidden hyperlink (OSC 8)": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "carriage return overwrite": "bad answer\rgood answer",
    "right-to-left override": "\u202etxt.exe",
}


def test_control_sequences_in_model_text_never_reach_the_terminal(tmp_path: Path) -> None:
    """Every escape in a prompt or an answer is shown as text: it can neither act nor hide."""
    hostile = "".join(ESCAPES.values())
    pairs = [make_pair(0, chosen=f"A {hostile}", rejected=f"B {hostile}", prompt=f"Q {hostile}")]
    with run_with_pairs(tmp_path, pairs) as run:
        _, screen, _ = drive(run, pairs, ["q"])
    assert not any(ch in screen for ch in "\x1b\x07\r\u202e")
    assert screen.count("\\x1b]8;;https://evil.example") == 3  # shown, in the prompt and both answers
    assert "\\x1b[2J" in screen and "\\u202e" in screen and "\\r" in screen


def test_a_rubric_pair_shows_the_items_that_decided_it(tmp_path: Path) -> None:
    pair = make_pair(0).model_copy(
        update={"rubric_items": ("harm: The answer refuses to help hurt anyone.",)}
    )
    with run_with_pairs(tmp_path, [pair]) as run:
        _, screen, session = drive(run, [pair], ["f", "q"])
        assert "checklist items that decided it" in screen
        assert "harm: The answer refuses to help hurt anyone." in screen
        assert session.items[pair.id].rubric_items == pair.rubric_items
