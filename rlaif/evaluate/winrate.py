"""`rlaif evaluate winrate`: is the trained policy better than its base, by the judge, and at what cost?

Both models answer the same held-out prompts (`rlaif.evaluate.samples`); the judge compares each pair of
answers in both presentation orders (cancelling its position bias); the report gives the
candidate's win rate with a Wilson interval (a tie counts half), the answers' lengths (a preference
judge often rewards verbosity: a win that comes with much longer answers is suspect), and the KL
divergence from the base, estimated on the candidate's own samples. With no decided prompt the win rate is
"n/a"; a judge whose orders mostly disagree, or that mostly picks one position, is warned about.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from rlaif.config import JudgeConfig, MonitorsConfig, RunConfig
from rlaif.errors import ConfigError
from rlaif.evaluate.reports import (
    LengthComparison,
    LengthStats,
    PromptSetInfo,
    SamplingSettings,
    WinRateReport,
    WinRateRow,
    WinTally,
)
from rlaif.evaluate.samples import Sample
from rlaif.evaluate.stats import bias_warnings, rate, wilson
from rlaif.judging.engine import judge_stats
from rlaif.judging.labels import combine_orders
from rlaif.judging.reports import JudgeStats
from rlaif.records import Constitution, Judgment, OrderVerdict, PromptRecord, stable_id
from rlaif.reports import Rate
from rlaif.store import RunLayout
from rlaif.train.reports import MonitorReadings

__all__ = [
    "evaluate_winrate",
    "length_stats",
    "plot_winrate",
    "preference",
    "tally",
    "winrate_warnings",
]


def preference(orders: Sequence[OrderVerdict], candidate_id: str) -> tuple[float | None, bool | None]:
    """P(candidate is better), averaged over both presentation orders, and whether the orders agreed."""
    p, consistent, _ = combine_orders(orders, candidate_id)
    return p, consistent


def tally(
    preferences: Sequence[tuple[float | None, bool | None]],
    *,
    inconsistent: Literal["keep", "drop", "tie"] = "keep",
    confidence: float = 0.95,
) -> WinTally:
    """Wins, losses and ties of the candidate from per-prompt `preference`s, and its win rate.

    A prompt is a win when P(candidate better) > 0.5, a loss below, a tie at 0.5. Prompts whose orders
    disagree are kept by their average (`keep`), left out (`drop`) or counted as ties (`tie`), as the
    judge config says for pairs; prompts with no parsed verdict are left out and counted as unjudged.
    The win rate counts a tie as half a win; its interval is Wilson's. With no decided prompt (no win,
    no loss) the win rate is None ("n/a"), not the 50% the ties alone would make.
    """
    wins = losses = ties = unjudged = disagreed = 0
    soft: list[float] = []
    for p, consistent in preferences:
        if p is None:
            unjudged += 1
            continue
        if consistent is False:
            disagreed += 1
            if inconsistent == "drop":
                continue
            if inconsistent == "tie":
                p = 0.5
        soft.append(p)
        wins += p > 0.5
        losses += p < 0.5
        ties += p == 0.5
    n = wins + losses + ties
    decided = wins + losses > 0
    return WinTally(
        n=n, wins=wins, losses=losses, ties=ties, unjudged=unjudged, orders_disagreed=disagreed,
        inconsistent=inconsistent, win_rate=(wins + ties / 2) / n if decided else None,
        ci=wilson(wins + ties / 2, n, confidence=confidence) if decided else None, confidence=confidence,
        mean_p_candidate=sum(soft) / len(soft) if soft else None,
    )  # fmt: skip


def length_stats(samples: Sequence[Sample]) -> LengthStats:
    """Answer lengths in tokens and words, and the share cut off at the token limit."""
    if not samples:
        return LengthStats(n=0)
    tokens = sorted(len(s.token_ids) for s in samples)
    return LengthStats(
        n=len(samples),
        tokens_mean=statistics.fmean(tokens),
        tokens_median=statistics.median(tokens),
        tokens_p90=tokens[min(len(tokens) - 1, math.ceil(0.9 * len(tokens)) - 1)],
        words_mean=statistics.fmean(len(s.text.split()) for s in samples),
        cut_off=sum(not s.finished for s in samples) / len(samples),
    )


def candidate_monitors(
    config: MonitorsConfig,
    prompts: Sequence[PromptRecord],
    base: Sequence[Sample],
    candidate: Sequence[Sample],
) -> MonitorReadings:
    """The reward-hacking monitors (`train.monitors`) on the candidate's answers, length drift measured from
    the base's; `prompts` repeat in order when there are several samples per prompt (no sycophancy probe)."""
    from rlaif.train.monitors import readings

    texts = [prompts[i % len(prompts)].messages[-1].content for i in range(len(candidate))]
    words = [len(s.text.split()) for s in base]
    reference = sum(words) / len(words) if words else None
    return readings(texts, [s.text for s in candidate], config, reference_length=reference)


def winrate_warnings(result: WinTally, stats: JudgeStats) -> tuple[Rate | None, Rate | None, list[str]]:
    """Order-consistency and same-position rate of the judge over the prompts, and the warnings they and
    the tally call for."""
    consistency = rate(stats.consistent, stats.both_orders) if stats.both_orders else None
    same_position = rate(stats.same_position, stats.both_orders) if stats.both_orders else None
    warnings = []
    if result.win_rate is None:
        warnings.append(
            f"no prompt was decided ({result.ties} ties, {result.unjudged} without a parsed verdict): "
            "the win rate is n/a; the judge gave no usable signal"
        )
    warnings += bias_warnings(consistency, same_position, unit="prompt")
    return consistency, same_position, warnings


def _resolve(model: str | None, default: str | Path, what: str) -> str:
    """A model folder from an option: `bundled`, a folder, or (None) the default, which may be a hub id."""
    if model == "bundled":
        from rlaif.backends.bundled import ensure_model

        return str(ensure_model())
    path = Path(default if model is None else model).expanduser()
    if (path / "config.json").exists() or (model is None and what == "base" and not path.exists()):
        return str(path)  # a base from the config may be a hub id, which transformers and vLLM fetch
    raise ConfigError(
        f"--{what} {path}: no model folder there (no config.json); give a trained model folder"
        + (" or train one first (`rlaif train dpo CONFIG`)" if model is None else "")
    )


def evaluate_winrate(
    config: RunConfig,
    *,
    base: str | None = None,
    candidate: str | None = None,
    prompts_path: str | Path | None = None,
    limit: int | None = None,
    engine: Literal["auto", "transformers", "vllm"] = "auto",
    max_tokens: int | None = None,
    temperature: float | None = None,
    json_path: Path | None = None,
    plot_path: Path | None = None,
    quiet: bool = False,
) -> WinRateReport:
    """Generate with base and candidate on the prompts, judge, and report (also written to `json_path`,
    with its chart, `plot_winrate`, next to it or at `plot_path`).

    Args:
        config: run config: judge settings and model, constitution, seed, generation defaults.
        base: base model folder, or `bundled`; None: the config's `model`.
        candidate: trained model folder; None: RUN_DIR/models/dpo.
        prompts_path: held-out prompts (JSONL); None: the config's prompt set (then not held out,
            which the report says).
        limit: use the first N prompts.
        engine: generation engine; `auto` uses transformers up to 64 prompts and managed vLLM servers above.
        max_tokens: answer length limit; None: `generation.max_tokens`.
        temperature: sampling temperature (> 0: KL is estimated on samples); None: `generation.temperature`.
        json_path: write the report, with every prompt's answers and verdict, here.
        plot_path: write the chart here (default: `json_path` with `.png`; neither: no chart).
        quiet: no progress bars.
    """
    from rlaif.backends.serving import model_path
    from rlaif.evaluate.samples import generate, sequence_kl
    from rlaif.inputs.load import load_inputs
    from rlaif.inputs.prompts import load_prompts
    from rlaif.train.common import quiet_libraries

    quiet_libraries()
    started = time.perf_counter()
    layout = RunLayout(Path(config.run_dir))
    base_path = _resolve(base, model_path(config.model), "base")
    candidate_path = _resolve(candidate, layout.model("dpo"), "candidate")
    constitution, training_prompts = load_inputs(config)
    given = Path(prompts_path) if prompts_path is not None else None
    if given is None and config.prompts.path is not None:
        given = config.resolve(config.prompts.path)
    if given is None:  # the config's `datasets` prompt set, already loaded
        source = str(config.prompts.dataset)
        prompts = training_prompts[:limit] if limit else training_prompts
    else:
        source = str(given)
        prompts = load_prompts(given, limit=limit)
    overlap = len({p.id for p in prompts} & {p.id for p in training_prompts})
    max_tokens = max_tokens or config.generation.max_tokens
    temperature = config.generation.temperature if temperature is None else temperature
    if temperature <= 0:
        raise ConfigError("--temperature must be > 0: the KL estimate needs samples from the candidate")
    if engine == "auto":
        engine = "transformers" if len(prompts) <= 64 else "vllm"
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    options = {"max_tokens": max_tokens, "temperature": temperature, "seed": config.seed, "engine": engine,
               "logs": layout.logs, "quiet": quiet}  # fmt: skip
    base_samples = generate(base_path, prompts, **options)  # type: ignore[arg-type]
    candidate_samples = generate(candidate_path, prompts, **options)  # type: ignore[arg-type]
    seconds["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    kl = sequence_kl(candidate_path, base_path, prompts, candidate_samples, temperature=temperature)
    seconds["kl"] = time.perf_counter() - t0
    judge_config = config.judge.model_copy(update={"both_orders": True})
    judgments, judge_label = _judge(config, judge_config, constitution, prompts, base_samples,
                                    candidate_samples, layout.logs, quiet, seconds)  # fmt: skip
    rows = []
    for prompt, b, c, (judgment, cid) in zip(
        prompts, base_samples, candidate_samples, judgments, strict=True
    ):
        p, consistent = preference(judgment.orders, cid)
        rows.append(WinRateRow(prompt_id=prompt.id, base=b.text, candidate=c.text, p_candidate=p,
                               orders_agree=consistent, status=judgment.status))  # fmt: skip
    preferences = [(r.p_candidate, r.orders_agree) for r in rows]
    result = tally(preferences, inconsistent=config.judge.inconsistent)
    consistency, same_position, warnings = winrate_warnings(result, judge_stats([j for j, _ in judgments]))
    monitors = candidate_monitors(config.train.monitors, prompts, base_samples, candidate_samples)
    warnings += [f"monitor {line}" for line in monitors.alerts]
    base_lengths, candidate_lengths = length_stats(base_samples), length_stats(candidate_samples)
    seconds["total"] = time.perf_counter() - started
    drift = None
    if base_lengths.tokens_mean is not None and candidate_lengths.tokens_mean is not None:
        drift = candidate_lengths.tokens_mean - base_lengths.tokens_mean
    report = WinRateReport(
        base=base_path,
        candidate=candidate_path,
        judge=judge_label,
        judge_mode=judge_config.mode,
        prompts=PromptSetInfo(
            path=str(source), count=len(prompts), overlap_with_training=overlap, held_out=overlap == 0
        ),
        sampling=SamplingSettings(
            max_tokens=max_tokens, temperature=temperature, top_p=1.0, engine=engine, seed=config.seed
        ),
        win_rate=result,
        # A weak judge's two orders often disagree (position bias): its leans are then noise.
        win_rate_strict=tally(preferences, inconsistent="tie"),
        order_consistency=consistency,
        same_position_rate=same_position,
        warnings=warnings,
        lengths=LengthComparison(base=base_lengths, candidate=candidate_lengths, drift_tokens=drift),
        kl=kl,
        monitors=monitors,
        seconds={k: round(v, 1) for k, v in seconds.items()},
        rows=rows,
    )
    if plot_path is None and json_path is not None:
        plot_path = json_path.with_suffix(".png")
    if plot_path is not None:
        report.plot = str(plot_winrate(report, plot_path))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return report


def plot_winrate(report: WinRateReport, path: Path) -> Path:
    """The win rate as a chart: prompts won, tied, lost and unjudged, and the win rate with its interval,
    counted as configured and strictly (disagreeing orders as ties); answer lengths beside them."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()
    tallies = {
        f"as configured\n(disagreeing: {report.win_rate.inconsistent})": report.win_rate,
        "strict\n(disagreeing: tie)": report.win_rate_strict,
    }
    fig, (counts, rates, lengths) = plt.subplots(
        1, 3, figsize=(12, 3.4), gridspec_kw={"width_ratios": [3, 2, 1.4]}, constrained_layout=True
    )
    names = list(tallies)
    left = [0.0] * len(names)
    for part, colour in (("wins", "#3c9d5d"), ("ties", "#b8b8b8"), ("losses", "#d9534f"),
                         ("unjudged", "#f0e0a0")):  # fmt: skip
        values = [getattr(t, part) for t in tallies.values()]
        counts.barh(names, values, left=left, color=colour, label=part)
        left = [a + b for a, b in zip(left, values, strict=True)]
    counts.set_xlabel("prompts")
    counts.legend(fontsize=8, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    counts.tick_params(labelsize=8)
    for row, tally in enumerate(tallies.values()):
        if tally.win_rate is None:
            rates.annotate("n/a", (0.5, row), ha="center", va="center")
            continue
        low, high = tally.ci or (tally.win_rate, tally.win_rate)
        rates.errorbar([tally.win_rate], [row], xerr=[[tally.win_rate - low], [high - tally.win_rate]],
                       fmt="o", color="#2f7ed8", capsize=4)  # fmt: skip
        rates.annotate(f"{tally.win_rate:.0%}", (tally.win_rate, row), xytext=(0, 7),
                       textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
    rates.axvline(0.5, linestyle="--", color="grey")
    rates.set_xlim(0, 1)
    rates.set_ylim(-0.6, len(names) - 0.4)
    rates.set_yticks(range(len(names)), [""] * len(names))
    rates.set_xlabel(f"candidate win rate ({report.win_rate.confidence:.0%} Wilson interval)")
    means = [report.lengths.base.tokens_mean, report.lengths.candidate.tokens_mean]
    lengths.bar(["base", "candidate"], [m or 0.0 for m in means], color=["#9aa5b1", "#2f7ed8"])
    lengths.set_ylabel("tokens per answer (mean)")
    kl = report.kl.per_token
    held = "held-out" if report.prompts.held_out else "NOT held-out"
    fig.suptitle(
        f"{Path(report.candidate).name} vs {Path(report.base).name}: {report.prompts.count} {held} prompts, "
        f"judge {report.judge}" + ("" if kl is None else f", KL {kl:.3f} nats/token"),
        fontsize=10,
    )
    return save_png(fig, path, dpi=100)


def _judge(
    config: RunConfig,
    judge_config: JudgeConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    base: Sequence[Sample],
    candidate: Sequence[Sample],
    logs: Path,
    quiet: bool,
    seconds: dict[str, float],
) -> tuple[list[tuple[Judgment, str]], str]:
    """Judgments of (base, candidate) per prompt, each with the candidate's id, and the judge's label.

    The time to start (or reach) the judge's server goes to `seconds["judge_startup"]`, judging to
    `seconds["judge"]`.
    """
    from rlaif.backends.serving import make_backend, served_backend
    from rlaif.judging.engine import judge_items
    from rlaif.judging.modes import Candidate, JudgeItem, draw_principles

    items = []
    for prompt, b, c in zip(prompts, base, candidate, strict=True):
        items.append(
            JudgeItem(
                prompt_id=prompt.id,
                conversation=prompt.messages,
                a=Candidate(stable_id("winrate-base", prompt_id=prompt.id, text=b.text), b.text),
                b=Candidate(stable_id("winrate-candidate", prompt_id=prompt.id, text=c.text), c.text),
                members=draw_principles(
                    constitution, judge_config, seed=config.seed, key=f"winrate:{prompt.id}"
                ),
            )
        )

    async def run(args: dict[str, Any]) -> tuple[list[Judgment], str]:
        backend = make_backend(args, quiet=quiet)
        try:
            await backend.resolve_model()
            found = await judge_items(
                backend, items, constitution=constitution, config=judge_config, seed=config.seed,
                quiet=quiet, description="judge base vs candidate", templates=config.template_set(),
            )  # fmt: skip
        finally:
            await backend.aclose()
        return found, backend.label

    logs.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with served_backend(config.judge.model or config.model, logs, name="judge-winrate", ray=True) as args:
        seconds["judge_startup"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        judgments, label = asyncio.run(run(args))
        seconds["judge"] = time.perf_counter() - t0
    return [(j, item.b.id) for j, item in zip(judgments, items, strict=True)], label
