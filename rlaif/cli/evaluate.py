"""`rlaif evaluate ...`: judge-human agreement, the attack suite, the judging-cost benchmark, and the audit of
what a run's pairs reward.

A thin skin over `rlaif.evaluate` (judge, attacks, winrate) and `rlaif.bench.judge_cost`. The judge is the run
config's (`--config`; `judge.model`, else `model`), changed by the options below or `--set`; without
a config it is the bundled model on a managed server with the default judge settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from rlaif.cli.options import (
    CommandGroup,
    ConfigArg,
    JsonOpt,
    QuietOpt,
    SetOpt,
    choices,
    console,
    output_file,
    output_option,
    overrides,
    set_option,
)
from rlaif.cli.tables.evaluate import (
    print_attacks,
    print_compliance,
    print_judge_cost,
    print_judge_report,
    print_winrate,
)
from rlaif.config import JudgeConfig
from rlaif.errors import ConfigError
from rlaif.evaluate.attacks import ATTACKS
from rlaif.evaluate.judge import BASELINES

__all__ = ["evaluate_app"]

evaluate_app = typer.Typer(
    cls=CommandGroup, no_args_is_help=True, help="Measure the judge: human agreement, attacks, cost."
)

DataOpt = Annotated[
    Path,
    typer.Option(
        "--data", "-d", help="Labelled JSONL(.gz): hh-rlhf {chosen, rejected} or {prompt, chosen, rejected}."
    ),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Run config YAML for the judge settings.")
]
EvalSetOpt = set_option("judge.ensemble=3")
BaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="A running OpenAI-compatible judge server, e.g. http://host:8000/v1 (repeatable).",
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Served model name on --base-url servers.")]
ModelPathOpt = Annotated[
    str | None,
    typer.Option("--model-path", help="Model folder to serve on a managed server (default: bundled)."),
]
JudgeMode = choices("JudgeMode", get_args(JudgeConfig.model_fields["mode"].annotation))
ModeOpt = Annotated[JudgeMode | None, typer.Option("--mode", help="Judge mode.")]  # type: ignore[valid-type]
Baseline = choices("Baseline", BASELINES)
Attack = choices("Attack", ATTACKS)
Engine = choices("Engine", ("auto", "transformers", "vllm"))
OrdersOpt = Annotated[
    bool | None,
    typer.Option("--both-orders/--one-order", help="Judge both presentation orders (default) or one."),
]
ConstitutionOpt = Annotated[
    str | None, typer.Option("--constitution", help="Constitution file or shipped name.")
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Seed of positions, principle draws and requests.")
]
LimitOpt = Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Use only the first N rows.")]


def judge_run_config(
    data: Path,
    config: Path | None,
    settings: list[str] | None,
    *,
    base_url: list[str] | None = None,
    model: str | None = None,
    model_path: str | None = None,
    mode: str | None = None,
    both_orders: bool | None = None,
    constitution: str | None = None,
    seed: int | None = None,
) -> Any:
    """The RunConfig an evaluation uses: the file's (or defaults), with the options applied on top."""
    from pydantic import ValidationError

    from rlaif.config import RunConfig, load_config, set_dotted

    if model and not base_url:
        raise ConfigError("--model names a model on --base-url servers; give --base-url too")
    if base_url and model_path:
        raise ConfigError("give --base-url (a running server) or --model-path (a managed one), not both")
    settings_map = overrides(settings)
    for key, value in {
        "judge.model.base_urls": base_url,
        "judge.model.served_name": model,
        "judge.model.path": model_path,
        "judge.mode": None if mode is None else str(mode),
        "judge.both_orders": both_orders,
        "constitution": constitution,
        "seed": seed,
    }.items():
        if value is not None:
            settings_map[key] = value
    if config is not None:
        return load_config(config, settings_map)
    raw: dict[str, Any] = {"prompts": {"path": str(data)}}
    for key, value in settings_map.items():
        set_dotted(raw, key, value)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"option {where}: {first['msg']} (got {first.get('input')!r})") from None


@evaluate_app.command("judge")
def judge_command(
    data: DataOpt,
    baseline: Annotated[
        Baseline | None,  # type: ignore[valid-type]
        typer.Option("--baseline", help="Answer with a baseline instead of the judge."),
    ] = None,
    json_path: JsonOpt = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Reliability plot PNG (default: next to --json).", callback=output_file),
    ] = None,
    save_calibration: Annotated[
        Path | None,
        typer.Option(
            "--save-calibration",
            help="Save the fitted temperature (JSON) for runs to reuse as judge.calibration: FILE.",
            callback=output_file,
        ),
    ] = None,
    limit: LimitOpt = None,
    config: ConfigOpt = None,
    set_: EvalSetOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    model_path: ModelPathOpt = None,
    mode: ModeOpt = None,
    both_orders: OrdersOpt = None,
    constitution: ConstitutionOpt = None,
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Agreement of the judge (or a baseline) with the human labels of a pairwise set.

    A tie counts half. Exits with status 1 when no row was decided (every label a tie or unparsed).
    """
    from rlaif.evaluate.judge import evaluate_judge, save_fit

    run_config = judge_run_config(
        data, config, set_, base_url=base_url, model=model, model_path=model_path, mode=mode,
        both_orders=both_orders, constitution=constitution, seed=seed,
    )  # fmt: skip
    report = evaluate_judge(
        data,
        config=run_config,
        baseline=None if baseline is None else str(baseline),
        limit=limit,
        json_path=json_path,
        plot_path=plot,
        quiet=quiet,
    )
    print_judge_report(report)
    if json_path:
        console.print(f"report: {json_path}", highlight=False, markup=False)
    if save_calibration:
        save_fit(report, save_calibration)  # after the report, so a fit that does not apply is seen first
        console.print(f"calibration: {save_calibration}", highlight=False, markup=False)
    if not report.decided:
        raise typer.Exit(1)  # no decided row: there is no agreement to report


@evaluate_app.command("attacks")
def attacks_command(
    data: DataOpt,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Pairs to attack.")] = 16,
    attack: Annotated[
        list[Attack] | None,  # type: ignore[valid-type]
        typer.Option(
            "--attack",
            metavar=f"<{'|'.join(ATTACKS)}>",
            help="Run only these attacks (repeatable); default: all.",
        ),
    ] = None,
    json_path: JsonOpt = None,
    config: ConfigOpt = None,
    set_: EvalSetOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    model_path: ModelPathOpt = None,
    both_orders: OrdersOpt = None,
    constitution: ConstitutionOpt = None,
    seed: SeedOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Attack the rejected reply of each pair; flip rates with injection defences on and off."""
    from rlaif.evaluate.attacks import evaluate_attacks

    run_config = judge_run_config(
        data, config, set_, base_url=base_url, model=model, model_path=model_path, both_orders=both_orders,
        constitution=constitution, seed=seed,
    )  # fmt: skip
    report = evaluate_attacks(
        data,
        config=run_config,
        limit=limit,
        attacks=tuple(map(str, attack or ATTACKS)),
        json_path=json_path,
        quiet=quiet,
    )
    print_attacks(report)
    if json_path:
        console.print(f"report: {json_path}", highlight=False, markup=False)


@evaluate_app.command("judge-cost")
def judge_cost_command(
    data: DataOpt,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Pairs to judge per measurement.")] = 48,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Times to repeat each measurement.")] = 1,
    model_path: ModelPathOpt = None,
    json_path: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Benchmark: two-order vs one-order one-token judging against the token ratio, and vs one-order CoT.

    Every measurement starts its own managed server (no warm prefix cache carries over).
    """
    from rlaif.bench.judge_cost import bench_judge_cost
    from rlaif.bench.reports import JudgeCostBench

    def save(result: JudgeCostBench) -> None:
        if json_path:  # after every measurement: a late failure keeps what was measured
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")

    result = bench_judge_cost(
        data, limit=limit, model_path=model_path, repeats=repeats, on_update=save, quiet=quiet
    )
    save(result)
    print_judge_cost(result)
    if json_path:
        console.print(f"report: {json_path}", highlight=False, markup=False)


BaseOpt = Annotated[
    str | None, typer.Option("--base", help="Base model folder or `bundled` (default: the config's model).")
]
CandidateOpt = Annotated[
    str | None, typer.Option("--candidate", help="Trained model folder (default: RUN_DIR/models/dpo).")
]
EngineOpt = Annotated[
    Engine,  # type: ignore[valid-type]
    typer.Option("--engine", help="What answers for each model (auto: transformers for few prompts)."),
]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1, help="Answer length limit.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", help="Sampling temperature (> 0).")]
AnswersJsonOpt = output_option("--json", "Write the report (with answers) here.")
PlotOpt = Annotated[
    Path | None, typer.Option("--plot", help="Chart PNG (default: next to --json).", callback=output_file)
]


@evaluate_app.command("winrate")
def evaluate_winrate(
    config: ConfigArg,
    base: BaseOpt = None,
    candidate: CandidateOpt = None,
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", help="Held-out prompts JSONL (default: the config's, not held out)."),
    ] = None,
    limit: LimitOpt = None,
    engine: EngineOpt = Engine.auto,  # type: ignore[attr-defined]
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    json_path: AnswersJsonOpt = None,
    plot: PlotOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Win rate of a trained policy against its base: both answer, the judge compares in both orders.

    Reports the win rate with a Wilson interval, answer lengths (verbosity drift) and KL(candidate ‖ base).
    Exits with status 1 when no prompt was decided (every verdict a tie or unparsed).
    """
    from rlaif.config import load_config
    from rlaif.evaluate.winrate import evaluate_winrate as run_winrate

    report = run_winrate(
        load_config(config, overrides(set_)), base=base, candidate=candidate, prompts_path=prompts,
        limit=limit, engine=str(engine), max_tokens=max_tokens, temperature=temperature,  # type: ignore[arg-type]
        json_path=json_path, plot_path=plot, quiet=quiet,
    )  # fmt: skip
    print_winrate(report)
    if json_path:
        console.print(f"report: {json_path}", highlight=False, markup=False)
    if report.win_rate.win_rate is None:
        raise typer.Exit(1)  # no prompt decided: there is no win rate to report


@evaluate_app.command("compliance")
def evaluate_compliance(
    config: ConfigArg,
    prompts: Annotated[
        Path, typer.Option("--prompts", help="Held-out prompts JSONL the training never saw.")
    ],
    base: BaseOpt = None,
    candidate: CandidateOpt = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Answers per prompt and model.")] = 2,
    limit: LimitOpt = None,
    engine: EngineOpt = Engine.auto,  # type: ignore[attr-defined]
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    kl: Annotated[bool, typer.Option("--kl/--no-kl", help="Estimate KL(candidate ‖ base) per token.")] = True,
    json_path: AnswersJsonOpt = None,
    plot: PlotOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Pass rates of every checkable principle, base against trained policy, on held-out prompts.

    Each rate has a Wilson 95% interval and the difference Newcombe's; with answer lengths, KL(candidate ‖
    base) and a few answers before and after. Needs a constitution whose principles carry checks.
    """
    from rlaif.config import load_config
    from rlaif.evaluate.compliance import evaluate_compliance as run_compliance

    report = run_compliance(
        load_config(config, overrides(set_)), prompts_path=prompts, base=base, candidate=candidate,
        samples=samples, limit=limit, engine=str(engine), max_tokens=max_tokens,  # type: ignore[arg-type]
        temperature=temperature, kl=kl, json_path=json_path, plot_path=plot, quiet=quiet,
    )  # fmt: skip
    print_compliance(report)
    if json_path:
        console.print(f"report: {json_path}", highlight=False, markup=False)


@evaluate_app.command("audit")
def evaluate_audit(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with an export (export/pairs.jsonl).")],
    constitution: Annotated[
        str | None,
        typer.Option(
            "--constitution", help="Constitution whose checks to run (default: the run's, from its manifest)."
        ),
    ] = None,
    json_path: JsonOpt = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Bar chart PNG (default: RUN_DIR/audit.png).", callback=output_file),
    ] = None,
) -> None:
    """What a run's preference pairs reward: how often the chosen answer is longer, refuses more, uses more
    lists, hedges, is more polite, or passes each principle's check, overall and per principle. Exits
    with status 1 when the export has no pairs."""
    from rlaif.authoring.audit import audit_run, plot_audit
    from rlaif.cli.tables.constitution import print_audit

    report = audit_run(run_dir, constitution=constitution)
    if report.pairs:
        report.chart = str(plot_audit(report, plot or run_dir / "audit.png"))
    print_audit(report)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(f"report: {json_path}", highlight=False, markup=False)
    if not report.pairs:
        raise typer.Exit(1)  # nothing to audit
