"""The export stage: candidate pairs, the filters, the export (human decisions applied), the judge's
biases and calibration, its dataset card and the quality gates that decide whether training may start."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from rlaif.config import RunConfig
from rlaif.evaluate.bias import LengthTally, SelfPreferenceTally
from rlaif.evaluate.calibration import calibrator
from rlaif.pipeline.calibrate import calibrate_run, is_ground_truth, reviewed_labels
from rlaif.pipeline.current import iter_current
from rlaif.pipeline.dataset_card import write_card
from rlaif.pipeline.export import (
    dropped_row,
    held_out_prompts,
    iter_pair_rows,
    sft_row,
    write_dropped,
    write_pairs,
    write_sft,
)
from rlaif.pipeline.pairs import candidate_pairs
from rlaif.pipeline.quality import (
    Verdict,
    evaluate_gates,
    pair_filter,
    revision_checks,
    training_sources,
    verdict,
)
from rlaif.pipeline.reports import JudgeBiasReport, QualityReport, RunSummary
from rlaif.records import (
    Constitution,
    Judgment,
    PreferencePair,
    PromptRecord,
    Response,
    ReviewDecision,
    Revision,
)
from rlaif.store import RunDir

__all__ = ["export_stage"]

PAIR_BATCH = 1024
"""Candidate pairs appended to `pairs.jsonl` at a time."""


def export_stage(
    config: RunConfig,
    constitution: Constitution,
    prompts: Sequence[PromptRecord],
    run: RunDir,
    summary: RunSummary,
    human: dict[str, dict[str, ReviewDecision]],
    *,
    trainers: Sequence[str],
    force: bool,
) -> QualityReport:
    """Pairs, the filters, the export (human decisions applied), its card and the quality gates;
    counts go into `summary`.

    Every stage file is streamed: what stays in memory is a few ids and small verdicts a pair, so the
    export of a million prompts is not a million records at once.
    """
    layout, templates = run.layout, config.template_set()
    by_id = {p.id: p for p in prompts}
    verdicts: dict[str, Verdict] = {}
    validations: dict[str, Verdict] = {}
    truth: list[Judgment] = []  # the few judgments whose better answer is known (calibration)
    judged_by: Judgment | None = None
    judged: dict[str, tuple[str, str]] = {}  # judgment id -> its two responses, for self-preference
    judge_model: str | None = None
    for judgment in iter_current(run, layout.JUDGMENTS, Judgment, prompts, constitution, templates=templates):
        truth += [judgment] if is_ground_truth(judgment) else []
        judged_by = judged_by or (judgment if judgment.orders else None)
        if judgment.kind == "revision":
            validations[judgment.response_a_id] = verdict(judgment)
        else:
            verdicts[judgment.id] = verdict(judgment)
            judged[judgment.id] = (judgment.response_a_id, judgment.response_b_id)
            if judgment.source == "llm":
                judge_model = judge_model or judgment.provenance.model
    # The universal probes are stored apart (never made into pairs): each knows its better answer.
    truth += iter_current(run, layout.PROBES, Judgment, prompts, constitution, templates=templates)
    own = SelfPreferenceTally(judge_model or "")
    # Only the answers another model wrote are kept: in the usual run that is none.
    other_model = {
        r.id: r.provenance.model for r in run.stage(layout.RESPONSES, Response)
        if judge_model is not None and r.provenance.model != judge_model
    }  # fmt: skip
    still_failing, flags = revision_checks(
        iter_current(run, layout.REVISIONS, Revision, prompts, constitution, templates=templates),
        by_id,
        constitution,
    )
    drop = pair_filter(
        config=config, constitution=constitution, judgments=verdicts, validations=validations,
        check_failures=still_failing,
    )  # fmt: skip
    skipped: Counter[str] = Counter()
    candidates: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    kept_ids: list[str] = []
    dropped: list[tuple[str, str, str]] = []
    store = run.stage(layout.PAIRS, PreferencePair)
    batch: list[PreferencePair] = []
    for pair in candidate_pairs(config, run, prompts, constitution, skipped):
        # What is exported is what pairs.jsonl holds under this id: on resume or after a merge that may
        # not be the pair just built, so the filters judge the stored one.
        pair = store.get(pair.id) or pair
        batch.append(pair)
        if len(batch) >= PAIR_BATCH:
            store.append(batch)
            batch = []
        candidates[pair.source] += 1
        reason = _no_pair(pair) or drop(pair)
        if reason is None:
            kept_ids.append(pair.id)
            kept[pair.source] += 1
            flagged.update(flags.get(pair.source_id, ()))
            if pair.source_id in judged and judge_model is not None:
                a, b = judged[pair.source_id]
                chosen, rejected = (a, b) if (verdicts[pair.source_id].p_a or 0) > 0.5 else (b, a)
                own.add(other_model.get(chosen, judge_model), other_model.get(rejected, judge_model),
                        known=pair.source == "check")  # fmt: skip
        else:
            dropped.append((pair.id, *reason))
    store.append(batch)
    dropped.sort()
    kept_ids.sort()  # the export is ordered by pair id: the same data gives the same files
    write_dropped(layout.export, (dropped_row(store[pid], reason, detail) for pid, reason, detail in dropped))
    exported: Counter[str] = Counter()
    reviewed = 0
    if judged_by is not None:  # an LLM judged something: say whether its labels are calibrated
        summary.calibration = calibrate_run(
            config, truth, reviewed_labels(human, (store[pid] for pid in kept_ids if pid in human)),
            judge_model=judged_by.provenance.model, template_hash=judged_by.provenance.template_hash,
        )  # fmt: skip
    calibrate = calibrator(summary.calibration)
    length = LengthTally()

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal reviewed
        for row in iter_pair_rows((store[pid] for pid in kept_ids), human, flags, calibrate):
            exported[row["source"]] += 1
            reviewed += row["human_reviewed"]
            length.add_row(row)
            yield row

    # The split is the prompt set's, so a prompt's pairs and its SFT row fall on the same side.
    seed = config.seed if config.export.seed is None else config.export.seed
    fraction = config.export.test_fraction
    held = held_out_prompts(by_id, fraction, seed=seed) if fraction else None
    # Turns with tool calls need the export's richer turn schema: a run's prompts say whether any exist.
    tools = any(p.tools or any(m.tool_calls or m.role == "tool" for m in p.messages) for p in prompts)
    write_pairs(rows(), layout.export, held, tools=tools)
    revisions = run.stage(layout.REVISIONS, Revision)
    current_revisions = sorted(
        r.id
        for r in iter_current(run, layout.REVISIONS, Revision, prompts, constitution, templates=templates)
    )
    sft_rows = (sft_row(r, by_id[r.prompt_id]) for r in (revisions[i] for i in current_revisions))
    write_sft(sft_rows, layout.export, held, tools=tools)  # each revision read back once, in id order
    counts = summary.counts
    counts.pairs = sum(exported.values())
    counts.pairs_from_judge = exported["judge"]
    counts.pairs_from_revision = exported["revision"]
    counts.pairs_from_check = exported["check"]
    counts.pairs_human_reviewed = reviewed
    summary.skipped = dict(skipped)
    summary.bias = _bias(summary, length, own)
    quality = evaluate_gates(
        flagged=flagged, config=config, sources=training_sources(config, trainers), candidates=candidates,
        kept=kept, exported=dict(exported), dropped=Counter(reason for _, reason, _ in dropped),
        judgments=iter_current(run, layout.JUDGMENTS, Judgment, prompts, constitution, templates=templates),
        forced=force, bias=summary.bias, probe_report=summary.probes,
    )  # fmt: skip
    summary.quality = quality
    write_card(layout.export, constitution=constitution, summary=summary, export=config.export)
    summary.files["export"] = str(layout.export)
    return quality


def _no_pair(pair: PreferencePair) -> tuple[str, str] | None:
    """A stored pair that states no preference (the pair builder never makes one; a merged or edited
    pairs.jsonl can hold it): dropped whatever filters are off, and counted."""
    chosen, rejected = pair.chosen.strip(), pair.rejected.strip()
    if not chosen or chosen == rejected:
        return "pair_identical", "chosen equals rejected (or is empty) in pairs.jsonl"
    return None


def _bias(summary: RunSummary, length: LengthTally, own: SelfPreferenceTally) -> JudgeBiasReport:
    """The export's length and self-preference figures; self-judging said once, from the config (see
    `summarize`) or, when the config did not show it, from who wrote the judged answers."""
    said = summary.bias.self_judging if summary.bias is not None else None
    if said is None and own.own_answers:
        said = (
            f"the judge's model ({own.judge_model}) wrote {own.own_answers} of the answers it judged, where "
            "self-preference is worst: judge with a model that wrote none of them (judge.model)"
        )
    return JudgeBiasReport(
        self_judging=said, length=length.report(),
        self_preference=own.report(ground_truth=summary.judge.check_agreement),
    )  # fmt: skip
