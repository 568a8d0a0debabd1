"""`rlaif iterate`: the whole loop in rounds, each in RUN_DIR/rounds/R/.

Round R derives a run config from yours: the model is round R-1's trained policy (round 1: yours,
the base), the prompts are the round's slice or resample (`rounds/R/prompts.jsonl`, with the red-team
prompts when `iterate.red_team` is set), the run directory is `rounds/R/`. It runs the pipeline
(`run_pipeline`: respond, judge and checks, pairs, filters and gates, training), then measures the
trained policy against the base on the held-out prompts (`evaluate_compliance`: pass rate per checked
principle with Wilson intervals, the difference with Newcombe's, KL per token, answer lengths, the
hacking monitors), compares it with the previous round, and applies the stop rules.

Every step is resumable: the pipeline resumes from its stage files, the red-team prompts and the
evaluation are kept once written, and `rounds/R/round.json` (written last, atomically) marks a round
finished. The config's fingerprint is kept in `iterate.json`; a rerun with another config is refused.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlaif.backends.serving import model_path
from rlaif.config import IterateConfig, RunConfig
from rlaif.errors import ConfigError, GateError, IncompleteRun
from rlaif.evaluate.compliance import ALL, evaluate_compliance
from rlaif.evaluate.reports import ComplianceReport, PassRate
from rlaif.evaluate.stats import newcombe
from rlaif.inputs.load import load_inputs
from rlaif.inputs.prompts import load_prompts
from rlaif.pipeline.run import run_pipeline
from rlaif.records import Constitution, PromptRecord, derive_seed
from rlaif.rounds.red_team import ask_red_team, normalized, red_team_rates, write_rows
from rlaif.rounds.reports import IterateReport, RedTeamReport, RoundReport, StopEvent
from rlaif.rounds.state import check_fingerprint, finished_round, round_folder, save_round
from rlaif.rounds.stop import best_round, stop_rule
from rlaif.store import RunDir, write_atomic
from rlaif.train.registry import TRAINERS

__all__ = ["REPORT", "iterate", "round_config", "round_prompts"]

REPORT = "iterate_report.json"
"""The loop's report, at the top of the run directory."""


def _section(config: RunConfig) -> IterateConfig:
    if config.iterate is None:
        raise ConfigError(
            "the config has no iterate: section; add one, e.g. iterate: {rounds: 3, heldout: heldout.jsonl, "
            "prompts_per_round: 16} (see docs/guides/rounds.md)"
        )
    return config.iterate


def round_prompts(config: RunConfig, prompts: Sequence[PromptRecord], number: int) -> list[PromptRecord]:
    """Round `number`'s training prompts: its consecutive slice (wrapping around) or a seeded resample."""
    section = _section(config)
    k = min(section.prompts_per_round or len(prompts), len(prompts))
    if section.selection == "resample":
        return random.Random(derive_seed(config.seed, f"iterate:round:{number}")).sample(list(prompts), k)
    start = (number - 1) * k
    return [prompts[(start + i) % len(prompts)] for i in range(k)]


def round_config(
    config: RunConfig, number: int, *, folder: Path, prompts_file: Path, start: str | Path, base: str | Path
) -> RunConfig:
    """The run config of round `number`: yours, with its own run directory and prompts, round R-1's
    policy as the model (round 1: yours), only `iterate.trainer` training."""
    section = _section(config)
    data: dict[str, Any] = config.model_dump(mode="json", exclude={"iterate"})
    data["run_dir"] = str(folder)
    data["prompts"] = {"path": str(prompts_file.resolve())}
    if number > 1:
        model = data["model"]
        model.update(path=str(Path(start).resolve()), base_urls=[], served_name=None, ray=None, workers=1)
    for name in TRAINERS:
        data["train"][name]["enabled"] = name == section.trainer
    if section.reference == "base":
        data["train"]["dpo"]["reference"] = str(Path(base).resolve()) if number > 1 else None
    if not section.review_each_round:
        data["review"]["gate"] = None
    return RunConfig.model_validate({**data, "base_dir": config.base_dir})


def _check_heldout(
    config: RunConfig, training: Sequence[PromptRecord], heldout: Sequence[PromptRecord]
) -> None:
    """Refuse held-out prompts that are also training prompts (the same id, or the same last user text)."""
    ids = {p.id for p in training}
    texts = {normalized(p.messages[-1].content) for p in training}
    shared = [p for p in heldout if p.id in ids or normalized(p.messages[-1].content) in texts]
    if shared:
        first = shared[0]
        raise ConfigError(
            f"iterate.heldout {config.iterate.heldout if config.iterate else ''}: {len(shared)} of its "
            f"{len(heldout)} prompts are also training prompts (first: {first.source} "
            f"{first.messages[-1].content[:60]!r}); held-out prompts must be unseen: remove them from "
            "one file"
        )


def _write_prompts(path: Path, prompts: Sequence[PromptRecord], red: Sequence[dict[str, Any]]) -> None:
    rows: list[dict[str, Any]] = []
    for p in prompts:
        row: dict[str, Any] = {"messages": [m.model_dump() for m in p.messages]}
        if p.tools:
            row["tools"] = [t.model_dump() for t in p.tools]
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*rows, *red]))


def _load_compliance(path: Path, candidate: str) -> ComplianceReport | None:
    """The round's evaluation when it was written for this candidate (a torn file is redone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("answers", None)
        report = ComplianceReport.model_validate(data)
    except (OSError, ValueError):
        return None
    return report if report.candidate == candidate else None


def _rates(report: ComplianceReport, who: str) -> dict[str, PassRate]:
    return {row.principle_id: getattr(row, who) for row in report.principles}


def _red_team(
    config: RunConfig,
    constitution: Constitution,
    *,
    number: int,
    folder: Path,
    start: str | Path,
    previous: RoundReport,
    previous_prompts: Sequence[PromptRecord],
    known: set[str],
    quiet: bool,
) -> tuple[list[dict[str, Any]], RedTeamReport]:
    """Round `number`'s red-team prompts: kept from an earlier try, or asked of the policy now."""
    section = _section(config).red_team
    assert section is not None
    rows_path, report_path = folder / "red_team.jsonl", folder / "red_team.json"
    if report_path.exists() and rows_path.exists():
        rows = [
            json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        return rows, RedTeamReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    rows, report = ask_red_team(
        config, section, round_number=number, policy=start, constitution=constitution, previous=previous,
        previous_prompts=previous_prompts, previous_folder=round_folder(Path(config.run_dir), number - 1),
        known=known, quiet=quiet,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    write_rows(rows_path, rows)
    write_atomic(report_path, report.model_dump_json(indent=2) + "\n")  # after the rows: marks them kept
    return rows, report


def iterate(
    config: RunConfig,
    *,
    quiet: bool = False,
    force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> IterateReport:
    """Run (or resume) the rounds of `config.iterate`; the report also goes to RUN_DIR/iterate_report.json.

    `force` trains a round even when a gate would refuse it (recorded in that round's manifest).
    """
    section = _section(config)
    say = echo or (lambda line: None)
    root = Path(config.run_dir)
    constitution, everyone = load_inputs(config)
    heldout_path = config.resolve(section.heldout)
    heldout = load_prompts(heldout_path, limit=section.heldout_limit)
    _check_heldout(config, everyone, heldout)
    base = model_path(config.model)
    known = {p.messages[-1].content for p in [*everyone, *heldout]}
    rounds: list[RoundReport] = []
    with RunDir(root):  # one `rlaif iterate` at a time in this folder
        check_fingerprint(config, root)
        start: str | Path = base
        previous_prompts: list[PromptRecord] = []
        stop: StopEvent | None = None
        status = "done"
        for number in range(1, section.rounds + 1):
            done = finished_round(root, number)
            if done is None:
                say(f"round {number} of {section.rounds}: generating with {start}")
                done = _round(
                    config, constitution, everyone, heldout_path, number=number, start=start, base=base,
                    previous=rounds[-1] if rounds else None, previous_prompts=previous_prompts, known=known,
                    quiet=quiet, force=force,
                )  # fmt: skip
            else:
                say(f"round {number}: finished before, kept ({round_folder(root, number) / 'round.json'})")
            rounds.append(done)
            if done.status == "refused":
                stop, status = done.stop, "refused"
                break
            previous_prompts = load_prompts(round_folder(root, number) / "prompts.jsonl")
            known |= {p.messages[-1].content for p in previous_prompts}
            start = done.model or start
            if done.stop is not None:
                stop, status = done.stop, "stopped"
                break
        best = best_round(rounds)
        report = IterateReport(
            run_dir=str(root), rounds_planned=section.rounds, base=str(base), heldout=str(heldout_path),
            heldout_prompts=len(heldout), base_rates=rounds[0].base_rates if rounds else {}, rounds=rounds,
            status=status, stop=stop,  # type: ignore[arg-type]
            best_round=best.round if best else None, best_model=best.model if best else None,
        )  # fmt: skip
        if any(r.status == "done" for r in rounds):
            from rlaif.rounds.plot import plot_rounds

            report.plot = str(plot_rounds(report, root / "rounds.png"))
        write_atomic(root / REPORT, report.model_dump_json(indent=2) + "\n")
    return report


def _round(
    config: RunConfig,
    constitution: Constitution,
    everyone: Sequence[PromptRecord],
    heldout_path: Path,
    *,
    number: int,
    start: str | Path,
    base: str | Path,
    previous: RoundReport | None,
    previous_prompts: Sequence[PromptRecord],
    known: set[str],
    quiet: bool,
    force: bool,
) -> RoundReport:
    """One round, from wherever an earlier try stopped; `round.json` is written last."""
    section = _section(config)
    root = Path(config.run_dir)
    folder = round_folder(root, number)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    chosen = round_prompts(config, everyone, number)
    red_rows: list[dict[str, Any]] = []
    red_report = None
    if section.red_team is not None and previous is not None:
        t0 = time.perf_counter()
        red_rows, red_report = _red_team(
            config, constitution, number=number, folder=folder, start=start, previous=previous,
            previous_prompts=previous_prompts, known=known, quiet=quiet,
        )  # fmt: skip
        seconds["red_team"] = round(time.perf_counter() - t0, 1)
    prompts_file = folder / "prompts.jsonl"
    _write_prompts(prompts_file, chosen, red_rows)
    derived = round_config(config, number, folder=folder, prompts_file=prompts_file, start=start, base=base)
    trainer = section.trainer
    report = RoundReport(
        round=number, status="done", started_from=str(start), prompts=len(chosen) + len(red_rows)
    )
    t0 = time.perf_counter()
    summary = _trained(folder, trainer)
    if summary is None:
        try:
            summary = run_pipeline(derived, quiet=quiet, force=force).model_dump(mode="json")
            _complete(summary, folder)
        except GateError as exc:
            report.status, report.refused = "refused", str(exc)
            report.stop = StopEvent(rule="gate", round=number, reason=str(exc).splitlines()[0])
            return report  # not saved as finished: a rerun (after reviews, say) retries the round
    seconds["pipeline"] = round(time.perf_counter() - t0, 1)
    trained = summary.get("trained", {}).get(trainer, {})
    report.model = str(trained.get("output_dir") or folder / "models" / trainer)
    report.train_steps = trained.get("steps")
    report.pairs = int(summary.get("counts", {}).get("pairs", 0))
    t0 = time.perf_counter()
    compliance_path = folder / "compliance.json"
    compliance = _load_compliance(compliance_path, report.model)
    if compliance is None:
        compliance = evaluate_compliance(
            derived, prompts_path=heldout_path, base=str(base), candidate=report.model,
            samples=section.samples, limit=section.heldout_limit, json_path=compliance_path, quiet=quiet,
            base_cache=root / "base_answers.json",
        )  # fmt: skip
    seconds["evaluate"] = round(time.perf_counter() - t0, 1)
    report.compliance = str(compliance_path)
    report.pass_rates, report.base_rates = _rates(compliance, "candidate"), _rates(compliance, "base")
    every, base_every = report.pass_rates[ALL], report.base_rates[ALL]
    before = previous.pass_rates[ALL] if previous is not None and ALL in previous.pass_rates else base_every
    if every.value is not None and before.value is not None:
        report.gain, report.gain_ci95 = every.value - before.value, newcombe(every, before)
    if every.value is not None and base_every.value is not None:
        report.gain_vs_base, report.gain_vs_base_ci95 = (
            every.value - base_every.value,
            newcombe(every, base_every),
        )
    report.kl_per_token = compliance.kl.per_token if compliance.kl is not None else None
    report.words_mean = compliance.lengths.candidate.words_mean
    report.tokens_mean = compliance.lengths.candidate.tokens_mean
    report.base_words_mean = compliance.lengths.base.words_mean
    report.alerts = list(compliance.monitors.alerts) if compliance.monitors is not None else []
    report.warnings = list(compliance.warnings)
    if red_report is not None:
        red_ids = {p.id for p in load_prompts(prompts_file)} - {p.id for p in chosen}
        red_report.pass_rate, red_report.others_pass_rate = red_team_rates(
            constitution, load_prompts(prompts_file), folder, red_ids
        )
        report.red_team = red_report
    report.stop = stop_rule(section.stop, report)
    seconds["total"] = round(time.perf_counter() - started, 1)
    report.seconds = seconds
    save_round(root, report)
    return report


def _complete(summary: dict[str, Any], folder: Path) -> None:
    """A round whose requests partly failed goes no further: a rerun retries them (as `rlaif run` does)."""
    failed = {
        name: stage["failed"] for name, stage in summary.get("stages", {}).items() if stage.get("failed")
    }
    if failed:
        counts = ", ".join(f"{name} {n}" for name, n in failed.items())
        raise IncompleteRun(
            f"round {folder.name} is incomplete: {sum(failed.values())} request(s) failed ({counts}); "
            f"nothing of theirs was stored (see {folder / 'summary.json'}), rerun the same command to retry"
        )


def _trained(folder: Path, trainer: str) -> dict[str, Any] | None:
    """The round's pipeline summary when it finished and trained `trainer` (it is not run again)."""
    try:
        summary: dict[str, Any] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        status = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return summary if status == "done" and trainer in summary.get("trained", {}) else None
