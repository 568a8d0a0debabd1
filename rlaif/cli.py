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
from rlaif.evaluate_cli import evaluate_app
from rlaif.review_cli import review_app
from rlaif.train.stages import TRAIN_STAGES

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="RLAIF and Constitutional AI on vLLM and TRL."
)
constitution_app = typer.Typer(no_args_is_help=True, help="Check constitution files.")
train_app = typer.Typer(no_args_is_help=True, help="Train from the exported data.")
model_app = typer.Typer(no_args_is_help=True, help="The bundled model.")
app.add_typer(constitution_app, name="constitution")
app.add_typer(train_app, name="train")
app.add_typer(model_app, name="model")
app.add_typer(review_app, name="review")
app.add_typer(evaluate_app, name="evaluate")

console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[Path, typer.Argument(help="Run config YAML (see examples/quickstart.yaml).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value: --set revise.rounds=1 (YAML value)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Train even when the human-review gate fails.")]


def _overrides(values: list[str] | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: write it as key=value, e.g. --set revise.rounds=1")
        try:
            overrides[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(
                f"--set {item!r}: the value is not valid YAML ({problem}); "
                "fix it or quote it as text, e.g. --set 'key=\"text\"'"
            ) from None
    return overrides


def _run(
    config_path: Path, stages: tuple[str, ...], settings: list[str] | None, quiet: bool, force: bool = False
) -> None:
    from rlaif.config import load_config
    from rlaif.run import run_pipeline

    config = load_config(config_path, _overrides(settings))
    try:
        summary = run_pipeline(config, stages=stages, quiet=quiet, force=force)
    except KeyboardInterrupt:
        # Click turns a KeyboardInterrupt into its own Abort (exit 1 or 0); carry it out as ours.
        raise RunInterrupted from None
    print_summary(summary)


@app.command()
def run(config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False) -> None:
    """Run the whole pipeline: respond, critique/revise, judge, pairs, export, the enabled trainers (DPO)."""
    from rlaif.run import ALL_STAGES

    _run(config, ALL_STAGES, set_, quiet, force)


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


def _train(name: str, config: Path, settings: list[str] | None, quiet: bool, force: bool) -> None:
    # Asking for a trainer by name trains it, whatever train.<name>.enabled says (that is for `rlaif run`).
    _run(config, (name,), [*(settings or []), f"train.{name}.enabled=true"], quiet, force)


@train_app.command("sft")
def train_sft(
    config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
) -> None:
    """Supervised fine-tuning on the final revisions (TRL SFTTrainer); train.sft.args go to SFTConfig.

    Refuses to start when the human-review gate (review.gate) fails, unless --force.
    """
    _train("sft", config, set_, quiet, force)


@train_app.command("reward")
def train_reward(
    config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
) -> None:
    """Reward model on the pairs (TRL RewardTrainer), held-out pairwise accuracy, model card.

    train.reward: use_margin (margin from the judge's soft label), eval_fraction, args (RewardConfig).
    Refuses to start when the human-review gate (review.gate) fails, unless --force.
    """
    _train("reward", config, set_, quiet, force)


@train_app.command("dpo")
def train_dpo(
    config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
) -> None:
    """DPO on the exported pairs (TRL DPOTrainer); train.dpo.args go to DPOConfig (loss_type, beta, ...).

    Refuses to start when the human-review gate (review.gate) fails, unless --force.
    """
    _train("dpo", config, set_, quiet, force)


@train_app.command("kto")
def train_kto(
    config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
) -> None:
    """KTO on the pairs taken apart into desirable and undesirable answers (TRL KTOTrainer).

    Refuses to start when the human-review gate (review.gate) fails, unless --force.
    """
    _train("kto", config, set_, quiet, force)


@train_app.command("online")
def train_online(
    config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
) -> None:
    """Online RLAIF (TRL RLOOTrainer or GRPOTrainer) scored by the reward model or the judge.

    train.online: algorithm (rloo, grpo), reward (model, judge), reward_model, reference, args.
    Refuses to start when the human-review gate (review.gate) fails, unless --force.
    """
    _train("online", config, set_, quiet, force)


@train_app.command("ppo")
def train_ppo(
    config: ConfigArg, set_: SetOpt = None, quiet: QuietOpt = False, force: ForceOpt = False
) -> None:
    """PPO of our own: reward model score, KL penalty to the start model, GAE, clipped losses.

    train.ppo: reward_model (default RUN_DIR/models/reward), sources, resume, args (PPOConfig: total_steps,
    batch_size, mini_batch_size, ppo_epochs, target_kl, ...). Writes RUN_DIR/models/ppo (metrics.jsonl,
    checkpoints, model/). Refuses to start when the human-review gate (review.gate) fails, unless --force.
    """
    _train("ppo", config, set_, quiet, force)


@train_app.command("bench")
def train_bench(
    config: ConfigArg,
    steps: Annotated[int, typer.Option("--steps", min=2, help="Steps per measurement.")] = 6,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Measure only these trainers (repeatable).")
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain/--no-plain", help="Also time plain TRL (dpo, reward).")
    ] = True,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Measurements per trainer.")] = 1,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch threads.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    set_: SetOpt = None,
) -> None:
    """Time every trainer (s/step, peak memory) on the run's export, beside plain TRL scripts."""
    from rlaif.bench_train import TRAINERS, bench_trainers, to_markdown
    from rlaif.config import load_config

    report = bench_trainers(
        load_config(config, _overrides(set_)), steps=steps, trainers=tuple(only or TRAINERS), plain=plain,
        repeats=repeats, threads=threads, json_path=json_path,
    )  # fmt: skip
    console.print(to_markdown(report))


@evaluate_app.command("winrate")
def evaluate_winrate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Run config: judge, seed, generation.")],
    base: Annotated[
        str | None,
        typer.Option("--base", help="Base model folder or `bundled` (default: the config's model)."),
    ] = None,
    candidate: Annotated[
        str | None, typer.Option("--candidate", help="Trained model folder (default: RUN_DIR/models/dpo).")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", help="Held-out prompts JSONL (default: the config's, not held out)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Use the first N prompts.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="auto, transformers or vllm (answers from each model).")
    ] = "auto",
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Answer length limit.")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Sampling temperature (> 0).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the report (with answers) here.")
    ] = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Win rate of a trained policy against its base: both answer, the judge compares in both orders.

    Reports the win rate with a Wilson interval, answer lengths (verbosity drift) and KL(candidate ‖ base).
    """
    from rlaif.config import load_config
    from rlaif.winrate import evaluate_winrate as run_winrate

    if engine not in ("auto", "transformers", "vllm"):
        raise ConfigError(f"--engine {engine!r}: choose auto, transformers or vllm")
    report = run_winrate(
        load_config(config, _overrides(set_)), base=base, candidate=candidate, prompts_path=prompts,
        limit=limit, engine=engine, max_tokens=max_tokens, temperature=temperature,  # type: ignore[arg-type]
        json_path=json_path, quiet=quiet,
    )  # fmt: skip
    print_winrate(report)
    if json_path:
        console.print(f"report: {json_path}")


@app.command()
def bench(
    config: ConfigArg,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Write a markdown table here.")] = None,
    set_: SetOpt = None,
) -> None:
    """Benchmark each generation stage against raw vLLM on the same requests (fresh server each)."""
    from rlaif.bench import run_bench, to_markdown, write_report
    from rlaif.config import load_config

    report = run_bench(load_config(config, _overrides(set_)))
    write_report(report, json_path, markdown)
    console.print(to_markdown(report))


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


TRAINER_LABELS = {
    "sft": "SFT",
    "reward": "reward model",
    "dpo": "DPO",
    "kto": "KTO",
    "online": "online RL",
    "ppo": "PPO",
}


def print_winrate(report: dict[str, Any]) -> None:
    """The win-rate report as a table."""
    rate = report["win_rate"]
    table = Table(title=f"win rate of {report['candidate']} against {report['base']}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    prompts = report["prompts"]
    held = (
        "held out"
        if prompts["held_out"]
        else f"[yellow]{prompts['overlap_with_training']} seen in training[/yellow]"
    )
    table.add_row("prompts", f"{prompts['count']} from {prompts['path']} ({held})")
    table.add_row("judge", f"{report['judge']} ({report['judge_mode']}, both orders)")
    if rate["win_rate"] is None:
        table.add_row("win rate", "n/a (no verdict parsed)")
    else:
        low, high = rate["ci"]
        level = f"{100 * rate['confidence']:.0f}%"
        table.add_row(
            "candidate win rate (tie = half)",
            f"{100 * rate['win_rate']:.1f}%  {level} CI [{100 * low:.1f}, {100 * high:.1f}]",
        )
    table.add_row("wins / losses / ties", f"{rate['wins']} / {rate['losses']} / {rate['ties']}")
    strict = report["win_rate_strict"]
    if strict["win_rate"] is not None and rate["orders_disagreed"]:
        low, high = strict["ci"]
        table.add_row(
            "win rate, prompts whose orders disagree as ties",
            f"{100 * strict['win_rate']:.1f}%  CI [{100 * low:.1f}, {100 * high:.1f}]",
        )
    if rate["n"] and rate["orders_disagreed"] > (rate["n"] + rate["unjudged"]) / 2:
        table.add_row(
            "[yellow]warning[/yellow]",
            "[yellow]the judge's two orders disagree on most prompts: its verdicts are mostly position "
            "bias, so trust the strict rate (or use a stronger judge: judge.model)[/yellow]",
        )
    table.add_row(
        "orders disagreed (handled: inconsistent=" + rate["inconsistent"] + ")", str(rate["orders_disagreed"])
    )
    table.add_row("unjudged (no verdict parsed)", str(rate["unjudged"]))
    if rate["mean_p_candidate"] is not None:
        table.add_row("mean P(candidate better)", f"{rate['mean_p_candidate']:.3f}")
    lengths = report["lengths"]
    for who in ("base", "candidate"):
        stats = lengths[who]
        if stats.get("n"):
            table.add_row(
                f"{who} answer tokens mean / median / p90",
                f"{stats['tokens_mean']:.1f} / {stats['tokens_median']:.0f} / {stats['tokens_p90']}  "
                f"(cut off {100 * stats['cut_off']:.0f}%)",
            )
    if lengths.get("drift_tokens") is not None:
        table.add_row("verbosity drift (candidate - base, tokens)", f"{lengths['drift_tokens']:+.1f}")
    kl = report["kl"]
    if kl.get("per_token") is not None:
        table.add_row(
            "KL(candidate ‖ base)", f"{kl['per_token']:.4f} nats/token, {kl['per_answer']:.3f} nats/answer"
        )
    table.add_row("time", f"{report['seconds']['total']} s")
    console.print(table)


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
        if judge_stats.get("error_orders"):
            table.add_row("[red]judge orders whose request failed[/red]", str(judge_stats["error_orders"]))
    if summary.get("server_restarts"):
        table.add_row("[yellow]managed server restarts[/yellow]", str(summary["server_restarts"]))
    for stage, report in summary.get("stages", {}).items():
        if report.get("failed"):
            table.add_row(
                f"[red]{stage} failed requests[/red]", f"{report['failed']}: {report['errors'][:1]}"
            )
    for name in TRAIN_STAGES:
        trained = summary.get(name)
        if not trained:
            continue
        label = TRAINER_LABELS[name]
        table.add_row(f"{label} steps", f"{trained['steps']} ({trained['seconds_per_step']:.1f} s/step)")
        if trained.get("loss_first") is not None:
            table.add_row(
                f"{label} loss first → last", f"{trained['loss_first']:.4f} → {trained['loss_last']:.4f}"
            )
        if name == "reward" and trained.get("eval_accuracy") is not None:
            before = trained.get("eval_accuracy_before")
            table.add_row(
                "reward model held-out accuracy",
                f"{'n/a' if before is None else f'{before:.3f}'} → {trained['eval_accuracy']:.3f} "
                f"({trained['eval_pairs']} pairs)",
            )
        if name == "online" and trained.get("reward_first") is not None:
            table.add_row(
                "online reward first → last", f"{trained['reward_first']:.3f} → {trained['reward_last']:.3f}"
            )
    for name, seconds in summary.get("seconds", {}).items():
        table.add_row(f"time {name}", f"{seconds:.1f} s")
    if "peak_rss_gib" in summary:
        table.add_row("peak memory (process tree)", f"{summary['peak_rss_gib']:.2f} GiB")
    for name, path in summary.get("files", {}).items():
        table.add_row(f"files: {name}", path)
    console.print(table)


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM during a run; main() reports it and exits 130."""


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so context managers stop the managed server


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        app(standalone_mode=False)
    except RlaifError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (KeyboardInterrupt, RunInterrupted):
        err.print("interrupted: rerun the same command to resume where it stopped")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        # Recent typer vendors its own click (typer._click), whose exceptions are not click's:
        # recognise them by shape so a usage error is a message, not a traceback.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise


if __name__ == "__main__":
    main()
