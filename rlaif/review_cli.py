"""`rlaif review ...`: human spot-checks from the command line (a thin skin over `rlaif.review`)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlaif.errors import ConfigError, ReviewError

__all__ = ["review_app"]

review_app = typer.Typer(
    no_args_is_help=True,
    help="Human spot-checks of the AI's pairs: review, import, agreement report (see review: in the config).",
)
console = Console()

RunDirArg = Annotated[Path, typer.Argument(help="Run directory (the config's run_dir).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Run config YAML; default: the config saved in the run directory."),
]
ReviewerOpt = Annotated[
    str | None, typer.Option("--reviewer", "-r", help="Reviewer id; default: review.reviewer or your login.")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value (needs --config): --set review.sample.size=20."),
]


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
    from rlaif.cli import _overrides
    from rlaif.config import load_config
    from rlaif.review import ReviewSession, review_settings, sampled_pairs
    from rlaif.store import RunDir

    if not (run_dir / "manifest.json").is_file() and not (run_dir / "pairs.jsonl").is_file():
        raise ReviewError(f"{run_dir} is not a run directory (no manifest.json or pairs.jsonl)")
    if settings and config is None:
        raise ConfigError("--set needs --config: the overrides apply to a config file")
    loaded = load_config(config, _overrides(settings)) if config is not None else None
    with RunDir(run_dir) as run:
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
    from rlaif.review_terminal import review_in_terminal

    with _session(run_dir, config, set_, reviewer, via="terminal") as (_, _settings, session):
        review_in_terminal(session, console=console, read_key=_key_source(), read_line=console.input)


@review_app.command("serve")
def serve(
    run_dir: RunDirArg,
    config: ConfigOpt = None,
    reviewer: ReviewerOpt = None,
    set_: SetOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
) -> None:
    """Review sampled pairs in a browser: a local page with a random access token."""
    from rlaif.review_web import ReviewServer

    with _session(run_dir, config, set_, reviewer, via="web") as (_, _settings, session):
        server = ReviewServer(session, port=port)
        console.print(f"reviewer [bold]{session.reviewer}[/bold]: {session.done} of {session.total} reviewed")
        console.print("open this address (it holds the access token; keep it to yourself):")
        console.print(server.url, highlight=False, soft_wrap=True)
        console.print("decisions are saved as you make them; Ctrl-C stops the server, rerun to resume")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()
        console.print(f"stopped: {session.done} of {session.total} reviewed by {session.reviewer}")


@review_app.command("hook")
def hook(
    run_dir: RunDirArg,
    config: ConfigOpt = None,
    reviewer: ReviewerOpt = None,
    set_: SetOpt = None,
    spec: Annotated[str | None, typer.Option("--hook", help="module:function; default: review.hook.")] = None,
) -> None:
    """Let a Python callable (review.hook) review the sampled pairs."""
    from rlaif.review_hook import load_hook, run_hook

    def hook_name(settings: Any) -> str:
        name = spec or settings.config.hook
        if not name:
            raise ConfigError("no review hook: set review.hook: module:function in the config or pass --hook")
        return f"hook:{name}"  # a hook is not the person at the keyboard

    with _session(run_dir, config, set_, reviewer, via="hook", default_reviewer=hook_name) as (
        _,
        settings,
        session,
    ):
        name = spec or settings.config.hook
        if not name:
            raise ConfigError("no review hook: set review.hook: module:function in the config or pass --hook")
        stored = run_hook(
            session, load_hook(name, base_dir=settings.base_dir), batch_size=settings.config.hook_batch_size
        )
        console.print(f"{name}: {stored} decisions stored; {session.done} of {session.total} reviewed")


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
    from rlaif.review_files import export_batch as export

    name = reviewer or "batch"
    with _session(run_dir, config, set_, name, via="file") as (run, _settings, session):
        jsonl, csv_path = export(run, session, out=out, reviewer=reviewer or "")
        console.print(f"{len(session.pending())} pairs to review:\n  {jsonl}\n  {csv_path}")
        console.print("fill verdict (first, second, tie, flag) and reviewer, then `rlaif review import`")


@review_app.command("import")
def import_(
    run_dir: RunDirArg,
    file: Annotated[Path, typer.Argument(help="A filled-in batch file (.jsonl or .csv).")],
    reviewer: ReviewerOpt = None,
) -> None:
    """Import annotators' decisions from a batch file made by `export-batch`."""
    from rlaif.review_files import import_decisions
    from rlaif.store import RunDir

    if not run_dir.is_dir():
        raise ReviewError(f"{run_dir} is not a run directory")
    with RunDir(run_dir) as run:
        result = import_decisions(run, file, reviewer=reviewer)
    console.print(f"stored {result.stored}, unchanged {result.unchanged}, without verdict {result.blank}")


@review_app.command("report")
def report(run_dir: RunDirArg, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """AI-human and reviewer agreement with bootstrap intervals; also written to review_report.json."""
    from rlaif.agreement import write_report

    with _session(run_dir, config, set_, None, via="report") as (run, settings, _):
        result = write_report(run, settings)
    print_report(result)
    console.print(f"written to {run_dir / 'review_report.json'}")


def _num(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def print_report(result: dict[str, Any]) -> None:
    """The report as rich tables."""
    level = int(round(100 * result["settings"]["confidence"]))
    ai = result["ai_vs_human"]
    table = Table(title=f"AI judge vs people ({level}% bootstrap intervals)")
    for column in ("overall / principle", "pairs", "decisions", "accuracy", "kappa", "ties", "flags"):
        table.add_column(column, justify="left" if column.startswith("overall") else "right")
    rows = [("overall", ai["overall"])] + [(f"· {k}", v) for k, v in ai["by_principle"].items()]
    for scope, stats in rows:
        table.add_row(
            scope, str(stats["pairs"]), str(stats["decisions"]),
            _num(stats["accuracy"], stats.get("accuracy_ci")), _num(stats["kappa"], stats.get("kappa_ci")),
            str(stats["ties"]), str(stats["flags"]),
        )  # fmt: skip
    console.print(table)
    people = result["between_reviewers"]
    if len(people["reviewers"]) >= 2:
        between = Table(title="Between reviewers")
        for column in ("reviewers", "shared pairs", "raw agreement", "kappa"):
            between.add_column(column)
        for names, stats in people["cohen"].items():
            between.add_row(
                f"Cohen: {names}", str(stats["pairs"]), _num(stats["raw_agreement"]),
                _num(stats["kappa"], stats["kappa_ci"]),
            )  # fmt: skip
        if people["fleiss"]:
            fleiss = people["fleiss"]
            between.add_row(
                f"Fleiss: {len(people['reviewers'])} reviewers", str(fleiss["pairs"]), "",
                _num(fleiss["kappa"], fleiss["kappa_ci"]),
            )  # fmt: skip
        console.print(between)
    reviewers = ", ".join(f"{name} ({count})" for name, count in result["reviewers"].items()) or "none yet"
    console.print(f"pairs reviewed: {result['pairs_reviewed']}; reviewers: {reviewers}")
    gate = result["gate"]
    if gate is None:
        console.print("gate: none configured (review.gate)")
    elif gate["passed"]:
        console.print(
            f"gate: [green]passed[/green] ({gate['metric']} {gate['value']:.3f} on {gate['pairs']} pairs)"
        )
    else:
        console.print(f"gate: [red]failed[/red]: {'; '.join(gate['reasons'])}")
