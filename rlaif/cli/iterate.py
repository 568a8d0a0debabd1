"""`rlaif iterate`: rounds of the whole loop, each round's policy answering the next round's prompts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from rlaif.cli.options import ConfigArg, ForceOpt, JsonOpt, QuietOpt, SetOpt, console, err, overrides

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `rlaif iterate` to the top-level app."""

    @app.command()
    def iterate(
        config: ConfigArg,
        json_path: JsonOpt = None,
        set_: SetOpt = None,
        quiet: QuietOpt = False,
        force: ForceOpt = False,
    ) -> None:
        """Rounds of the loop (the config's iterate: section): each trains on its policy's own answers, is
        measured on held-out prompts against the base and the round before, and stop rules end it.

        Resumable: rerun the same command after an interruption. Exits with status 1 when a gate
        refused a round (review its pairs or fix the data, then rerun to retry it).
        """
        from rlaif.cli.pipeline import RunInterrupted
        from rlaif.cli.tables.iterate import print_rounds
        from rlaif.config import load_config
        from rlaif.rounds.loop import iterate as run_iterate

        loaded = load_config(config, overrides(set_))

        def say(line: str) -> None:
            if not quiet:
                err.print(line, markup=False, highlight=False, soft_wrap=True)

        try:
            report = run_iterate(loaded, quiet=quiet, force=force, echo=say)
        except KeyboardInterrupt:
            raise RunInterrupted from None
        print_rounds(report)
        if json_path:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
            console.print(f"report: {json_path}", highlight=False, markup=False)
        if report.status == "refused" and report.stop is not None:
            err.print(
                Text.assemble(("error: ", "bold red"), f"round {report.stop.round} was refused: "
                              f"{report.stop.reason}; rerun the same command to retry it"),
                highlight=False, soft_wrap=True,
            )  # fmt: skip
            raise typer.Exit(1)
