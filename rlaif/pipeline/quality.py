"""What the export refuses to let through: pair filters with reasons, and the gates before training.

Filters run on every candidate pair at export. A dropped pair stays in `pairs.jsonl` (nothing is
deleted, so a changed threshold needs only a re-export); `export/dropped.jsonl` says why. Judge pairs
are dropped when the judge's two orders disagree (the label is position bias) or it is unsure; revision
pairs when the "revision" is no real rewrite: near-identical, copied from the constitution's examples,
a repetition loop, talk about "the answer" instead of an answer, still failing the check it was
revised for, or judged worse than the original.

Gates then judge the data trainers would read: only the sources they train on count, so a judge with
no signal fails the run only if its pairs would be trained on (its figures are shown either way).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from rapidfuzz.distance import Levenshtein

from rlaif.config import PairSource, QualityConfig, RunConfig
from rlaif.evaluate.bias import describe_share
from rlaif.evaluate.reports import BiasShare
from rlaif.judging.checks import checkable, run_check
from rlaif.judging.labels import position_means, side
from rlaif.pipeline.reports import Gate, JudgeBiasReport, ProbeReport, QualityReport
from rlaif.records import Constitution, Judgment, PreferencePair, PromptRecord, Revision
from rlaif.reports import percent
from rlaif.train.monitors import REPEAT_NGRAM, repetition_share

__all__ = [
    "Dropped",
    "revision_checks",
    "evaluate_gates",
    "filter_pairs",
    "pair_filter",
    "verdict",
    "Verdict",
    "ngram_overlap",
    "normalised_edit_distance",
    "repetition_share",
    "training_sources",
]

NGRAM = 5
"""Word n-gram length for copying from the constitution's examples."""


@dataclass(frozen=True)
class Dropped:
    """A candidate pair the export leaves out, and why."""

    pair: PreferencePair
    reason: str
    """A filter name (see `config.FILTERS`)."""
    detail: str = ""
    """The measured value behind the reason."""


# --- text measures -------------------------------------------------------------------------------


def normalised_edit_distance(a: str, b: str) -> float:
    """Levenshtein distance over the longer length: 0 for equal texts, 1 for nothing in common."""
    return float(Levenshtein.normalized_distance(a, b))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def ngram_overlap(text: str, source: set[tuple[str, ...]], n: int = NGRAM) -> float:
    """Share of `text`'s word n-grams that occur in `source`; 0 for a text shorter than n words."""
    grams = _ngrams(_words(text), n)
    return sum(g in source for g in grams) / len(grams) if grams else 0.0


def example_ngrams(constitution: Constitution, n: int = NGRAM) -> set[tuple[str, ...]]:
    """Every word n-gram of the constitution's few-shot examples (all of their texts)."""
    grams: set[tuple[str, ...]] = set()
    for example in constitution.examples:
        for text in (example.prompt, example.response, example.critique, example.revision):
            grams.update(_ngrams(_words(text), n))
    return grams


@cache
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


# --- filters -------------------------------------------------------------------------------------


class Verdict(NamedTuple):
    """What the filters read of a judgment: a run of a million pairs keeps these, not the judgments."""

    p_a: float | None
    consistent: bool | None


def verdict(judgment: Judgment) -> Verdict:
    return Verdict(judgment.p_a, judgment.consistent)


def filter_pairs(
    pairs: Iterable[PreferencePair],
    *,
    config: RunConfig,
    constitution: Constitution,
    judgments: Mapping[str, Judgment | Verdict],
    validations: Mapping[str, Judgment | Verdict] | None = None,
    check_failures: Mapping[str, str] | None = None,
) -> tuple[list[PreferencePair], list[Dropped]]:
    """(kept, dropped) under the configured filters, in the order given.

    `judgments` maps judgment id to judgment (the source of judge pairs); `validations` maps a revision
    id to its validation judgment (revision as A, original as B); `check_failures` maps a revision id
    to why it still fails a check it was revised for.
    """
    drop = pair_filter(
        config=config, constitution=constitution, judgments=judgments, validations=validations,
        check_failures=check_failures,
    )  # fmt: skip
    kept: list[PreferencePair] = []
    dropped: list[Dropped] = []
    for pair in pairs:
        reason = drop(pair)
        if reason is None:
            kept.append(pair)
        else:
            dropped.append(Dropped(pair, *reason))
    return kept, dropped


def pair_filter(
    *,
    config: RunConfig,
    constitution: Constitution,
    judgments: Mapping[str, Judgment | Verdict],
    validations: Mapping[str, Judgment | Verdict] | None = None,
    check_failures: Mapping[str, str] | None = None,
) -> Callable[[PreferencePair], tuple[str, str] | None]:
    """The filters as one function of a pair: None to keep it, else (reason, detail). See `filter_pairs`."""
    filters = config.quality.filters
    off = set(filters.off)
    examples = example_ngrams(constitution)
    meta = _compiled(tuple(filters.meta_patterns))

    def drop(pair: PreferencePair) -> tuple[str, str] | None:
        if pair.source == "judge":
            judgment = judgments.get(pair.source_id)
            if (
                "judge_inconsistent" not in off
                and config.judge.inconsistent == "drop"
                and judgment is not None
                and judgment.consistent is False
            ):
                return "judge_inconsistent", "the two orders preferred different responses"
            if "judge_low_confidence" not in off and pair.score < config.judge.min_confidence:
                return "judge_low_confidence", f"P(chosen) {pair.score:.3f} < {config.judge.min_confidence}"
            return None
        if pair.source != "revision":
            return None  # check pairs are exact labels
        chosen, rejected = pair.chosen, pair.rejected
        distance = normalised_edit_distance(chosen, rejected)
        if "revision_near_identical" not in off and distance < filters.near_identical:
            return "revision_near_identical", f"edit distance {distance:.3f} < {filters.near_identical}"
        overlap = ngram_overlap(chosen, examples)
        if "revision_few_shot_copy" not in off and examples and overlap >= filters.few_shot_overlap:
            return "revision_few_shot_copy", f"{percent(overlap)} of its {NGRAM}-grams are in the examples"
        repeats = repetition_share(chosen)
        if "revision_degenerate" not in off and repeats >= filters.repetition:
            return "revision_degenerate", f"{percent(repeats)} of its {REPEAT_NGRAM}-grams repeat"
        if "revision_meta_talk" not in off:
            hit = next((m for p in meta if (m := p.search(chosen))), None)
            if hit is not None:
                return "revision_meta_talk", f"talks about the answer: {hit.group(0)!r}"
        failure = (check_failures or {}).get(pair.source_id)
        if "revision_still_fails_check" not in off and failure:
            return "revision_still_fails_check", failure
        validation = (validations or {}).get(pair.source_id)
        if "revision_judged_worse" not in off and validation is not None:
            if validation.p_a is None:
                return "revision_judged_worse", "the validation verdict did not parse"
            if validation.consistent is False or validation.p_a <= 0.5:
                return "revision_judged_worse", f"P(revision better) {validation.p_a:.3f}"
        return None

    return drop


def revision_checks(
    revisions: Iterable[Revision], prompts: Mapping[str, PromptRecord], constitution: Constitution
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Checks on revisions: (revision id -> why it still fails a check its original failed, under a
    principle it was revised for; revision id -> the checks it newly fails that its original passed)."""
    checked = checkable(constitution)
    if not checked:
        return {}, {}
    still: dict[str, str] = {}
    flags: dict[str, list[str]] = {}
    for revision in revisions:
        prompt = prompts.get(revision.prompt_id)
        if prompt is None:
            continue
        before = {p.id: run_check(p, prompt.messages, revision.original) for p in checked}
        after = {p.id: run_check(p, prompt.messages, revision.final) for p in checked}
        revised_for = {r.principle_id for r in revision.rounds}
        failing = [
            f"{pid} ({', '.join(after[pid].failed)})"
            for pid in before
            if pid in revised_for and before[pid].passed is False and after[pid].passed is False
        ]
        if failing:
            still[revision.id] = "still fails " + "; ".join(failing)
        newly = [pid for pid in before if before[pid].passed is True and after[pid].passed is False]
        if newly:
            flags[revision.id] = [f"newly fails {pid}" for pid in newly]
    return still, flags


# --- gates ---------------------------------------------------------------------------------------


def training_sources(config: RunConfig, trainers: Sequence[str]) -> list[str]:
    """The pair sources the given trainers read (SFT reads revisions, not pairs); with no trainer, those
    of the enabled ones, else every source."""
    from rlaif.train.registry import TRAINERS

    names = list(trainers) or [n for n, t in TRAINERS.items() if t.section(config).enabled]
    sources: set[PairSource] = set()
    for name in names:
        section = TRAINERS[name].section(config)
        sources.update(getattr(section, "sources", ()))
    return sorted(sources or {"check", "judge", "revision"})


def _llm_stats(judgments: Iterable[Judgment]) -> tuple[int, int, int, int, int, int]:
    """(judgments, with both orders, consistent, same position, orders, unparsed orders) of the
    LLM-decided pairwise judgments."""
    judged = both = consistent = same = orders = unparsed = 0
    for judgment in judgments:
        judged += 1
        orders += len(judgment.orders)
        unparsed += sum(o.status != "ok" for o in judgment.orders)
        first, second = position_means(judgment.orders, judgment.response_a_id)
        if first is None or second is None:
            continue
        both += 1
        consistent += side(first) == side(second)
        same += side(first) == -side(second) != 0
    return judged, both, consistent, same, orders, unparsed


def _gate(
    name: str,
    value: float | None,
    threshold: float | None,
    *,
    at_least: bool,
    applies: bool,
    note: str,
    fix: str,
) -> Gate:
    if threshold is None:
        return Gate(name=name, value=value, threshold=None, at_least=at_least, applies=False, passed=None,
                    note="off (threshold null)", fix=fix)  # fmt: skip
    if value is None:
        return Gate(name=name, value=None, threshold=threshold, at_least=at_least, applies=False, passed=None,
                    note=note or "not measured", fix=fix)  # fmt: skip
    ok = value >= threshold if at_least else value <= threshold
    return Gate(name=name, value=value, threshold=threshold, at_least=at_least, applies=applies,
                passed=ok if applies else None, note=note, fix=fix)  # fmt: skip


def evaluate_gates(
    *,
    config: RunConfig,
    sources: Sequence[str],
    candidates: Mapping[str, int],
    kept: Mapping[str, int],
    exported: Mapping[str, int],
    dropped: Iterable[Dropped] | Mapping[str, int],
    judgments: Iterable[Judgment],
    flagged: Mapping[str, int] | None = None,
    forced: bool = False,
    bias: JudgeBiasReport | None = None,
    probe_report: ProbeReport | None = None,
) -> QualityReport:
    """The quality report: every gate with its value and threshold, and whether the data may train.

    `candidates` counts the candidate pairs by source, `kept` those the filters let through, `exported`
    the exported rows (after human review too); `dropped` the dropped pairs (or their counts by reason);
    `judgments` are the run's current judgments (all kinds), read once; `bias` the judge's length and
    self-preference figures of the export.
    `judgments` are the run's current judgments (all kinds), read once; `probe_report` the universal probes'
    report (`pipeline.probes`).
    """
    quality = config.quality
    trained = {s: n for s, n in exported.items() if s in sources}
    probes = agree = 0

    def llm_decided() -> Iterator[Judgment]:
        nonlocal probes, agree
        for j in judgments:
            if j.llm_agrees is not None:
                probes += 1
                agree += bool(j.llm_agrees)
            if j.source == "llm" and j.kind == "sampled" and j.mode != "pointwise":
                yield j

    judged, both, consistent, same, orders, unparsed = _llm_stats(llm_decided())
    judge_applies = trained.get("judge", 0) > 0
    judge_note = "" if judge_applies else "no LLM-judged pair is in the training data"
    revision_applies = trained.get("revision", 0) > 0
    total = sum(trained.values())
    judge_fix = "use a stronger judge (judge.model) or leave judge pairs out (train.*.sources)"
    gates = [
        _gate("pairs", total, quality.min_pairs, at_least=True, applies=True, note="",
              fix="generate more (more prompts or samples), or loosen the filters (quality.filters)"),
        _gate("judge order-consistency", consistent / both if both else None, quality.min_order_consistency,
              at_least=True, applies=judge_applies, note=judge_note, fix=judge_fix),
        _gate("judge same-position rate", same / both if both else None, quality.max_same_position,
              at_least=False, applies=judge_applies, note=judge_note, fix=judge_fix),
        _gate("judge unparsed orders", unparsed / orders if orders else None, quality.max_unparsed,
              at_least=False, applies=judge_applies, note=judge_note,
              fix="check the judge's raw answers in judgments.jsonl; use judge.mode: logprob"),
        _gate("judge decisive share", kept.get("judge", 0) / judged if judged else None, quality.min_decisive,
              at_least=True, applies=judge_applies, note=judge_note, fix=judge_fix),
        _gate("judge agreement with checks", agree / probes if probes else None,
              quality.min_check_agreement,
              at_least=True, applies=judge_applies and probes >= quality.min_check_probes,
              note=judge_note or (f"only {probes} probes (need {quality.min_check_probes})"
                                  if probes < quality.min_check_probes else ""),
              fix=judge_fix),
        _gate("revision pairs kept", kept.get("revision", 0) / candidates["revision"]
              if candidates.get("revision") else None, quality.min_revision_kept, at_least=True,
              applies=revision_applies,
              note="" if revision_applies else "no revision pair is in the training data",
              fix="see export/dropped.jsonl; revise with a stronger model or leave revision pairs out"),
        # Universal probes (judge.probes)
        _probe_gate(probe_report, config, applies=judge_applies, note=judge_note, fix=judge_fix),
    ]  # fmt: skip
    gates += _bias_gates(quality, bias, judge_applies=judge_applies, judge_note=judge_note)
    failed = [g for g in gates if g.passed is False]
    reasons = Counter(dropped) if isinstance(dropped, Mapping) else Counter(d.reason for d in dropped)
    warnings = [
        _warning(g, candidates, kept)
        for g in gates
        if g.passed is None and (g.value is not None and _fails(g) or g.detail.startswith(NONE_DECIDED))
    ]
    return QualityReport(
        sources=list(sources), candidates=dict(candidates), kept=dict(kept), exported=dict(exported),
        dropped=dict(sorted(reasons.items())), flagged=dict(sorted((flagged or {}).items())), gates=gates,
        passed=not failed, forced=forced and bool(failed), warnings=warnings,
    )  # fmt: skip


# Judge biases beyond position (length, self-preference): see rlaif/evaluate/bias.py.
def _bias_gates(
    quality: QualityConfig, bias: JudgeBiasReport | None, *, judge_applies: bool, judge_note: str
) -> list[Gate]:
    """The length-bias and self-preference gates; each reads the lower end of its excess's interval."""
    length = bias.length if bias is not None else None
    own = bias.self_preference if bias is not None else None

    def gate(name: str, share: BiasShare | None, threshold: float | None, what: str, fix: str) -> Gate:
        value = share.excess_low if share is not None else None
        made = _gate(name, value, threshold, at_least=False, applies=judge_applies, note=judge_note, fix=fix)
        if share is not None and share.judged.n:
            made.detail = describe_share(share, what)
        return made

    return [
        gate("judge length bias", length, quality.max_length_bias, "the longer answer",
             "the judge's preferences are explained by length: use a stronger judge (judge.model), a "
             "constitution whose checks set a ground truth, or leave judge pairs out (train.*.sources)"),
        gate("judge self-preference", own, quality.max_self_preference, "its own model's answer",
             "the judge prefers its own model's answers: judge with a model that wrote none of them "
             "(judge.model)"),
    ]  # fmt: skip


NONE_DECIDED = "the judge decided none of its"
"""How a probe gate's detail starts when no probe was decided (no figure to show, yet a refusal)."""


def _probe_gate(probes: ProbeReport | None, config: RunConfig, *, applies: bool, note: str, fix: str) -> Gate:
    """The judge's accuracy on the universal probes it decided (two orders agreeing: what a judge pair is
    made from), once `min_probes` have a verdict: overall and on each kind with `min_probes` decided, the
    lowest read; its lines name each kind's.

    Ties are left out because the export leaves them out: counted half, they made a position-biased but
    otherwise sound judge look like a coin (a judge right 90% of the time that ties 30% of its probes scored
    76%, while 95% of its exported pairs were right; `rlaif bench-trust`). How often it ties is the
    order-consistency gate's figure. Each kind is held to the bar on its own because the kinds test
    different things and averaging hides a bias: the padded probe is the length-controlled one (the same
    answer with filler appended is longer and must lose), and a judge that takes the longer answer 30% of
    the time fails it (77% of 43) while passing overall (89%). A judge that decided none of enough probes
    is refused too: its probes show nothing it can tell apart."""
    quality = config.quality
    verdicts = probes.accuracy.n if probes is not None and probes.accuracy is not None else 0
    decided = probes.decided if probes is not None else None
    enough = verdicts >= quality.min_probes
    kinds = f"per kind: {probes.per_kind()}" if probes is not None and probes.by_kind else ""
    tied = probes.ties if probes is not None else 0
    ties = f"{tied} of {verdicts} probes tied (orders disagreed)" if tied else ""
    why = note or ("" if enough else f"only {verdicts} probes with a verdict (need {quality.min_probes})")
    detail = "; ".join(t for t in (why, ties, kinds) if t)
    threshold = quality.min_probe_accuracy
    fixed = f"{kinds}; {fix}" if kinds else fix
    if enough and threshold is not None and (decided is None or decided.value is None):
        return Gate(name="judge probe accuracy", value=None, threshold=threshold, at_least=True,
                    applies=applies, passed=False if applies else None, note=detail,
                    detail=f"{NONE_DECIDED} {verdicts} probes: its two orders disagreed on every one",
                    fix=fixed)  # fmt: skip
    value = decided.value if decided is not None else None
    lowest = ""
    if value is not None and probes is not None:
        for kind, tally in probes.by_kind.items():
            rate = tally.decided
            measured = rate is not None and rate.value is not None and rate.n >= quality.min_probes
            if measured and rate.value < value:
                value, lowest = rate.value, f"lowest kind: {kind} {percent(rate.value)} of {rate.n} decided"
    gate = _gate("judge probe accuracy", value, threshold, at_least=True, applies=applies and enough,
                 note=detail, fix=fixed)  # fmt: skip
    if lowest:
        overall = f"all kinds {percent(decided.value if decided else None)} of {decided.n if decided else 0}"
        gate.detail = f"{lowest}; {overall}"
    return gate


def _fails(gate: Gate) -> bool:
    if gate.value is None or gate.threshold is None:
        return False
    return gate.value < gate.threshold if gate.at_least else gate.value > gate.threshold


def _warning(gate: Gate, candidates: Mapping[str, int], kept: Mapping[str, int]) -> str:
    """A bad figure where no gate applies: say so loudly, and what became of the pairs it made."""
    limit = f"{'least' if gate.at_least else 'most'} allowed {_value(gate, gate.threshold)}"
    source = "judge" if gate.name.startswith("judge") else "revision"
    made = f"{kept.get(source, 0)} of its {candidates.get(source, 0)} {source} pairs passed the filters"
    detail = f" ({gate.detail})" if gate.detail.startswith(NONE_DECIDED) else ""
    return f"{gate.name} is {_value(gate)}{detail} ({limit}): {made}; {gate.note}"


def _value(gate: Gate, value: float | None = None) -> str:
    value = gate.value if value is None else value
    if gate.name == "pairs":
        return str(int(value or 0))
    return percent(value)
