"""`rlaif run` and one command per generation stage: respond, revise, judge, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rlaif.cli.options import ConfigArg, ForceOpt, QuietOpt, SetOpt, overrides
from rlaif.cli.tables.pipeline import print_summary

__all__ = ["RunInterrupted", "register", "run_stages"]

PushOpt = Annotated[
    str | None,
    typer.Option(
        "--push-to-hub",
        metavar="REPO",
        help="Push the export to this Hub dataset repo (user/name) after writing it; needs a login.",
    ),
]


WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        metavar="N",
        help="Client processes that generate together, the prompts split among them (model.workers).",
    ),
]


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM during a run; main() reports it and exits 130."""


def run_stages(
    config_path: Path, stages: tuple[str, ...], settings: list[str] | None, quiet: bool, force: bool = False
) -> None:
    """Load the config with its `--set` overrides, run these stages, print the summary."""
    from rlaif.config import load_config
    from rlaif.errors import QualityGateError
    from rlaif.pipeline.reports import RunSummary
    from rlaif.pipeline.run import run_pipeline
    from rlaif.train.distributed import ranks

    config = load_config(config_path, overrides(settings))
    try:
        summary = run_pipeline(config, stages=stages, quiet=quiet, force=force)
    except KeyboardInterrupt:
        # Click turns a KeyboardInterrupt into its own Abort (exit 1 or 0); carry it out as ours.
        raise RunInterrupted from None
    except QualityGateError as exc:
        if isinstance(exc.summary, RunSummary):
            print_summary(exc.summary)  # the red gates first, then the one-line reasons
        raise
    if not ranks().main:
        return  # under torchrun or accelerate launch, rank 0 prints the summary (every rank has it)
    print_summary(summary)
    failed = {name: report for name, report in summary.stages.items() if report.failed}
    if failed:
        from rlaif.errors import IncompleteRun

        counts = ", ".join(f"{name} {report.failed}" for name, report in failed.items())
        first = next(iter(failed.values())).errors[:1]
        raise IncompleteRun(
            f"the run is incomplete: {sum(r.failed for r in failed.values())} request(s) failed ({counts})"
            + (f", the first with: {first[0]}" if first else "")
            + "; nothing of theirs was stored, rerun the same command to retry them"
        )


def register(app: typer.Typer) -> None:
    """Add the pipeline's commands to the top-level app."""

    @app.command()
    def run(
        config: ConfigArg,
        set_: SetOpt = None,
        quiet: QuietOpt = False,
        force: ForceOpt = False,
        workers: WorkersOpt = None,
    ) -> None:
        """Run the whole pipeline: respond, critique/revise, judge, pairs, export, the enabled trainers (DPO)."""  # noqa: E501 (the help text)
        from rlaif.pipeline.run import ALL_STAGES

        if workers is not None:  # the same as the config's model.workers, validated with it
            set_ = [*(set_ or []), f"model.workers={workers}"]
        run_stages(config, ALL_STAGES, set_, quiet, force)

    @app.command()
    def respond(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
        """Sample first answers for the prompt set."""
        run_stages(config, ("respond",), set_, quiet)

    @app.command()
    def revise(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
        """Critique and revise the first answers (needs `respond`)."""
        run_stages(config, ("revise",), set_, quiet)

    @app.command()
    def judge(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False) -> None:
        """Judge pairs of first answers in both orders (needs `respond`)."""
        run_stages(config, ("judge",), set_, quiet)

    @app.command()
    def export(
        config: ConfigArg,
        set_: SetOpt = None,
        quiet: QuietOpt = False,
        force: ForceOpt = False,
        push_to_hub: PushOpt = None,
    ) -> None:
        """Build preference pairs and SFT rows; export train/test datasets, Parquet, JSONL and a card."""
        if push_to_hub is not None:  # the same as the config's export.push_to_hub, validated with it
            set_ = [*(set_ or []), f"export.push_to_hub={json.dumps(push_to_hub)}"]
        run_stages(config, ("export",), set_, quiet, force)
