"""`rlaif evaluate compliance`: does the trained policy follow the checkable principles more often?

Base and candidate answer the same held-out prompts (`samples` answers each, seeded); every
checkable principle's check runs on every answer. Per principle the report gives each model's pass
rate with a Wilson 95% interval and the difference with Newcombe's 95% interval (the hybrid score
interval for two proportions), the same for "every check passed", the answers' lengths (a length
limit is easy to game by saying nothing) and KL(candidate ‖ base) per token on the candidate's own
samples. Check errors are counted and left out of the rates, never scored as a pass or a fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from rlaif.config import RunConfig
from rlaif.errors import ConfigError
from rlaif.evaluate.reports import (
    ComplianceExample,
    ComplianceReport,
    LengthComparison,
    PassRate,
    PrincipleCompliance,
)
from rlaif.evaluate.samples import Sample
from rlaif.evaluate.stats import newcombe, wilson
from rlaif.judging.checks import checkable, describe_check, run_check
from rlaif.records import CheckOutcome, Principle, PromptRecord
from rlaif.reports import percent

__all__ = ["compliance_rows", "evaluate_compliance", "newcombe", "pass_rate", "plot_compliance"]

ALL = "every check"


def pass_rate(outcomes: Sequence[CheckOutcome | None]) -> PassRate:
    """Passes among the decided outcomes; check errors counted apart."""
    decided = [o for o in outcomes if o is not None and o.passed is not None]
    passed = sum(bool(o.passed) for o in decided)
    errors = sum(o is not None and o.error is not None for o in outcomes)
    n = len(decided)
    return PassRate(
        passed=passed, n=n, errors=errors, value=passed / n if n else None, ci95=wilson(passed, n)
    )


def _all_passed(outcomes: Sequence[CheckOutcome]) -> CheckOutcome | None:
    """One outcome for "every check passed" on one answer; None (left out) when any check errored."""
    if any(o.error is not None for o in outcomes):
        return None
    passed = all(bool(o.passed) for o in outcomes)
    return CheckOutcome(principle_id=None, score=1.0 if passed else 0.0, passed=passed)


def compliance_rows(
    principles: Sequence[Principle], prompts: Sequence[PromptRecord], answers: Sequence[str]
) -> dict[str, list[CheckOutcome | None]]:
    """Principle id (and `ALL`) -> the outcome on each answer (answers follow `prompts`, once per sample)."""
    rows: dict[str, list[CheckOutcome | None]] = {p.id: [] for p in principles}
    rows[ALL] = []
    for index, answer in enumerate(answers):
        conversation = prompts[index % len(prompts)].messages
        outcomes = [run_check(p, conversation, answer) for p in principles]
        for principle, outcome in zip(principles, outcomes, strict=True):
            rows[principle.id].append(outcome)
        rows[ALL].append(_all_passed(outcomes))
    return rows


def plot_compliance(report: ComplianceReport, path: Path) -> Path:
    """Bar chart of pass rates, base against candidate, per checkable principle and for every check."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()

    rows = report.principles
    names = [r.principle_id for r in rows]
    fig, axis = plt.subplots(figsize=(1.6 * len(rows) + 2.5, 4.2), constrained_layout=True)
    width = 0.38
    for offset, who, colour in ((-width / 2, "base", "#9aa5b1"), (width / 2, "candidate", "#2f7ed8")):
        rates = [getattr(r, who) for r in rows]
        values = [100 * (x.value or 0.0) for x in rates]
        errors = [
            [100 * ((x.value or 0) - x.ci95[0]) if x.ci95 else 0 for x in rates],
            [100 * (x.ci95[1] - (x.value or 0)) if x.ci95 else 0 for x in rates],
        ]
        bars = axis.bar([i + offset for i in range(len(rows))], values, width, yerr=errors, capsize=3,
                        color=colour, label=who)  # fmt: skip
        for bar, value in zip(bars, values, strict=True):
            axis.annotate(f"{value:.0f}%", (bar.get_x() + bar.get_width() / 2, value), ha="center",
                          va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")  # fmt: skip
    axis.set_xticks(range(len(rows)), names, fontsize=9)
    axis.set_ylabel("pass rate (%, 95% Wilson interval)")
    axis.set_ylim(0, 110)
    n = rows[0].candidate.n if rows else 0
    kl = report.kl.per_token if report.kl is not None else None
    axis.set_title(
        f"Compliance on {report.prompts} held-out prompts × {report.samples} (n={n} answers each)\n"
        f"{Path(report.candidate).name} vs {Path(report.base).name}"
        + ("" if kl is None else f", KL {kl:.3f} nats/token"),
        fontsize=10,
    )
    axis.legend(loc="upper left", fontsize=9)
    return save_png(fig, path, dpi=110)


def evaluate_compliance(
    config: RunConfig,
    *,
    prompts_path: str | Path,
    base: str | None = None,
    candidate: str | None = None,
    samples: int = 2,
    limit: int | None = None,
    engine: Literal["auto", "transformers", "vllm"] = "auto",
    max_tokens: int | None = None,
    temperature: float | None = None,
    kl: bool = True,
    examples: int = 3,
    json_path: Path | None = None,
    plot_path: Path | None = None,
    quiet: bool = False,
    base_cache: Path | None = None,
) -> ComplianceReport:
    """Sample base and candidate on held-out prompts and measure every checkable principle's pass rate.

    Args:
        config: the run config: its constitution (the checks), model (the base), run_dir (the candidate
            default RUN_DIR/models/dpo), seed and generation settings.
        prompts_path: held-out prompts (JSONL); the report says how many the training prompts share.
        base: base model folder or `bundled`; None: the config's model.
        candidate: trained model folder; None: RUN_DIR/models/dpo.
        samples: answers per prompt and model (each with its own seed).
        limit: use the first N prompts.
        engine: `auto` uses transformers up to 32 prompts × samples, a managed vLLM server above.
        max_tokens: answer length limit; None: `generation.max_tokens`.
        temperature: sampling temperature (> 0); None: `generation.temperature`.
        kl: estimate KL(candidate ‖ base) on the candidate's samples.
        examples: before/after answers to keep in the report.
        json_path: write the report (with every answer) here; the chart goes next to it as PNG unless
            `plot_path` is given.
        quiet: no progress bars.
        base_cache: keep the base's answers in this file and read them back when the same base, prompts
            and sampling ask again (`rlaif iterate` measures every round against one base).
    """
    from rlaif.backends.serving import model_path
    from rlaif.evaluate.samples import generate, sequence_kl
    from rlaif.evaluate.winrate import _resolve, candidate_monitors, length_stats
    from rlaif.inputs.load import load_inputs
    from rlaif.inputs.prompts import load_prompts
    from rlaif.train.common import quiet_libraries

    if samples < 1:
        raise ConfigError("--samples must be at least 1")
    quiet_libraries()
    started = time.perf_counter()
    constitution, training = load_inputs(config)
    principles = checkable(constitution)
    if not principles:
        raise ConfigError(
            f"constitution {constitution.name!r} has no principle with a check, so there is nothing to "
            "measure; add `check:` rules (see constitution/README.md) or use constitution: concise-plain"
        )
    base_path = _resolve(base, model_path(config.model), "base")
    candidate_path = _resolve(candidate, Path(config.run_dir) / "models" / "dpo", "candidate")
    prompts = load_prompts(prompts_path, limit=limit)
    overlap = len({p.id for p in prompts} & {p.id for p in training})
    max_tokens = max_tokens or config.generation.max_tokens
    temperature = config.generation.temperature if temperature is None else temperature
    if temperature <= 0:
        raise ConfigError("--temperature must be > 0: compliance and KL are estimated on samples")
    if engine == "auto":
        engine = "transformers" if len(prompts) * samples <= 32 else "vllm"
    logs = Path(config.run_dir) / "logs"
    answers: dict[str, list[Sample]] = {"base": [], "candidate": []}
    t0 = time.perf_counter()
    key = {
        "base": str(base_path), "prompts": [p.id for p in prompts], "samples": samples,
        "max_tokens": max_tokens, "temperature": temperature, "seed": config.seed, "engine": engine,
    }  # fmt: skip
    cached = _cached_base(base_cache, key)
    if cached is not None:
        answers["base"] = cached
    for who, path in (("base", base_path), ("candidate", candidate_path)):
        if who == "base" and cached is not None:
            continue
        for k in range(samples):
            answers[who] += generate(
                path, prompts, max_tokens=max_tokens, temperature=temperature, seed=config.seed + 1000 * k,
                engine=engine, logs=logs, quiet=quiet,
            )  # fmt: skip
    generate_seconds = time.perf_counter() - t0
    if base_cache is not None and cached is None:
        _keep_base(base_cache, key, answers["base"])
    t0 = time.perf_counter()
    kl_result = None
    if kl:
        repeated = [prompts[i % len(prompts)] for i in range(len(answers["candidate"]))]
        kl_result = sequence_kl(
            candidate_path, base_path, repeated, answers["candidate"], temperature=temperature
        )
    kl_seconds = time.perf_counter() - t0
    outcomes = {
        who: compliance_rows(principles, prompts, [s.text for s in got]) for who, got in answers.items()
    }
    rows = []
    for key in [*(p.id for p in principles), ALL]:
        before, after = pass_rate(outcomes["base"][key]), pass_rate(outcomes["candidate"][key])
        rule = ALL if key == ALL else describe_check(constitution.principle(key).check)
        rows.append(
            PrincipleCompliance(
                principle_id=key, rules=rule, base=before, candidate=after,
                difference=None if None in (before.value, after.value) else after.value - before.value,  # type: ignore[operator]
                difference_ci95=newcombe(after, before),
            )
        )  # fmt: skip
    lengths_base, lengths_candidate = length_stats(answers["base"]), length_stats(answers["candidate"])
    warnings = []
    shrunk = lengths_base.words_mean and lengths_candidate.words_mean is not None
    if shrunk and lengths_candidate.words_mean < 0.5 * lengths_base.words_mean:  # type: ignore[operator]
        warnings.append(
            f"the candidate's answers shrank from {lengths_base.words_mean:.0f} to "
            f"{lengths_candidate.words_mean:.0f} words on average: a length limit is easy to meet by "
            "saying nothing; read the examples and pair limits with a floor (min_words)"
        )
    combined = rows[-1]
    if combined.difference_ci95 is not None and combined.difference_ci95[0] <= 0:
        warnings.append(
            f"the difference in {ALL} passed ({percent(combined.difference)}) is not significant: its 95% "
            f"interval [{percent(combined.difference_ci95[0])}, {percent(combined.difference_ci95[1])}] "
            "includes 0"
        )
    monitors = candidate_monitors(config.train.monitors, prompts, answers["base"], answers["candidate"])
    warnings += [f"monitor {line}" for line in monitors.alerts]
    picked = _examples(prompts, answers, outcomes, examples)
    report = ComplianceReport(
        constitution=constitution.name, base=str(base_path), candidate=str(candidate_path),
        prompts_path=str(prompts_path), prompts=len(prompts), prompts_seen_in_training=overlap,
        samples=samples, temperature=temperature, max_tokens=max_tokens, engine=engine,
        principles=rows,
        lengths=LengthComparison(
            base=lengths_base, candidate=lengths_candidate,
            drift_tokens=None if lengths_base.tokens_mean is None or lengths_candidate.tokens_mean is None
            else lengths_candidate.tokens_mean - lengths_base.tokens_mean,
        ),
        kl=kl_result, monitors=monitors,
        examples=picked, warnings=warnings,
        seconds={"generate": round(generate_seconds, 1), "kl": round(kl_seconds, 1),
                 "total": round(time.perf_counter() - started, 1)},
    )  # fmt: skip
    if plot_path is None and json_path is not None:
        plot_path = json_path.with_suffix(".png")
    if plot_path is not None:
        report.plot = str(plot_compliance(report, plot_path))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        answers_json = {who: [s.text for s in got] for who, got in answers.items()}
        payload = {**report.model_dump(mode="json"), "answers": answers_json}
        json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return report


def _cached_base(path: Path | None, key: dict[str, object]) -> list[Sample] | None:
    """The base's answers kept in `path` for the same `key`; None when there are none (or another key's)."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        return [
            Sample(text=s["text"], token_ids=tuple(s["token_ids"]), finished=s["finished"])
            for s in data["samples"]
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _keep_base(path: Path, key: dict[str, object], samples: Sequence[Sample]) -> None:
    from rlaif.store import write_atomic

    rows = [{"text": s.text, "token_ids": list(s.token_ids), "finished": s.finished} for s in samples]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"key": key, "samples": rows}) + "\n")


def _examples(
    prompts: Sequence[PromptRecord],
    answers: dict[str, list[Sample]],
    outcomes: dict[str, dict[str, list[CheckOutcome | None]]],
    count: int,
) -> list[ComplianceExample]:
    """Prompts where the base failed some check and the candidate passed every one, first; then any."""
    chosen: list[int] = []
    for index in range(len(prompts)):
        before, after = outcomes["base"][ALL][index], outcomes["candidate"][ALL][index]
        if before is not None and after is not None and not before.passed and after.passed:
            chosen.append(index)
    chosen += [i for i in range(len(prompts)) if i not in chosen]
    return [
        ComplianceExample(
            prompt=prompts[i].messages[-1].content,
            base=answers["base"][i].text,
            candidate=answers["candidate"][i].text,
            base_failed=[
                p for p, row in outcomes["base"].items() if p != ALL and row[i] and row[i].passed is False
            ],
            candidate_failed=[
                p
                for p, row in outcomes["candidate"].items()
                if p != ALL and row[i] and row[i].passed is False
            ],
        )  # fmt: skip
        for i in chosen[:count]
    ]
