"""`rlaif review ...`: human spot-checks from the command line (a thin skin over `rlaif.review.session`)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from rlaif.cli.options import CommandGroup, console, overrides, set_option
from rlaif.cli.tables.review import print_review_report
from rlaif.errors import ConfigError, ReviewError

__all__ = ["review_app"]

review_app = typer.Typer(
    cls=CommandGroup,
    no_args_is_help=True,
    help="Human spot-checks of the AI's pairs: review, import, agreement report (see review: in the config). "
    "Several reviewers may work on one run at once, beside a running pipeline.",
)

RunDirArg = Annotated[Path, typer.Argument(help="Run directory (the config's run_dir).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Run config YAML; default: the config saved in the run directory."),
]
ReviewerOpt = Annotated[
    str | None,
    typer.Option(
        "--reviewer",
        "-r",
        help="Reviewer name (no path characters); each reviewer gets their own order. "
        "Default: review.reviewer or your login.",
    ),
]
SetOpt = set_option("review.sample.size=20", " (needs --config)")


@contextlib.contextmanager
def _session(
    run_dir: Path,
    config: Path | None,
    settings: list[str] | None,
    reviewer: str | None,
    *,
    via: str,
    default_reviewer: Callable[[Any], str | None] = lambda settings: None,
) -> Iterator[Any]:
    """Open the run, resolve its review settings, and start a session for the reviewer."""
    from rlaif.config import load_config
    from rlaif.review.session import ReviewSession, review_settings, sampled_pairs
    from rlaif.store import RunDir, RunLayout

    layout = RunLayout(run_dir)
    if not layout.manifest.is_file() and not layout.stage_file(RunLayout.PAIRS).is_file():
        raise ReviewError(f"{run_dir} is not a run directory (no manifest.json or pairs.jsonl)")
    if settings and config is None:
        raise ConfigError("--set needs --config: the overrides apply to a config file")
    loaded = load_config(config, overrides(settings)) if config is not None else None
    # No run-directory lock: reviewers, reports and a running pipeline work side by side; decisions
    # go to reviews.jsonl under its own append lock.
    with RunDir(run_dir, lock=False) as run:
        resolved = review_settings(run, loaded, reviewer=reviewer)
        if reviewer is None and resolved.config.reviewer is None and (name := default_reviewer(resolved)):
            resolved = dataclasses.replace(resolved, reviewer=name)
        yield run, resolved, ReviewSession(run, sampled_pairs(run, resolved), resolved, via=via)


def _key_source() -> Callable[[], str]:
    if sys.stdin.isatty():
        import click

        return click.getchar

    def line_key() -> str:  # piped input: the first character of each line is a key
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.strip()[:1]

    return line_key


@review_app.command("terminal")
def terminal(
    run_dir: RunDirArg, config: ConfigOpt = None, reviewer: ReviewerOpt = None, set_: SetOpt = None
) -> None:
    """Review sampled pairs in the terminal: 1/2 better, t tie, f flag, n note, u undo, s skip, q quit."""
    from rlaif.review.terminal import review_in_terminal

    with _session(run_dir, config, set_, reviewer, via="terminal") as (_, _settings, session):
        review_in_terminal(session, console=console, read_key=_key_source(), read_line=console.input)


@review_app.command("serve")
def serve(
    run_dir: RunDirArg,
    config: ConfigOpt = None,
    reviewer: ReviewerOpt = None,
    set_: SetOpt = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
) -> None:
    """Review sampled pairs in a browser: a local page with a random access token."""
    from rlaif.review.web import ReviewServer

    with _session(run_dir, config, set_, reviewer, via="web") as (_, _settings, session):
        server = ReviewServer(session, port=port)
        console.print(
            Text.assemble(
                "reviewer ", (session.reviewer, "bold"), f": {session.done} of {session.total} reviewed"
            )
        )
        console.print("open this address (it holds the access token; keep it to yourself):")
        console.print(server.url, highlight=False, soft_wrap=True)
        console.print("decisions are saved as you make them; Ctrl-C stops the server, rerun to resume")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()
        console.print(
            f"stopped: {session.done} of {session.total} reviewed by {session.reviewer}",
            markup=False,
            highlight=False,
        )


@review_app.command("hook")
def hook(
    run_dir: RunDirArg,
    config: ConfigOpt = None,
    reviewer: ReviewerOpt = None,
    set_: SetOpt = None,
    spec: Annotated[str | None, typer.Option("--hook", help="module:function; default: review.hook.")] = None,
) -> None:
    """Let a Python callable (review.hook) review the sampled pairs."""
    from rlaif.review.hook import load_hook, run_hook

    def chosen(settings: Any) -> str:
        """The hook from --hook or the user's own --config, never from the run folder's saved config:
        opening someone else's run must not run code it names."""
        name = spec or (settings.config.hook if config is not None else None)
        if name:
            return str(name)
        if settings.config.hook:
            raise ConfigError(
                f"{run_dir}'s saved config names the hook {settings.config.hook!r}, but code named by a run "
                f"folder is never run; if you trust it, pass --hook {settings.config.hook} (or --config)"
            )
        raise ConfigError("no review hook: set review.hook: module:function in the config or pass --hook")

    def hook_name(settings: Any) -> str:
        return f"hook:{chosen(settings)}"  # a hook is not the person at the keyboard

    with _session(run_dir, config, set_, reviewer, via="hook", default_reviewer=hook_name) as (
        _,
        settings,
        session,
    ):
        name = chosen(settings)
        stored = run_hook(
            session, load_hook(name, base_dir=settings.base_dir), batch_size=settings.config.hook_batch_size
        )
        console.print(
            f"{name}: {stored} decisions stored; {session.done} of {session.total} reviewed",
            markup=False,
            highlight=False,
        )


@review_app.command("export-batch")
def export_batch(
    run_dir: RunDirArg,
    config: ConfigOpt = None,
    reviewer: ReviewerOpt = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the files; default RUN_DIR/review_batches.")
    ] = None,
) -> None:
    """Write the pairs to review as JSONL and CSV for annotators elsewhere (fill `verdict`, then import)."""
    from rlaif.review.files import export_batch as export

    name = reviewer if reviewer is not None else "batch"
    with _session(run_dir, config, set_, name, via="file") as (run, _settings, session):
        jsonl, csv_path = export(run, session, out=out, reviewer=reviewer or "")
        console.print(
            f"{len(session.pending())} pairs to review:\n  {jsonl}\n  {csv_path}",
            markup=False,
            highlight=False,
        )
        console.print("fill verdict (first, second, tie, flag) and reviewer, then `rlaif review import`")


@review_app.command("import")
def import_(
    run_dir: RunDirArg,
    file: Annotated[Path, typer.Argument(help="A filled-in batch file (.jsonl or .csv).")],
    reviewer: ReviewerOpt = None,
) -> None:
    """Import annotators' decisions from a batch file made by `export-batch`."""
    from rlaif.config import reviewer_problem
    from rlaif.review.files import import_decisions
    from rlaif.store import RunDir

    if not run_dir.is_dir():
        raise ReviewError(f"{run_dir} is not a run directory")
    if reviewer is not None and (problem := reviewer_problem(reviewer)):
        raise ConfigError(f"--reviewer {reviewer!r} {problem}")
    with RunDir(run_dir, lock=False) as run:
        result = import_decisions(run, file, reviewer=reviewer)
    console.print(f"stored {result.stored}, unchanged {result.unchanged}, without verdict {result.blank}")


@review_app.command("report")
def report(run_dir: RunDirArg, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """AI-human and reviewer agreement with bootstrap intervals; also written to review_report.json."""
    from rlaif.review.agreement import write_report

    with _session(run_dir, config, set_, None, via="report") as (run, settings, _):
        result = write_report(run, settings)
    print_review_report(result)
    console.print(f"written to {run.layout.review_report}", highlight=False, markup=False)
