"""The `rlaif` command: a thin skin over the library, one command per stage plus `run`."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from rlaif.errors import ConfigError, RlaifError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="RLAIF and Constitutional AI on vLLM and TRL."
)
constitution_app = typer.Typer(no_args_is_help=True, help="Check constitution files.")
train_app = typer.Typer(no_args_is_help=True, help="Train from the exported data.")
model_app = typer.Typer(no_args_is_help=True, help="The bundled model.")
app.add_typer(constitution_app, name="constitution")
app.add_typer(train_app, name="train")
app.add_typer(model_app, name="model")

console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Run config YAML (see examples/quickstart.yaml).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value: --set revise.rounds=1 (YAML value)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _overrides(values: list[str] | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write it as key=value, e.g. --set revise.rounds=1")
        overrides[key.strip()] = yaml.safe_load(raw)
    return overrides


def _run(config_path: Path, stages: tuple[str, ...], settings: list[str] | None, quiet: bool) -> None:
    from rlaif.config import load_config
    from rlaif.run import run_pipeline

    config = load_config(config_path, _overrides(settings))
    summary = run_pipeline(config, stages=stages, quiet=quiet)
    print_summary(summary)


@app.command()
def run(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Run the whole pipeline: respond, critique/revise, judge, pairs, export, DPO."""
    from rlaif.run import ALL_STAGES

    _run(config, ALL_STAGES, set_, quiet)


@app.command()
def respond(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Sample first answers for the prompt set."""
    _run(config, ("respond",), set_, quiet)


@app.command()
def revise(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Critique and revise the first answers (needs `respond`)."""
    _run(config, ("revise",), set_, quiet)


@app.command()
def judge(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Judge pairs of first answers in both orders (needs `respond`)."""
    _run(config, ("judge",), set_, quiet)


@app.command()
def export(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """Build preference pairs and SFT rows and export them as JSONL and datasets."""
    _run(config, ("export",), set_, quiet)


@train_app.command("dpo")
def train_dpo(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
    """DPO on the exported pairs (TRL DPOTrainer); train.dpo.args go to DPOConfig."""
    _run(config, ("dpo",), set_, quiet)


@constitution_app.command("validate")
def constitution_validate(
    file: Annotated[
        str, typer.Argument(help="Constitution file (YAML, CAI JSON, llm-swarm JSON) or shipped name.")
    ],
) -> None:
    """Check a constitution file and list its principles."""
    from rlaif.constitution import find_constitution, load_constitution

    constitution = load_constitution(find_constitution(file))
    table = Table(title=f"{constitution.name} v{constitution.version} (hash {constitution.hash})")
    for column in ("id", "weight", "tags", "critique request"):
        table.add_column(column)
    for p in constitution.principles:
        table.add_row(p.id, f"{p.weight:g}", ", ".join(p.tags), p.critique_request[:70])
    console.print(table)
    console.print(
        f"[green]ok[/green]: {len(constitution.principles)} principles, {len(constitution.examples)} examples"
    )


@model_app.command("prepare")
def model_prepare() -> None:
    """Convert the bundled SmolLM2-135M-Instruct GGUF into a model folder (once) and print its path."""
    from rlaif.bundled import ensure_model

    console.print(str(ensure_model()))


def print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="rlaif run summary", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for name, count in summary.get("counts", {}).items():
        table.add_row(name, str(count))
    judge_stats = summary.get("judge", {})
    if judge_stats.get("judged"):
        rate = judge_stats.get("consistency_rate")
        table.add_row("judge order-consistency", "n/a" if rate is None else f"{100 * rate:.1f}%")
        table.add_row("judge unparsed orders", str(judge_stats.get("unparsed_orders", 0)))
    for stage, report in summary.get("stages", {}).items():
        if report.get("failed"):
            table.add_row(
                f"[red]{stage} failed requests[/red]", f"{report['failed']}: {report['errors'][:1]}"
            )
    dpo = summary.get("dpo")
    if dpo:
        table.add_row("DPO steps", str(dpo["steps"]))
        table.add_row("DPO loss first → last", f"{dpo['loss_first']:.4f} → {dpo['loss_last']:.4f}")
    for name, seconds in summary.get("seconds", {}).items():
        table.add_row(f"time {name}", f"{seconds:.1f} s")
    if "peak_rss_gib" in summary:
        table.add_row("peak memory (process tree)", f"{summary['peak_rss_gib']:.2f} GiB")
    for name, path in summary.get("files", {}).items():
        table.add_row(f"files: {name}", path)
    console.print(table)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so context managers stop the managed server


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        app(standalone_mode=False)
    except RlaifError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: rerun the same command to resume where it stopped")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
