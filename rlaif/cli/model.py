"""`rlaif model ...`: the bundled model."""

from __future__ import annotations

import typer

from rlaif.cli.options import CommandGroup, console

__all__ = ["model_app"]

model_app = typer.Typer(cls=CommandGroup, no_args_is_help=True, help="The bundled model.")


@model_app.command("prepare")
def model_prepare() -> None:
    """Convert the bundled SmolLM2-135M-Instruct GGUF into a model folder (once) and print its path."""
    from rlaif.backends.bundled import ensure_model

    console.print(str(ensure_model()))
