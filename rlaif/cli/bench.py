"""`rlaif bench`: every generation stage against raw vLLM on the same requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlaif.cli.options import ConfigArg, SetOpt, console, output_file, overrides
from rlaif.cli.render import generation_markdown

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `rlaif bench` to the top-level app."""

    @app.command()
    def bench(
        config: ConfigArg,
        json_path: Annotated[
            Path | None, typer.Option("--json", help="Write the report as JSON here.", callback=output_file)
        ] = None,
        markdown: Annotated[
            Path | None, typer.Option("--markdown", help="Write a markdown table here.", callback=output_file)
        ] = None,
        set_: SetOpt = None,
    ) -> None:
        """Benchmark each generation stage against raw vLLM on the same requests (fresh server each)."""
        from rlaif.bench.generation import run_bench
        from rlaif.config import load_config

        report = run_bench(load_config(config, overrides(set_)))
        table = generation_markdown(report)
        if json_path:
            json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if markdown:
            markdown.write_text(table + "\n", encoding="utf-8")
        console.print(table, markup=False, highlight=False)
