"""`rlaif bench`: every generation stage against raw vLLM on the same requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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

    @app.command("bench-scale")
    def bench_scale(
        prompts: Annotated[
            str, typer.Option("--prompts", help="Prompt counts to measure, comma-separated.")
        ] = "1000,10000,100000",
        concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 64,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for scale.json, scale.md and scale.png.")
        ] = Path("bench-scale"),
    ) -> None:
        """The client's ceiling and the pipeline's requests/s, CPU and memory against a zero-latency stub."""
        from rlaif.bench.scale import markdown, plot, run_scale_bench
        from rlaif.errors import ConfigError

        try:
            sizes = [int(p.replace("_", "")) for p in prompts.split(",") if p.strip()]
        except ValueError:
            raise ConfigError(
                f"--prompts {prompts!r}: write prompt counts separated by commas, e.g. 1000,10000"
            ) from None
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"--prompts {prompts!r}: give at least one prompt count of 1 or more")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder")
        out.mkdir(parents=True, exist_ok=True)

        def shown(point: Any) -> None:
            console.print(
                f"{point.prompts:,} prompts: raw {point.raw_requests_per_second:,.0f} req/s, pipeline "
                f"{point.pipeline_requests_per_second:,.0f} req/s ({point.ratio_to_raw:.2f}), peak RSS "
                f"{point.peak_rss_mib:,.0f} MiB, resume {point.resume_seconds:.1f} s",
                markup=False, highlight=False,
            )  # fmt: skip

        report = run_scale_bench(sorted(set(sizes)), concurrency=concurrency, progress=shown)
        (out / "scale.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        table = markdown(report)
        (out / "scale.md").write_text(table + "\n", encoding="utf-8")
        plot(report, out / "scale.png")
        console.print(table, markup=False, highlight=False)
        console.print(
            f"report: {out / 'scale.json'}, chart: {out / 'scale.png'}", markup=False, highlight=False
        )
