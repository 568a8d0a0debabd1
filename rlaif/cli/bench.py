"""`rlaif bench`: every generation stage against raw vLLM on the same requests; `bench-scale` against a
zero-latency stub; `bench-trust`: what the data-trust machinery is worth against exact ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rlaif.cli.options import ConfigArg, SetOpt, console, output_file, overrides
from rlaif.cli.tables.bench import generation_markdown

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
            str, typer.Option("--prompts", help="Prompt counts to measure, comma-separated (empty: none).")
        ] = "1000,10000,100000",
        concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight (per server).")] = 64,
        servers: Annotated[
            str,
            typer.Option(
                "--servers", help="Also run against N stub servers at once, for each N (e.g. 1,2,4)."
            ),
        ] = "",
        servers_prompts: Annotated[
            int, typer.Option("--servers-prompts", min=1, help="Prompts of each --servers run.")
        ] = 2000,
        workers: Annotated[
            str,
            typer.Option(
                "--workers", help="Also run with N client processes (--workers N), for each N (e.g. 1,2)."
            ),
        ] = "",
        workers_prompts: Annotated[
            int, typer.Option("--workers-prompts", min=1, help="Prompts of each --workers run.")
        ] = 2000,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for scale.json, scale.md and scale.png.")
        ] = Path("bench-scale"),
    ) -> None:
        """The client's ceiling and the pipeline's requests/s, CPU and memory against a zero-latency stub."""
        from rlaif.bench.reports import ScalePoint, WorkersPoint
        from rlaif.bench.scale import markdown, plot, plot_workers, run_scale_bench
        from rlaif.errors import ConfigError

        sizes, counts = _counts("--prompts", prompts), _counts("--servers", servers)
        processes = _counts("--workers", workers)
        if not sizes and not counts and not processes:
            raise ConfigError(
                "--prompts, --servers and --workers are all empty: give prompt, server or worker counts"
            )
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder")
        out.mkdir(parents=True, exist_ok=True)

        def shown(point: Any) -> None:
            if isinstance(point, ScalePoint):
                line = (
                    f"{point.prompts:,} prompts: raw {point.raw_requests_per_second:,.0f} req/s, pipeline "
                    f"{point.pipeline_requests_per_second:,.0f} req/s ({point.ratio_to_raw:.2f}), peak RSS "
                    f"{point.peak_rss_mib:,.0f} MiB, resume {point.resume_seconds:.1f} s"
                )
            elif isinstance(point, WorkersPoint):
                line = (
                    f"{point.workers} worker(s): {point.requests_per_second:,.0f} req/s, "
                    f"{point.cpu_ms_per_request:.2f} client CPU ms/request, {point.client_cores:.2f} client "
                    f"cores, stub {point.stub_cores:.2f} cores, "
                    f"machine {point.machine_busy_cores:.2f} cores busy"
                )
            else:
                line = (
                    f"{point.servers} server(s): {point.requests_per_second:,.0f} req/s, "
                    f"{point.cpu_ms_per_request:.2f} client CPU ms/request, "
                    f"{point.client_cores:.2f} cores busy"
                )
            console.print(line, markup=False, highlight=False)

        report = run_scale_bench(
            sizes, concurrency=concurrency, servers=counts, servers_prompts=servers_prompts,
            workers=processes, workers_prompts=workers_prompts, progress=shown,
        )  # fmt: skip
        (out / "scale.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        table = markdown(report)
        (out / "scale.md").write_text(table + "\n", encoding="utf-8")
        if report.points:
            plot(report, out / "scale.png")
        if report.workers:
            plot_workers(report, out / "scale-workers.png")
        console.print(table, markup=False, highlight=False)
        console.print(
            f"report: {out / 'scale.json'}, chart: {out / 'scale.png'}", markup=False, highlight=False
        )

    @app.command("bench-trust")
    def bench_trust(
        prompts: Annotated[
            int, typer.Option("--prompts", min=1, help="Prompts (one judge pair each) every judge judges.")
        ] = 400,
        seed: Annotated[int, typer.Option(help="The runs' seed.")] = 0,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for trust.json, trust.md and trust.png.")
        ] = Path("bench-trust"),
    ) -> None:
        """Synthetic judges of known accuracy, length and position bias through a naive pipeline and
        rlaif's defaults: the exported labels' accuracy against exact truth, what was kept, what refused."""
        from rlaif.bench.trust import GRID, plot, run_trust_bench
        from rlaif.cli.tables.bench import trust_markdown
        from rlaif.errors import ConfigError
        from rlaif.reports import percent

        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; give a folder")
        out.mkdir(parents=True, exist_ok=True)

        def shown(cell: Any) -> None:
            judge, naive, rlaif = cell.judge, cell.naive, cell.rlaif
            verdict = "REFUSED (" + ", ".join(rlaif.failed_gates) + ")" if rlaif.refused else "passed"
            console.print(
                f"a={judge.accuracy:g} l={judge.length_bias:g} q={judge.position_bias:g}: naive "
                f"{percent(naive.label_accuracy.value)} of {naive.exported}, rlaif "
                f"{percent(rlaif.label_accuracy.value)} of {rlaif.exported}, {verdict}",
                markup=False, highlight=False,
            )  # fmt: skip

        report = run_trust_bench(GRID, prompts=prompts, seed=seed, progress=shown)
        (out / "trust.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        table = trust_markdown(report)
        (out / "trust.md").write_text(table + "\n", encoding="utf-8")
        plot(report, out / "trust.png")
        console.print(table, markup=False, highlight=False)
        console.print(
            f"report: {out / 'trust.json'}, chart: {out / 'trust.png'}", markup=False, highlight=False
        )


def _counts(option: str, text: str) -> list[int]:
    """Sorted distinct counts from "1000,10000" (empty text: none)."""
    from rlaif.errors import ConfigError

    try:
        counts = sorted({int(p.replace("_", "")) for p in text.split(",") if p.strip()})
    except ValueError:
        raise ConfigError(f"{option} {text!r}: write counts separated by commas, e.g. 1000,10000") from None
    if counts and counts[0] < 1:
        raise ConfigError(f"{option} {text!r}: every count must be 1 or more")
    return counts
