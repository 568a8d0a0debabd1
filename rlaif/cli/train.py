"""`rlaif train NAME` for every trainer of the registry, and `rlaif train bench`."""

from __future__ import annotations

from typing import Annotated

import typer

from rlaif.cli.options import (
    CommandGroup,
    ConfigArg,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    SetOpt,
    choices,
    console,
    overrides,
)
from rlaif.cli.pipeline import run_stages
from rlaif.train.registry import TRAINERS, Trainer

__all__ = ["train_app"]

train_app = typer.Typer(cls=CommandGroup, no_args_is_help=True, help="Train from the exported data.")

TrainerName = choices("TrainerName", TRAINERS)
GATE_NOTE = "Refuses to start when the human-review gate (review.gate) fails, unless --force."


def _command(trainer: Trainer) -> None:
    def train(
        config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
    ) -> None:
        # Asking for a trainer by name trains it, whatever train.NAME.enabled says (that is for `rlaif run`).
        run_stages(
            config, (trainer.name,), [*(set_ or []), f"train.{trainer.name}.enabled=true"], quiet, force
        )

    # The gate note goes under the details when there are some, else in a paragraph of its own.
    train.__doc__ = trainer.help + ("\n" if "\n\n" in trainer.help else "\n\n") + GATE_NOTE
    train.__name__ = f"train_{trainer.name}"
    train_app.command(trainer.name)(train)


for _trainer in TRAINERS.values():
    _command(_trainer)


@train_app.command("bench")
def train_bench(
    config: ConfigArg,
    steps: Annotated[int, typer.Option("--steps", min=2, help="Steps per measurement.")] = 6,
    only: Annotated[
        list[TrainerName] | None,  # type: ignore[valid-type]
        typer.Option(
            "--only", metavar=f"<{'|'.join(TRAINERS)}>", help="Measure only these trainers (repeatable)."
        ),
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain/--no-plain", help="Also time plain TRL (dpo, reward).")
    ] = True,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Measurements per trainer.")] = 1,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch threads.")] = None,
    json_path: JsonOpt = None,
    set_: SetOpt = None,
) -> None:
    """Time every trainer (s/step, peak memory) on the run's export, beside plain TRL scripts."""
    from rlaif.bench.train import bench_trainers
    from rlaif.cli.tables.train import train_bench_markdown
    from rlaif.config import load_config

    report = bench_trainers(
        load_config(config, overrides(set_)), steps=steps, trainers=tuple(map(str, only or TRAINERS)),
        plain=plain, repeats=repeats, threads=threads, json_path=json_path,
    )  # fmt: skip
    console.print(train_bench_markdown(report), markup=False, highlight=False)
