"""The `rlaif` command: a thin skin over the library, one command per stage plus `run`.

Each command group is a module of this folder; this one assembles them and turns errors into one line.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated, Any

import typer
from rich.text import Text

from rlaif.cli import bench, iterate, pipeline
from rlaif.cli.constitution import constitution_app
from rlaif.cli.evaluate import evaluate_app
from rlaif.cli.model import model_app
from rlaif.cli.options import CommandGroup, err
from rlaif.cli.pipeline import RunInterrupted
from rlaif.cli.review import review_app
from rlaif.cli.train import train_app
from rlaif.compat import missing_package
from rlaif.errors import RlaifError

__all__ = ["app", "main"]

app = typer.Typer(
    cls=CommandGroup,
    no_args_is_help=True,
    add_completion=False,
    help="RLAIF and Constitutional AI on vLLM and TRL.",
)


def _version(value: bool) -> None:
    if value:
        from rlaif._version import __version__

        typer.echo(f"rlaif {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """RLAIF and Constitutional AI on vLLM and TRL."""


pipeline.register(app)
iterate.register(app)
bench.register(app)
app.add_typer(constitution_app, name="constitution")
app.add_typer(train_app, name="train")
app.add_typer(model_app, name="model")
app.add_typer(review_app, name="review")
app.add_typer(evaluate_app, name="evaluate")


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so context managers stop the managed server


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        # Outside standalone mode click hands back a command's `typer.Exit(code)` as the return value.
        code = app(standalone_mode=False)
    except RlaifError as exc:
        # The message may hold paths, names or model text: never read it as markup.
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, RunInterrupted):
        err.print("interrupted: rerun the same command to resume where it stopped")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A full disk, a read-only folder, a path that is a folder: the machine or a path given, not
        # a bug. What was stored before stays; the run resumes once the cause is fixed.
        message, code = _os_error(exc)
        err.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)
        sys.exit(code)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        missing = missing_package(exc) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None:  # a judge-only install has no torch: name the extra that installs it
            err.print(Text.assemble(("error: ", "bold red"), str(missing)), highlight=False, soft_wrap=True)
            sys.exit(missing.exit_code)
        # Recent typer vendors its own click (typer._click), whose exceptions are not click's:
        # recognise them by shape so a usage error is a message, not a traceback.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        log = _crash_log(exc)
        err.print(
            Text.assemble(("error: ", "bold red"), f"internal error ({type(exc).__name__}: {exc}); "
                          f"this is a bug in rlaif, the traceback is in {log}: please report it"),
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        sys.exit(4)
    if isinstance(code, int) and code:
        sys.exit(code)


_PATH_MISTAKES = (IsADirectoryError, NotADirectoryError, FileNotFoundError, FileExistsError, PermissionError)


def _os_error(exc: OSError) -> tuple[str, int]:
    """One line for an operating-system error, and its exit code (2: a path given, 3: the machine)."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{what}{where}: free some space, then rerun the same command to resume", 3
    if exc.errno == errno.EFBIG:
        return f"{what}{where}: a file reached the size limit (ulimit -f); raise it, then rerun to resume", 3
    if isinstance(exc, _PATH_MISTAKES):
        return f"{what}{where}: check the path and its permissions", 2
    return f"{what}{where}; what was stored before is kept, rerun the same command to resume", 3


def _crash_log(exc: BaseException) -> str:
    """Write the traceback of an unexpected error to a file; its path, for the one-line message."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="rlaif-crash-", suffix=".log", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(" ".join(sys.argv) + "\n\n")
        traceback.print_exception(exc, file=handle)
    return handle.name


if __name__ == "__main__":
    main()
