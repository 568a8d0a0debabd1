"""`rlaif constitution ...`: check, lint, preview, test and compare constitution files; measure their checks.

The author's workflow: validate → lint → preview → test → compare, then `rlaif evaluate audit` on a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rlaif.cli.evaluate import (
    BaseUrlOpt,
    ConfigOpt,
    EvalSetOpt,
    LimitOpt,
    ModelOpt,
    ModelPathOpt,
    ModeOpt,
    OrdersOpt,
    SeedOpt,
    judge_run_config,
)
from rlaif.cli.options import CommandGroup, JsonOpt, QuietOpt, console, output_option
from rlaif.errors import ConfigError

__all__ = ["constitution_app"]

constitution_app = typer.Typer(
    cls=CommandGroup, no_args_is_help=True, help="Check, lint, preview, test and compare constitution files."
)

FileArg = Annotated[
    str,
    typer.Argument(help="Constitution file (YAML, CAI JSON, CAI RL list, llm-swarm JSON) or shipped name."),
]


@constitution_app.command("validate")
def constitution_validate(file: FileArg) -> None:
    """Check a constitution file and list its principles, what each is used for, and its check."""
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.judging.checks import checkable, describe_check

    constitution = load_constitution(find_constitution(file))
    title = f"{constitution.name} v{constitution.version} (hash {constitution.hash})"
    table = Table(title=escape(title))
    table.add_column("id", overflow="fold")
    table.add_column("used to")
    table.add_column("weight")
    table.add_column("check (all rules must pass)", overflow="fold")
    table.add_column("tags")
    for p in constitution.principles:
        uses = " + ".join(use for use, on in (("critique", p.critiques), ("judge", p.judges)) if on)
        row = (p.id, uses, f"{p.weight:g}", describe_check(p.check) or "-", ", ".join(p.tags))
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    counts = (
        f"{len(constitution.principles)} principles ({len(constitution.for_critique())} critique, "
        f"{len(constitution.for_judging())} judge, {len(checkable(constitution))} checkable), "
        f"{len(constitution.examples)} examples"
    )
    console.print(f"[green]ok[/green]: {counts}")


@constitution_app.command("bench")
def constitution_bench(
    file: FileArg,
    responses: Annotated[
        int,
        typer.Option("--responses", min=1, help="Responses in the mix, each checked under every principle."),
    ] = 20_000,
    json_path: JsonOpt = None,
) -> None:
    """Measure how many responses per second the declarative check rules handle (not a timed test)."""
    from rlaif.bench.checks import bench_checks
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.reports import percent

    constitution = load_constitution(find_constitution(file))
    report = bench_checks(constitution, responses=responses)
    table = Table(title=escape(f"checks of {report.constitution} on {report.responses:,} responses"))
    for column in ("principle", "rules", "pass rate", "check errors"):
        table.add_column(column)
    for entry in report.principles:
        row = (entry.principle_id, ", ".join(entry.rules), percent(entry.pass_rate), str(entry.check_errors))
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for note in report.left_out:
        console.print(f"[yellow]left out[/yellow]: {escape(note)}")
    rate, target = report.responses_per_second, report.target_per_second
    shown = "n/a" if rate is None else f"{rate:,.0f}"
    colour = "green" if rate is not None and rate >= target else "yellow"
    console.print(
        f"[{colour}]{shown} responses/s[/{colour}] (median of {report.repeats} passes; each response checked "
        f"under {len(report.principles)} principles; target {target:,.0f}) on {escape(report.machine)}"
    )
    if json_path is not None:
        _write_json(json_path, report.model_dump_json(indent=2) + "\n")


TokenizerOpt = Annotated[
    str | None,
    typer.Option(
        "--tokenizer",
        help="Count tokens with: `bundled` (the bundled model, once `rlaif model prepare` made it), a model "
        "folder, or `estimate` (4 characters a token). Default: lint estimates, preview uses bundled.",
    ),
]
MaxContextOpt = Annotated[
    int | None,
    typer.Option(
        "--max-context", min=1, help="Context in tokens (default: the config's model.server.max_model_len)."
    ),
]
DataOpt = Annotated[
    Path,
    typer.Option(
        "--data", "-d", help="Labelled JSONL(.gz): hh-rlhf {chosen, rejected} or {prompt, chosen, rejected}."
    ),
]
DisagreementsOpt = output_option(
    "--disagreements", "JSONL of the rows whose labels differ most (default: compare-disagreements.jsonl)."
)
PrincipleOpt = Annotated[str | None, typer.Option("--principle", "-p", help="Only this principle (its id).")]


def _settings(config: Path | None, set_: list[str] | None, data: Path = Path("-"), **options: Any) -> Any:
    """The RunConfig the settings come from: the file's, or the defaults, with `--set` and options on top."""
    return judge_run_config(data, config, set_, **options)


@constitution_app.command("lint")
def constitution_lint(
    file: FileArg,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with status 1 when there is a warning.")
    ] = False,
    max_context: MaxContextOpt = None,
    tokenizer: TokenizerOpt = None,
    min_share: Annotated[
        float,
        typer.Option("--min-share", min=0.0, max=1.0, help="Flag principles drawn in fewer draws than this."),
    ] = 0.01,
    config: ConfigOpt = None,
    set_: EvalSetOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Warnings, with file and line, about what may not work as meant: judge questions that do not compare,
    requests too long for the context, near-duplicate principles, principles the judge never asks about,
    weights that are never drawn, tags used once, few-shot examples that fail a principle's check."""
    from rlaif.authoring.lint import lint_constitution
    from rlaif.authoring.preview import load_counter
    from rlaif.cli.tables.constitution import print_lint
    from rlaif.inputs.constitution import find_constitution

    run = _settings(config, set_)
    report = lint_constitution(
        find_constitution(file), counter=load_counter(tokenizer or "estimate"),
        max_context=max_context or run.model.server.max_model_len, revise=run.revise, judge=run.judge,
        answer_tokens=run.generation.max_tokens, min_share=min_share,
    )  # fmt: skip
    print_lint(report)
    if json_path is not None:
        _write_json(json_path, report.model_dump_json(indent=2) + "\n")
    if strict and report.warnings:
        raise typer.Exit(1)


@constitution_app.command("preview")
def constitution_preview(
    file: FileArg,
    principle: Annotated[str, typer.Option("--principle", "-p", help="The principle's id.")],
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="The user turn of the sample conversation.")
    ] = None,
    answer: Annotated[
        list[str] | None,
        typer.Option(
            "--answer", metavar="TEXT", help="Two sample answers (give --answer twice); A is critiqued."
        ),
    ] = None,
    max_context: MaxContextOpt = None,
    tokenizer: TokenizerOpt = None,
    sizes_only: Annotated[bool, typer.Option("--sizes-only", help="Token counts without the texts.")] = False,
    rubric: Annotated[
        bool,
        typer.Option(
            "--rubric",
            help="Show the rubric's requests too; with --base-url, the items the judge writes for them.",
        ),
    ] = False,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
    set_: EvalSetOpt = None,
    seed: SeedOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Exactly what the model sees under one principle: the critique, revision and judge requests (both
    orders), rendered by the pipeline's own code, with token counts per part and the share of each request
    the prefix cache can serve."""
    from rlaif.authoring.preview import SAMPLE_ANSWERS, SAMPLE_CONVERSATION, load_counter, preview_principle
    from rlaif.cli.tables.constitution import print_preview
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.records import Message

    if answer is not None and len(answer) != 2:
        raise ConfigError(
            f"--answer was given {len(answer)} time(s); give it twice (answer A, then answer B)"
        )
    run = _settings(config, set_, seed=seed)
    report = preview_principle(
        load_constitution(find_constitution(file)), principle, revise=run.revise, judge=run.judge,
        seed=run.seed, counter=load_counter(tokenizer or "bundled"),
        max_context=max_context or run.model.server.max_model_len,
        conversation=(Message(role="user", content=prompt),) if prompt else SAMPLE_CONVERSATION,
        answers=(answer[0], answer[1]) if answer else SAMPLE_ANSWERS, templates=run.template_set(),
        rubric=rubric,
    )  # fmt: skip
    if rubric and base_url:
        report.rubric = _written_items(run, file, principle, base_url, model, prompt)
    elif rubric:
        report.notes.append(
            "the items are the judge's own: give --base-url (and --model) to see them written"
        )
    print_preview(report, full=not sizes_only)
    if json_path is not None:
        _write_json(json_path, report.model_dump_json(indent=2) + "\n")


def _written_items(
    run: Any, file: str, principle_id: str, base_url: list[str], model: str | None, prompt: str | None
) -> Any:
    """Ask the judge server to write the principle's items for the preview's conversation."""
    import asyncio

    from rlaif.authoring.preview import SAMPLE_CONVERSATION, write_rubric
    from rlaif.backends.openai_api import OpenAIBackend
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.records import Message

    constitution = load_constitution(find_constitution(file))

    async def main() -> Any:
        backend = OpenAIBackend(base_urls=base_url, model=model)
        try:
            await backend.resolve_model()
            return await write_rubric(
                backend, constitution, constitution.principle(principle_id), judge=run.judge, seed=run.seed,
                conversation=(Message(role="user", content=prompt),) if prompt else SAMPLE_CONVERSATION,
                templates=run.template_set(),
            )  # fmt: skip
        finally:
            await backend.aclose()

    return asyncio.run(main())


@constitution_app.command("test")
def constitution_test(
    file: FileArg,
    data: DataOpt,
    principle: PrincipleOpt = None,
    limit: LimitOpt = None,
    config: ConfigOpt = None,
    set_: EvalSetOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    model_path: ModelPathOpt = None,
    mode: ModeOpt = None,
    both_orders: OrdersOpt = None,
    seed: SeedOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Each principle as the judge's only principle (fixed, not sampled) on a labelled pairwise set: its
    agreement with the human labels, order-consistency, same-position rate and decisive share, with
    Wilson intervals. The same rows, positions and seeds for every principle."""
    from rlaif.authoring.trial import trial_constitution
    from rlaif.cli.tables.constitution import print_trial
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.inputs.labelled import load_labelled_pairs

    constitution = load_constitution(find_constitution(file))
    run = _settings(
        config, set_, data, base_url=base_url, model=model, model_path=model_path, mode=mode,
        both_orders=both_orders, seed=seed,
    )  # fmt: skip
    if principle is not None:
        constitution.principle(principle)  # an unknown id is refused before the data is read
    report = trial_constitution(
        load_labelled_pairs(data, limit=limit), constitution, config=run, principle_id=principle, quiet=quiet
    )
    print_trial(report)
    if json_path is not None:
        _write_json(json_path, report.model_dump_json(indent=2) + "\n")


@constitution_app.command("compare")
def constitution_compare(
    a: Annotated[str, typer.Argument(help="Constitution A (file or shipped name).")],
    b: Annotated[str, typer.Argument(help="Constitution B.")],
    data: DataOpt,
    disagreements: DisagreementsOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the disagreements file.")] = 20,
    limit: LimitOpt = None,
    config: ConfigOpt = None,
    set_: EvalSetOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    model_path: ModelPathOpt = None,
    mode: ModeOpt = None,
    both_orders: OrdersOpt = None,
    seed: SeedOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Two constitutions judged on the same labelled rows and seeds (principles drawn per row, as a run
    draws them): each one's agreement, B - A with a paired bootstrap 95% interval over rows, and the rows
    where the two differ most written to a JSONL file."""
    from rlaif.authoring.trial import compare_constitutions
    from rlaif.cli.tables.constitution import print_comparison
    from rlaif.inputs.constitution import find_constitution, load_constitution
    from rlaif.inputs.labelled import load_labelled_pairs

    first, second = (load_constitution(find_constitution(name)) for name in (a, b))
    run = _settings(
        config, set_, data, base_url=base_url, model=model, model_path=model_path, mode=mode,
        both_orders=both_orders, seed=seed,
    )  # fmt: skip
    report = compare_constitutions(
        load_labelled_pairs(data, limit=limit), first, second, config=run,
        disagreements=disagreements or Path("compare-disagreements.jsonl"), top=top, quiet=quiet,
    )  # fmt: skip
    print_comparison(report)
    if json_path is not None:
        _write_json(json_path, report.model_dump_json(indent=2) + "\n")


def _write_json(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"--json {path}: cannot write the report ({exc.strerror or exc}); give a file path"
        ) from None
