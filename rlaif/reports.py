"""Every report a stage or command produces, in one module: typed, rendered by field, dumped as JSON.

Records (`records.py`) are the data that crosses stage boundaries; reports are what a stage or a
command says about what it did. The CLI renders them from their fields, and `--json` writes their
`model_dump`. A rate that cannot be computed is None ("n/a"), never 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = [
    "AIAgreement",
    "AIvsHuman",
    "AgreementReport",
    "AttackOutcome",
    "AttackReport",
    "AttackResult",
    "AuditReport",
    "BenchMeasurement",
    "BootstrapSettings",
    "Calibration",
    "CalibrationBin",
    "CheckBenchPrinciple",
    "CheckBenchReport",
    "CohenAgreement",
    "ComplianceExample",
    "ComplianceReport",
    "ConstitutionComparison",
    "ConstitutionTrial",
    "FleissAgreement",
    "Gate",
    "GateStatus",
    "GenerationBench",
    "Hardware",
    "HeadAccuracy",
    "JudgeCostBench",
    "JudgeCostRun",
    "JudgeEvaluation",
    "JudgeStats",
    "JudgeSummary",
    "JudgeThroughput",
    "KLEstimate",
    "LabelledDataInfo",
    "LengthComparison",
    "MonitorReadings",
    "LengthStats",
    "LintReport",
    "LintWarning",
    "PairedDifference",
    "ParseCounts",
    "PassRate",
    "ProbeReport",
    "ProbeTally",
    "PreviewReport",
    "PreviewRequest",
    "PrincipleCompliance",
    "PrincipleTrial",
    "PromptPart",
    "PromptSetInfo",
    "QualityReport",
    "Rate",
    "Report",
    "ReviewerAgreement",
    "RewardAccuracy",
    "RunCounts",
    "RunSummary",
    "SamplingSettings",
    "ScaleBench",
    "ServersPoint",
    "ScalePoint",
    "StageReport",
    "TokenCounts",
    "TrainBench",
    "TrainResult",
    "TrainSummary",
    "TrainerComparison",
    "TrainerMeasurement",
    "TraitGroup",
    "TraitShare",
    "WinRateReport",
    "WinRateRow",
    "WinTally",
    "percent",
]


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage ("12.5%"); "n/a" when it is undefined, never 0."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


class Report(BaseModel):
    """Base of every report: field docstrings are the documentation of the JSON keys."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class Rate(Report):
    """A share with its denominator: `value` of `n`, with a Wilson 95% interval (`evaluate.stats.rate`)."""

    value: float | None
    """The share; None ("n/a") when `n` is 0, never 0."""
    n: int
    """Its denominator."""
    ci95: tuple[float, float] | None = None
    """Wilson 95% interval; None when `n` is 0."""


# --- pipeline stages ---------------------------------------------------------------------------------


class StageReport(Report):
    """What a stage did: new records, ones reused from an earlier run, failed requests (not stored,
    so a rerun retries them), and judgments stored with a verdict that did not parse."""

    made: int = 0
    """Records made by this run."""
    reused: int = 0
    """Records found stored by an earlier run (skipped)."""
    failed: int = 0
    """Requests that failed (nothing stored; a rerun retries them)."""
    unparsed: int = 0
    """Judgments stored whose verdict did not parse."""
    errors: list[str] = Field(default_factory=list)
    """The first few failure messages, to show the user."""

    def fail(self, message: str) -> None:
        """Count a failed request and keep its message if it is among the first five."""
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(message)


class JudgeStats(Report):
    """Run-level judge metrics over a set of judgments."""

    judged: int = 0
    """Judgments."""
    parsed_orders: int = 0
    """Presentation orders whose verdict parsed."""
    unparsed_orders: int = 0
    """Presentation orders whose verdict did not parse (or whose request failed)."""
    both_orders: int = 0
    """Judgments with a parsed verdict in both presentation orders."""
    consistent: int = 0
    """Of those, judgments whose two orders preferred the same response."""
    same_position: int = 0
    """Judgments whose two orders both preferred the first (or both the second) position."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def consistency_rate(self) -> float | None:
        """consistent / both_orders; None without judgments in both orders."""
        return self.consistent / self.both_orders if self.both_orders else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def same_position_rate(self) -> float | None:
        """same_position / both_orders; None without judgments in both orders."""
        return self.same_position / self.both_orders if self.both_orders else None


# --- training ----------------------------------------------------------------------------------------


class TrainSummary(Report):
    """A trainer's entry in the run summary."""

    trainer: str
    """Registry name of the trainer (sft, reward, dpo, kto, online, ppo)."""
    steps: int
    """Optimizer steps taken."""
    seconds_per_step: float
    """Wall time per step, over the whole training."""
    loss_first: float | None = None
    """Training loss at the first logged step; None when none was logged."""
    loss_last: float | None = None
    """Training loss at the last logged step."""
    output_dir: str
    """Where the model was saved."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Trainer-specific results (held-out accuracy, pairs used, first and last reward, ...)."""


class HeadAccuracy(Report):
    """One reward head's held-out pairwise accuracy."""

    pairs: int
    """Held-out pairs labelled under the head's principles."""
    accuracy: float | None
    """Share of them whose chosen answer the head (the ensemble's mean) scores higher; ties count half;
    None when there are none."""


class RewardAccuracy(Report):
    """Held-out pairwise accuracy of a reward model: each member, the ensemble's mean score, each head."""

    pairs: int
    """Held-out pairs scored (with heads: those labelled under at least one kept head)."""
    members: list[float | None]
    """Each member's accuracy (one entry for a single model); ties count half."""
    ensemble: float | None
    """Accuracy of the members' mean score."""
    heads: dict[str, HeadAccuracy] = Field(default_factory=dict)
    """Per head, when the model has more than one."""


class TrainResult(Report):
    """What a trainer did; every trainer returns one."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid", arbitrary_types_allowed=True)

    trainer: str = ""
    """Registry name of the trainer."""
    output_dir: Path
    """Where the model was saved."""
    steps: int
    """Optimizer steps taken."""
    seconds: float
    """Wall time of training (not loading or saving)."""
    losses: list[float] = Field(default_factory=list)
    """Logged training losses, in order."""
    log_history: list[dict[str, Any]] = Field(default_factory=list)
    """Every logged entry (TRL's `log_history`, or our PPO's per-step metrics)."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Trainer-specific results (held-out accuracy, rows used, first and last reward, ...)."""
    step_seconds: list[float] = Field(default_factory=list)
    """Wall time of each optimizer step."""

    def summary(self) -> TrainSummary:
        """The run summary's entry for this trainer."""
        return TrainSummary(
            trainer=self.trainer,
            steps=self.steps,
            seconds_per_step=self.seconds / max(self.steps, 1),
            loss_first=self.losses[0] if self.losses else None,
            loss_last=self.losses[-1] if self.losses else None,
            output_dir=str(self.output_dir),
            metrics=self.metrics,
        )


# --- the run summary ---------------------------------------------------------------------------------


class RunCounts(Report):
    """Records of the current inputs (constitution, templates, prompts) in the run directory."""

    prompts: int
    """Prompts in the prompt set (after `prompts.limit`)."""
    responses: int
    """First answers."""
    revision_steps: int
    """Critique/revise rounds stored."""
    revisions: int
    """Finished critique/revise chains."""
    judgments: int
    """Pairwise judgments."""
    pairs: int | None = None
    """Preference pairs made by the export; None when this run did not export."""
    pairs_from_judge: int | None = None
    """Of those, from the judge."""
    pairs_from_revision: int | None = None
    """Of those, revision over original."""
    pairs_from_check: int | None = None
    """Of those, labelled by a principle's check."""
    pairs_human_reviewed: int | None = None
    """Of those, pairs with a standing human decision."""


class JudgeSummary(JudgeStats):
    """Judge metrics of a run, with how its orders and judgments ended."""

    error_orders: int = 0
    """Orders whose request failed (not stored; a rerun retries them)."""
    orders_by_status: dict[str, int] = Field(default_factory=dict)
    """Orders by status (`ok`, `unparsed`, `error`)."""
    judgments_by_status: dict[str, int] = Field(default_factory=dict)
    """Judgments by status (`ok`, `partial`, `unparsed`)."""
    by_kind: dict[str, int] = Field(default_factory=dict)
    """Judgments by kind (`sampled`, `contrast`, `revision`)."""
    check_decided: int = 0
    """Judgments the principles' checks decided (their outcomes differed)."""
    check_agreement: Rate | None = None
    """Of the check-decided pairs the LLM judge was asked about too (`judge.checks: probe`) and decided,
    the share where it agreed with the checks: a ground-truth estimate of the judge; None without probes."""


# --- universal probes (rlaif.pipeline.probes) ---------------------------------------------------------


class ProbeTally(Report):
    """How the judge did on probes of one kind (or all of them): each probe's better answer is known."""

    judged: int = 0
    """Probes stored with their verdicts (unparsed ones included)."""
    right: int = 0
    """Both orders (or the one that parsed) preferred the known better answer."""
    wrong: int = 0
    """They preferred the spoiled answer."""
    ties: int = 0
    """The two orders disagreed, or P was exactly 0.5: no preference (counts half in `accuracy`)."""
    unparsed: int = 0
    """No order parsed: left out of `accuracy` (never right or wrong)."""
    accuracy: Rate | None = None
    """(right + ties / 2) / (right + wrong + ties), with its Wilson 95% interval; n/a without a verdict."""
    not_built: dict[str, int] = Field(default_factory=dict)
    """Probes that could not be built, by reason (an empty answer, one too short to cut, ...)."""


class ProbeReport(ProbeTally):
    """The universal probes of a run (`judge.probes`): pairs whose better answer is known without any
    check, judged like any pair, never exported."""

    share: float
    """The configured share of prompts probed."""
    prompts: int = 0
    """Prompts drawn for probing."""
    by_kind: dict[str, ProbeTally] = Field(default_factory=dict)
    """The same tally per probe kind (`padded`, `off_topic`, `truncated`, `repetition`)."""

    def per_kind(self) -> str:
        """One line: each kind's accuracy and its denominator ("padded 50.0% of 10, ...")."""
        shown = []
        for kind, tally in self.by_kind.items():
            value, n = (tally.accuracy.value, tally.accuracy.n) if tally.accuracy else (None, 0)
            shown.append(f"{kind} {percent(value)} of {n}" + (f" ({tally.ties} ties)" if tally.ties else ""))
        return ", ".join(shown)


class RunSummary(Report):
    """What `rlaif run` (or one stage command) did; printed at the end and saved as `summary.json`."""

    run_dir: str
    """The run directory."""
    constitution: str
    """The constitution's name."""
    model: str | None
    """The policy model (folder, served name, or the bundled model's name)."""
    judge_model: str | None
    """The judge model; "same as policy" when the policy judges."""
    templates: dict[str, str] = Field(default_factory=dict)
    """Template name -> hash of its source."""
    counts: RunCounts
    """Records of the current inputs."""
    stages: dict[str, StageReport] = Field(default_factory=dict)
    """What each generation stage of this invocation did."""
    judge: JudgeSummary
    """Judge metrics over the current judgments."""
    skipped: dict[str, int] = Field(default_factory=dict)
    """Pairs not made, by reason (no readable verdict, a tie, identical responses, an unchanged revision)."""
    quality: QualityReport | None = None
    """Filters and gates of the export; None when this invocation did not export."""
    server_restarts: int | None = None
    """Restarts of a managed server that died during generation; None when nothing was generated."""
    trained: dict[str, TrainSummary] = Field(default_factory=dict)
    """Trainer name -> what it did, in training order."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time per part (generation, each trainer, total)."""
    peak_rss_gib: float | None = None
    """Peak memory of the whole process tree (the managed server included)."""
    files: dict[str, str] = Field(default_factory=dict)
    """Where the outputs are."""
    probes: ProbeReport | None = None
    """The judge's accuracy on the universal probes; None when the judge was off or nothing was probed."""


# --- quality gates and filters -----------------------------------------------------------------------


class Gate(Report):
    """One quality gate on the data trainers would read."""

    name: str
    """What is measured."""
    value: float | None
    """The measured value; None when it could not be measured."""
    threshold: float | None
    """The configured limit; None when the gate is off."""
    at_least: bool
    """True: the value must be at least the threshold; False: at most."""
    applies: bool
    """Whether the gate judges this run's training data (a judge gate does not when no judge pair trains)."""
    passed: bool | None
    """True or False where the gate applies; None where it does not."""
    note: str = ""
    """Why the gate does not apply, when it does not."""
    fix: str = ""
    """What to do when it fails."""

    def message(self) -> str:
        """One line: the value, the threshold and what to do."""
        shown = (lambda v: str(int(v))) if self.name == "pairs" else percent
        relation = "below the least" if self.at_least else "above the most"
        return f"{self.name} {shown(self.value)} is {relation} allowed ({shown(self.threshold)}): {self.fix}"


class QualityReport(Report):
    """What the export let through and whether it may be trained on."""

    sources: list[str]
    """The pair sources the trainers read (`check`, `judge`, `revision`)."""
    candidates: dict[str, int] = Field(default_factory=dict)
    """Candidate pairs by source (everything in pairs.jsonl for the current inputs)."""
    kept: dict[str, int] = Field(default_factory=dict)
    """Pairs the filters let through, by source."""
    exported: dict[str, int] = Field(default_factory=dict)
    """Exported rows by source (after human review drops ties and flags)."""
    dropped: dict[str, int] = Field(default_factory=dict)
    """Dropped candidate pairs by filter (see export/dropped.jsonl)."""
    flagged: dict[str, int] = Field(default_factory=dict)
    """Exported revision pairs whose revision newly fails a check its original passed, by check (kept;
    the export row's `flags` column names them)."""
    gates: list[Gate] = Field(default_factory=list)
    """Every gate, applying or not."""
    passed: bool
    """Whether every gate that applies passed."""
    forced: bool = False
    """True when a gate failed and training went ahead anyway (`--force`)."""
    warnings: list[str] = Field(default_factory=list)
    """Figures that say some data is noise even where no gate applies (e.g. a judge at chance whose pairs
    were all dropped)."""

    def failures(self) -> list[str]:
        """One line per failed gate."""
        return [g.message() for g in self.gates if g.passed is False]


# --- compliance ----------------------------------------------------------------------------------


class PassRate(Rate):
    """How often answers passed a check: `value` of the `n` answers whose check decided."""

    passed: int
    """Answers that passed."""
    errors: int = 0
    """Answers whose check errored (counted apart, never a pass or a fail)."""


class PrincipleCompliance(Report):
    """A checkable principle (or every check at once) before and after training."""

    principle_id: str
    """The principle, or "every check" for answers that passed all of them."""
    rules: str
    """The check's rules as written."""
    base: PassRate
    """The base policy's pass rate."""
    candidate: PassRate
    """The trained policy's pass rate."""
    difference: float | None
    """candidate rate - base rate."""
    difference_ci95: tuple[float, float] | None
    """Newcombe's 95% interval of the difference; above 0 means the candidate complies more often."""


class ComplianceExample(Report):
    """One held-out prompt answered by both models."""

    prompt: str
    """The prompt's last user turn."""
    base: str
    """The base model's answer."""
    candidate: str
    """The trained model's answer."""
    base_failed: list[str]
    """Principles whose check the base answer failed."""
    candidate_failed: list[str]
    """Principles whose check the trained answer failed."""


class ComplianceReport(Report):
    """`rlaif evaluate compliance`: checkable principles, base against candidate, on held-out prompts."""

    constitution: str
    """The constitution whose checks were run."""
    base: str
    """Base model folder."""
    candidate: str
    """Trained model folder."""
    prompts_path: str
    """The held-out prompt file."""
    prompts: int
    """Prompts used."""
    prompts_seen_in_training: int
    """Of those, prompts also in the run's prompt set (0 for a true held-out set)."""
    samples: int
    """Answers per prompt and model."""
    temperature: float
    """Sampling temperature."""
    max_tokens: int
    """Answer length limit (tokens)."""
    engine: str
    """How answers were sampled (transformers or vllm)."""
    principles: list[PrincipleCompliance]
    """One row per checkable principle, then "every check"."""
    lengths: LengthComparison
    """Answer lengths of both (a length limit is easy to meet by saying nothing)."""
    kl: KLEstimate | None = None
    """KL(candidate ‖ base) on the candidate's samples (nats); None when not estimated."""
    examples: list[ComplianceExample] = Field(default_factory=list)
    """A few answers before and after (first those where training fixed a failing check)."""
    warnings: list[str] = Field(default_factory=list)
    """What to distrust: a shrinking answer length, a difference that is not significant."""
    monitors: MonitorReadings | None = None
    """Reward-hacking monitors (`train.monitors`) on the candidate's answers; length drift from the base's."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time of generation, the KL estimate and the whole evaluation."""
    plot: str | None = None
    """The bar chart (PNG), when written."""


# --- checks ------------------------------------------------------------------------------------------


class CheckBenchPrinciple(Report):
    """One principle's check in the check benchmark."""

    principle_id: str
    """The principle."""
    rules: list[str]
    """The rules measured (python rules are left out)."""
    pass_rate: float | None
    """Share of the mix's responses that passed; None when every one was a check error."""
    check_errors: int
    """Responses on which the check could not decide (a regular expression timed out, say)."""


class CheckBenchReport(Report):
    """How fast a constitution's declarative check rules run (`rlaif constitution bench`): a measurement
    on this machine, not a timed test."""

    constitution: str
    """The constitution's name."""
    constitution_hash: str
    """Its content hash."""
    responses: int
    """Responses in the mix; each is checked under every measured principle."""
    mix: dict[str, int]
    """Responses of each kind in the mix (plain, long, canned opener, link, list, json, unicode, ...)."""
    principles: list[CheckBenchPrinciple]
    """The principles measured."""
    left_out: list[str] = Field(default_factory=list)
    """What was not measured and why (python rules run the user's own code, at its own speed)."""
    repeats: int
    """Timed passes over the whole mix, after one untimed warm-up pass."""
    seconds: list[float]
    """Wall time of each timed pass."""
    target_per_second: float = 10_000
    """The rate the checks are meant to reach on a 2-core CPU machine."""
    machine: str = ""
    """Where it was measured (platform, CPU count, Python)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def responses_per_second(self) -> float | None:
        """Responses per second over the median pass, each checked under every measured principle."""
        median = _median(self.seconds)
        return self.responses / median if median else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checks_per_second(self) -> float | None:
        """(response, principle) checks per second over the median pass."""
        rate = self.responses_per_second
        return None if rate is None else rate * len(self.principles)


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --- judge evaluation --------------------------------------------------------------------------------


class CalibrationBin(Report):
    """Labelled rows whose predicted probability falls in [low, high)."""

    low: float
    """Lower edge of the bin."""
    high: float
    """Upper edge (exclusive, except 1.0 in the last bin)."""
    n: int
    """Rows in the bin (one point per row)."""
    mean_p: float | None
    """Mean predicted probability in the bin; None when it is empty."""
    observed: float | None
    """Share of the bin's rows whose predicted event happened; None when it is empty."""


class Calibration(Report):
    """How often the judge's soft labels come true: one point per labelled row."""

    label: str
    """What each row's predicted probability is, and when it counts as having come true."""
    points: int
    """Rows with a label: one point each."""
    ece: float | None
    """Expected calibration error over 10 equal-width bins; None without labelled rows."""
    brier: float | None
    """Brier score of the points; a constant 0.5 scores 0.25 (no signal), lower is better."""
    bins: list[CalibrationBin] = Field(default_factory=list)
    """The reliability bins."""
    plot: str | None = None
    """The reliability plot (PNG), when one was written."""


class LabelledDataInfo(Report):
    """The labelled file an evaluation read."""

    path: str
    """The file."""
    format: str
    """`hh-rlhf` transcripts or `prompt-chosen-rejected` rows."""
    rows: int
    """Rows read (after `--limit`)."""
    prefix_mismatch_lines: list[int] = Field(default_factory=list)
    """Lines of hh-rlhf rows whose two transcripts differ before the last Assistant turn."""
    empty_chosen: int = 0
    """Rows whose chosen reply is empty."""
    empty_rejected: int = 0
    """Rows whose rejected reply is empty."""
    principle_rows: int = 0
    """Rows that name their principle (`principle_id`) and are judged under it."""


class ParseCounts(Report):
    """Verdicts that gave no label."""

    unparsed_orders: int = 0
    """Presentation orders whose answer did not parse."""
    error_orders: int = 0
    """Presentation orders whose request failed."""
    rows_without_label: int = 0
    """Rows with no parsed verdict in any order (left out of every rate)."""


class JudgeEvaluation(Report):
    """`rlaif evaluate judge`: how often the judge (or a baseline) agrees with human labels.

    Every rate counts a tie (a label of exactly 0.5) as half an agreement, as RewardBench and FastChat
    do; rows without a label are left out and counted in `parse`. With no decided row the agreement
    is None ("n/a") and the command exits with status 1.
    """

    judge: str = ""
    """The judge model's label, or `baseline:NAME`."""
    baseline: str | None = None
    """The baseline answering instead of a model, if any."""
    mode: str | None = None
    """Judge mode (logprob, cot, pointwise); None for a baseline."""
    seed: int = 0
    """Seed of positions, principle draws and requests."""
    n: int
    """Rows evaluated."""
    agreement: float | None
    """Headline agreement with the human label (two orders averaged when both were judged), a tie counting
    half, over the rows with a label; None when no row was decided."""
    agreement_ci95: tuple[float, float] | None
    """Wilson 95% interval of `agreement`."""
    agreement_method: str
    """How the headline label was formed (one order, or two orders averaged) and how ties count."""
    agreement_one_order: Rate
    """Agreement of the first presentation order alone (a tie counting half)."""
    agreement_two_orders: Rate | None
    """Agreement of the two-order averaged label (a tie counting half); None when one order was judged."""
    agreement_decisive: Rate
    """Agreement over decided rows only (ties left out)."""
    ties: int
    """Rows whose label is exactly 0.5."""
    decided: int
    """Rows whose label prefers one response (not a tie, not unparsed)."""
    order_consistency: Rate | None
    """Rows whose two orders prefer the same response, of those with both orders parsed."""
    same_position_rate: Rate | None
    """Rows whose two orders both prefer the same position (A twice or B twice)."""
    first_order_picks_a: Rate
    """Decided first-order verdicts that pick position A."""
    parse: ParseCounts
    """Verdicts that gave no label."""
    per_principle: dict[str, Rate] = Field(default_factory=dict)
    """Principle id → agreement of the rows judged under that fixed principle (`principle_id` in the row);
    rows whose principle was sampled are not counted here."""
    calibration: Calibration
    """Calibration of the soft labels, one point per row."""
    flagged_rows: int = 0
    """Rows with a candidate flagged as a prompt injection."""
    warnings: list[str] = Field(default_factory=list)
    """Why a figure may be noise: no decided row, order-consistency < 50%, same-position rate > 80%."""
    data: LabelledDataInfo | None = None
    """The labelled file."""
    seconds: float | None = None
    """Wall time of judging (server start-up excluded)."""
    startup_seconds: float | None = None
    """Wall time of starting (or connecting to) the judge's server; None for a baseline."""
    engine: str | None = None
    """`vLLM server` or `ray.data.llm`; None for a baseline."""
    judge_config: dict[str, Any] | None = None
    """The judge settings (`judge:` of the config, without its model)."""
    constitution: str | None = None
    """The constitution the principles come from."""
    orders_parsed: int | None = None
    """Presentation orders whose verdict parsed."""
    judgments_file: str | None = None
    """Where the judgments are stored (a rerun resumes from it)."""
    judgments_stored_before: int | None = None
    """Judgments found stored from an earlier run (> 0: resumed; `seconds` covers only the rest)."""


# --- attacks -----------------------------------------------------------------------------------------


class AttackOutcome(Report):
    """One attack under one defence setting."""

    judged: int
    """Pairs whose clean and attacked verdicts both parsed."""
    clean_losses: int
    """Of those, pairs whose clean verdict went against the attacked (rejected) response."""
    flips: int
    """Of those, pairs whose attacked verdict went for it."""
    flip_rate: float | None
    """flips / clean_losses; None without clean losses."""
    win_rate_clean: float | None
    """Share of judged pairs the rejected response wins clean, a tie counting half; None when none judged."""
    win_rate_attacked: float | None
    """The same once attacked."""
    mean_shift: float | None
    """Mean change of P(attacked response is better) from clean to attacked."""


class AttackResult(Report):
    """One attack, with the defences on and off."""

    defences_on: AttackOutcome | None = None
    """With the defended template (per-run delimiters, the question after the candidates)."""
    defences_off: AttackOutcome | None = None
    """With the plain template."""
    flagged: float | None = None
    """Share of attacked responses the injection flagger caught."""


class AttackReport(Report):
    """`rlaif evaluate attacks`: can a response talk the judge into preferring it?"""

    judge: str = ""
    """The judge model's label."""
    pairs: int
    """Labelled pairs attacked."""
    attacks: dict[str, AttackResult] = Field(default_factory=dict)
    """Attack name → its flip rates."""
    clean_flagged: float | None = None
    """Share of clean responses the injection flagger caught (false alarms)."""


# --- win rate and compliance -------------------------------------------------------------------------


class WinTally(Report):
    """Wins, losses and ties of the candidate, and its win rate (a tie counting half)."""

    n: int
    """Prompts counted (unjudged ones and, with `inconsistent: drop`, disagreeing ones left out)."""
    wins: int
    """Prompts where P(candidate better) > 0.5."""
    losses: int
    """Prompts where it is < 0.5."""
    ties: int
    """Prompts where it is exactly 0.5."""
    unjudged: int
    """Prompts with no parsed verdict (left out)."""
    orders_disagreed: int
    """Prompts whose two orders preferred different answers."""
    inconsistent: str
    """How those were counted: `keep` (their average), `drop` or `tie`."""
    win_rate: float | None
    """(wins + ties / 2) / n; None ("n/a") when no prompt was decided."""
    ci: tuple[float, float] | None
    """Wilson interval of `win_rate` at `confidence`; None with it."""
    confidence: float
    """Level of `ci`."""
    mean_p_candidate: float | None
    """Mean P(candidate better) over the prompts counted."""


class LengthStats(Report):
    """Answer lengths of one model."""

    n: int
    """Answers."""
    tokens_mean: float | None = None
    """Mean tokens per answer."""
    tokens_median: float | None = None
    """Median tokens per answer."""
    tokens_p90: int | None = None
    """90th percentile of tokens per answer."""
    words_mean: float | None = None
    """Mean words per answer."""
    cut_off: float | None = None
    """Share of answers cut off at the token limit."""


class MonitorReadings(Report):
    """The reward-hacking monitors on one set of answers (`train.monitors`): a training step's
    rollouts, or an evaluated model's answers. Each rate states its denominator; None is "n/a"."""

    answers: int
    """Answers measured."""
    length_mean: float | None
    """Mean answer length (words)."""
    length_p95: float | None
    """95th percentile of the answer length (words)."""
    length_drift: float | None = None
    """Mean length over the reference's (the first step, or the base model) minus 1; None without one."""
    refusal_rate: Rate
    """Answers matching a refusal pattern, of all answers."""
    repetition_rate: float | None
    """Mean share of repeated word 4-grams per answer (0 for prose, near 1 for a loop)."""
    format_rate: Rate
    """Answers with a list or a header, of the answers whose prompt did not ask for one."""
    sycophancy_rate: Rate | None = None
    """Probe answers agreeing with the user's false claim, of the probes; None when not probed."""
    kl_by_tag: dict[str, float] = Field(default_factory=dict)
    """Mean sequence KL to the start model per prompt tag (domain), when prompts carry tags."""
    alerts: list[str] = Field(default_factory=list)
    """One line per monitor past its threshold."""


class LengthComparison(Report):
    """Answer lengths of base and candidate: a judge that likes long answers can be won by verbosity."""

    base: LengthStats
    """The base model's answers."""
    candidate: LengthStats
    """The candidate's answers."""
    drift_tokens: float | None
    """Mean candidate tokens minus mean base tokens."""


class KLEstimate(Report):
    """KL(candidate ‖ base) on the candidate's own samples."""

    per_token: float | None
    """Total log-ratio over all answer tokens / their number; None without tokens."""
    per_answer: float | None
    """Mean over answers of each answer's summed log-ratio."""
    answers: int
    """Answers scored."""
    tokens: int
    """Answer tokens scored."""
    temperature: float
    """Sampling temperature the log-probabilities were taken at."""
    estimator: str
    """What was computed."""


class PromptSetInfo(Report):
    """The prompts a win rate was measured on."""

    path: str
    """The prompt file."""
    count: int
    """Prompts used."""
    overlap_with_training: int
    """Of those, prompts also in the config's (training) prompt set."""
    held_out: bool
    """True when none overlap."""


class SamplingSettings(Report):
    """How both models answered."""

    max_tokens: int
    """Answer length limit."""
    temperature: float
    """Sampling temperature."""
    top_p: float
    """Nucleus sampling threshold."""
    engine: str
    """`transformers` or `vllm`."""
    seed: int
    """Sampling seed."""


class WinRateRow(Report):
    """One prompt's answers and verdict."""

    prompt_id: str
    """The prompt."""
    base: str
    """The base model's answer."""
    candidate: str
    """The candidate's answer."""
    p_candidate: float | None
    """P(candidate better), averaged over both orders; None when nothing parsed."""
    orders_agree: bool | None
    """Whether the two orders preferred the same answer; None unless both parsed."""
    status: str
    """The judgment's status (`ok`, `partial`, `unparsed`)."""


class WinRateReport(Report):
    """`rlaif evaluate winrate`: is the trained policy better than its base, by the judge, at what cost?"""

    base: str
    """Base model folder (or hub id)."""
    candidate: str
    """Candidate model folder."""
    judge: str
    """The judge model's label."""
    judge_mode: str
    """Judge mode."""
    prompts: PromptSetInfo
    """The prompts."""
    sampling: SamplingSettings
    """How the answers were sampled."""
    win_rate: WinTally
    """The win rate, disagreeing orders handled as `judge.inconsistent` says."""
    win_rate_strict: WinTally
    """The win rate with every prompt whose orders disagree counted as a tie."""
    order_consistency: Rate | None = None
    """Prompts whose two orders prefer the same answer, of those with both orders parsed."""
    same_position_rate: Rate | None = None
    """Prompts whose two orders both prefer the same position."""
    warnings: list[str] = Field(default_factory=list)
    """Why the win rate may be noise: no decided prompt, order-consistency < 50%, same-position > 80%."""
    lengths: LengthComparison
    """Answer lengths."""
    kl: KLEstimate
    """KL(candidate ‖ base)."""
    monitors: MonitorReadings | None = None
    """Reward-hacking monitors (`train.monitors`) on the candidate's answers; length drift from the base's."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time per part (generate, kl, judge_startup, judge, total)."""
    plot: str | None = None
    """The chart (PNG), when written."""
    rows: list[WinRateRow] = Field(default_factory=list)
    """Every prompt's answers and verdict."""


# --- human review ------------------------------------------------------------------------------------


class AIAgreement(Report):
    """People against the AI judge on reviewed pairs (a fixed A/B orientation per pair)."""

    pairs: int
    """Pairs with a non-flag decision."""
    decisions: int
    """Decisions, flags included."""
    agree: int
    """Decisions that pick the AI's chosen answer."""
    disagree: int
    """Decisions that pick the other answer."""
    ties: int
    """Decisions that call it a tie."""
    flags: int
    """Decisions that flag the pair as broken (left out of accuracy and kappa)."""
    accuracy: float | None
    """Share of decisive verdicts (not tie, not flag) that pick the AI's answer; None without any."""
    kappa: float | None
    """Cohen's kappa of AI (A/B) against people (A/B/tie); None when undefined."""
    tie_rate: float | None
    """ties / decisions."""
    flag_rate: float | None
    """flags / decisions."""
    accuracy_ci: tuple[float, float] | None = None
    """Bootstrap interval of `accuracy` (resampling pairs); None without a bootstrap or when undefined."""
    kappa_ci: tuple[float, float] | None = None
    """Bootstrap interval of `kappa`."""


class CohenAgreement(Report):
    """Two reviewers on the pairs they both decided (their standing decisions)."""

    pairs: int
    """Shared pairs."""
    agree: int = 0
    """Shared pairs with the same verdict (both tie, or both flag, counts as the same)."""
    raw_agreement: float | None
    """`agree` / `pairs`: a tie against a pick is a disagreement."""
    decisive: int = 0
    """Shared pairs where both picked an answer (neither said tie or flag)."""
    decisive_agree: int = 0
    """Of those, pairs where both picked the same answer."""
    decisive_agreement: float | None = None
    """`decisive_agree` / `decisive`; None when no pair was decided by both."""
    ties: int = 0
    """Shared pairs where at least one of the two said tie (left out of `decisive`)."""
    flags: int = 0
    """Shared pairs where at least one of the two flagged the pair (left out of `decisive`)."""
    kappa: float | None
    """Cohen's kappa over A/B/tie/flag; None when undefined (both always gave one same verdict)."""
    kappa_ci: tuple[float, float] | None = None
    """Bootstrap interval of `kappa`."""


class FleissAgreement(Report):
    """Three or more reviewers."""

    pairs: int
    """Pairs with two or more reviewers."""
    kappa: float | None
    """Fleiss' kappa over A/B/tie/flag."""
    kappa_ci: tuple[float, float] | None = None
    """Bootstrap interval of `kappa`."""


class ReviewerAgreement(Report):
    """Agreement between people."""

    reviewers: list[str]
    """Reviewers with a standing decision, sorted."""
    cohen: dict[str, CohenAgreement] = Field(default_factory=dict)
    """`first | second` → their agreement."""
    fleiss: FleissAgreement | None = None
    """With three or more reviewers."""


class GateStatus(Report):
    """The human-review gate (`review.gate`) before training."""

    passed: bool
    """Whether training may start."""
    metric: str
    """`accuracy` or `kappa`."""
    value: float | None
    """The metric's value; None when undefined."""
    pairs: int
    """Reviewed pairs it rests on."""
    min_agreement: float
    """Least value that passes."""
    min_reviewed: int
    """Least number of reviewed pairs."""
    reasons: list[str] = Field(default_factory=list)
    """Why it failed, one line each."""


class BootstrapSettings(Report):
    """How the intervals were computed."""

    bootstrap: int
    """Bootstrap resamples."""
    confidence: float
    """Interval level."""
    seed: int
    """Seed of the resampling."""


class AIvsHuman(Report):
    """AI-human agreement overall and per principle."""

    overall: AIAgreement
    """Over every reviewed pair."""
    by_principle: dict[str, AIAgreement] = Field(default_factory=dict)
    """Principle id → over the pairs judged under it."""
    by_reviewer: dict[str, AIAgreement] = Field(default_factory=dict)
    """Reviewer → over that reviewer's decisions (who agrees with the judge, who does not)."""


class AgreementReport(Report):
    """`rlaif review report`: AI-human and reviewer agreement, and the gate; saved as `review_report.json`."""

    generated_at: str
    """When (UTC, ISO 8601)."""
    settings: BootstrapSettings
    """How the intervals were computed."""
    reviewers: dict[str, int] = Field(default_factory=dict)
    """Reviewer → standing decisions."""
    pairs_reviewed: int
    """Pairs with at least one standing decision."""
    ai_vs_human: AIvsHuman
    """People against the AI judge."""
    between_reviewers: ReviewerAgreement
    """People against each other."""
    gate: GateStatus | None = None
    """The gate; None when none is configured."""


# --- benchmarks --------------------------------------------------------------------------------------


class Hardware(Report):
    """What a benchmark was measured on."""

    machine: str
    """CPU architecture."""
    cpus: int | None
    """CPU count."""
    python: str
    """Python version."""
    device: str
    """The first CUDA device's name, or `cpu`."""
    vllm: str
    """The installed vLLM version."""


class BenchMeasurement(Report):
    """One timed batch of requests on a fresh server (`rlaif bench`)."""

    name: str
    """What was measured (a stage, its raw replay, or the pipeline)."""
    requests: int
    """Requests sent."""
    seconds: float
    """Wall time."""
    prompt_tokens: int
    """Prompt tokens, as the server counted them."""
    completion_tokens: int
    """Generated tokens (0 for the pipeline: not counted)."""
    prefix_cache_hit_rate: float | None
    """Share of queried prompt tokens served from vLLM's prefix cache; None when none were queried."""
    ratio_to_raw: float | None = None
    """A stage's raw ceiling time / its time (1.0 = as fast as the ceiling); for a chained stage the ceiling
    in chain order."""
    ratio_to_raw_all_at_once: float | None = None
    """A chained stage's all-at-once replay time / its time."""
    pairs_per_hour: float | None = None
    """The pipeline's preference pairs per hour."""
    generation_seconds: float | None = None
    """The pipeline's generation time (server start excluded)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_second(self) -> float:
        """completion_tokens / seconds."""
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def requests_per_second(self) -> float:
        """requests / seconds."""
        return self.requests / self.seconds if self.seconds else 0.0


class JudgeThroughput(Report):
    """What two-order judging cost in `rlaif bench`."""

    two_vs_one_order_time: float
    """Two-order judge time / one-order judge time."""
    two_vs_one_order_prompt_tokens: float
    """Two-order prompt tokens / one-order prompt tokens (each order's tokens counted)."""
    judge_calls_per_second: float
    """Judge requests per second, both orders."""
    pairs_per_hour: float
    """Judged pairs per hour, both orders."""


class GenerationBench(Report):
    """`rlaif bench`: every generation stage against raw vLLM on the same requests."""

    hardware: Hardware
    """What it ran on."""
    prompts: int
    """Prompts in the config's set."""
    concurrency: int
    """The client's concurrency limit."""
    measurements: list[BenchMeasurement] = Field(default_factory=list)
    """Every measurement, in order."""
    judge: JudgeThroughput
    """Two-order against one-order judging."""
    peak_rss_gib: float
    """Peak memory of the process tree (the servers included)."""


class TrainerMeasurement(Report):
    """One trainer run by `rlaif train bench`, in its own process; or why it failed."""

    steps: int | None = None
    """Optimizer steps taken."""
    seconds: float | None = None
    """Wall time of training."""
    step_seconds: list[float] = Field(default_factory=list)
    """Wall time of each step."""
    seconds_per_step: float | None = None
    """Median step time after the first (warm-up) step."""
    seconds_per_step_mean: float | None = None
    """Mean step time after the first step."""
    losses: list[float] = Field(default_factory=list)
    """Logged training losses."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Trainer-specific results."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Settings the bench chose itself (PPO's batch sizes)."""
    threads: int | None = None
    """Torch threads the process used, when it reported them."""
    peak_rss_gib: float | None = None
    """Peak RSS of the training process."""
    peak_tree_gib: float | None = None
    """Peak memory of its process tree."""
    wall_seconds: float | None = None
    """Wall time of the whole process (loading and saving included)."""
    error: str | None = None
    """Why it failed (`exit code N`); None when it ran."""
    log_tail: list[str] = Field(default_factory=list)
    """The last lines of its log, when it failed."""


class TrainerComparison(Report):
    """rlaif's trainer against the plain TRL script on the same data and settings."""

    rlaif_seconds_per_step: float
    """Median of rlaif's runs' seconds per step."""
    plain_trl_seconds_per_step: float
    """Median of plain TRL's."""
    ratio: float
    """rlaif / plain TRL."""
    within_5_percent: bool
    """Whether the ratio is within 5% of 1."""


class TrainBench(Report):
    """`rlaif train bench`: seconds per step and peak memory of every trainer, beside plain TRL."""

    hardware: Hardware
    """What it ran on."""
    steps: int
    """Optimizer steps per measurement."""
    threads: int | None
    """Torch threads (None: torch's default)."""
    repeats: int
    """Measurements per trainer."""
    export: str
    """The export folder trained on."""
    model: str
    """The start model."""
    trainers: dict[str, list[TrainerMeasurement]] = Field(default_factory=dict)
    """Trainer → rlaif's measurements."""
    plain_trl: dict[str, list[TrainerMeasurement]] = Field(default_factory=dict)
    """Trainer → plain TRL's measurements."""
    comparison: dict[str, TrainerComparison] = Field(default_factory=dict)
    """Trainer → rlaif against plain TRL."""


class TokenCounts(Report):
    """Prompt tokens of one-order and two-order judging, the shared prefix counted once."""

    pairs: int
    """Pairs counted."""
    shared_tokens_S: int
    """S: tokens both orders share (instructions, principle, conversation)."""
    rest_tokens_R: int
    """R: one order's tokens after the shared prefix."""
    one_order_tokens: int
    """Prompt tokens of one order."""
    two_order_tokens: int
    """Prompt tokens of two orders, the shared prefix counted once."""
    token_ratio: float | None
    """(S + 2R) / (S + R); None without tokens."""
    block_ratio: float | None
    """The same with S rounded down to whole KV-cache blocks (what the prefix cache can reuse)."""
    block: int
    """KV-cache block size in tokens."""


class JudgeCostRun(Report):
    """One timed judging run on a fresh server."""

    measurement: str
    """one-order, two-order or cot-one-order."""
    repeat: int
    """Which repeat."""
    seconds: float
    """Wall time of judging (server start and warm-up excluded)."""
    ok: int
    """Judgments with every verdict parsed."""
    prefix_cache_hit_tokens: int
    """Prompt tokens served from the prefix cache."""
    prefix_cache_query_tokens: int
    """Prompt tokens looked up in it."""


class JudgeCostBench(Report):
    """`rlaif evaluate judge-cost`: what two-order judging costs against one order, and chain of thought."""

    model: str
    """The judge model's folder."""
    tokens: TokenCounts
    """Token arithmetic."""
    runs: list[JudgeCostRun] = Field(default_factory=list)
    """Every run, in order."""
    mean_seconds: dict[str, float] = Field(default_factory=dict)
    """Measurement → mean seconds over its repeats."""
    prefix_cache_hit_rate: dict[str, float | None] = Field(default_factory=dict)
    """Measurement → hit tokens / queried tokens over its repeats."""
    wall_ratio: float | None = None
    """Two-order / one-order mean seconds."""
    wall_over_token_ratio: float | None = None
    """wall_ratio / token_ratio."""
    within_10_percent: bool | None = None
    """Whether wall_ratio is within 10% of the token ratio."""
    cot_one_order_over_two_order: float | None = None
    """One-order chain of thought / two-order one-token, mean seconds."""


class ScalePoint(Report):
    """One prompt count of `rlaif bench-scale`: the raw client and the pipeline on the same stub server."""

    prompts: int
    """Prompts in the set."""
    raw_requests: int
    """Requests the raw `openai` client sent (the pipeline's mix: per prompt, 4 chat and 2 judge requests;
    for at most `RAW_PROMPTS` prompts: the raw client's rate does not depend on the size of the set)."""
    raw_requests_per_second: float
    """Its requests/s: the ceiling a client reaches at this concurrency."""
    raw_cpu_ms_per_request: float
    """Its CPU time per request (the client process only)."""
    pipeline_requests: int
    """Requests `rlaif run` sent (counted by the stub)."""
    pipeline_seconds: float
    """Wall time of the run's generation (respond, revise, judge), start-up and export excluded."""
    pipeline_requests_per_second: float
    """pipeline_requests / pipeline_seconds."""
    ratio_to_raw: float
    """pipeline_requests_per_second / raw_requests_per_second."""
    pipeline_cpu_ms_per_request: float
    """CPU time of the `rlaif run` process per request (start-up, export and summary included)."""
    peak_rss_mib: float
    """Peak resident memory of the `rlaif run` process."""
    resume_seconds: float
    """Wall time of rerunning the finished run (every id stored: nothing sent), whole process."""
    resume_requests: int
    """Requests the rerun sent (0 when resume works)."""
    resume_share: float | None = None
    """resume_seconds / pipeline_seconds: what resuming a finished run costs against generating it."""
    records: int | None = None
    """Records in the run's stage files (responses, revision steps, revisions, judgments, pairs)."""


class ServersPoint(Report):
    """`rlaif run` against N stub servers at once (`model.base_urls`): where one client's CPU is the limit."""

    servers: int
    """Stub servers listed in `base_urls`, each its own process."""
    prompts: int
    requests: int
    """Requests the servers answered, all of them together."""
    requests_per_second: float
    """requests / generation seconds."""
    cpu_ms_per_request: float
    """CPU time of the `rlaif run` process per request."""
    client_cores: float
    """CPU seconds of the `rlaif run` process over its wall seconds: 1.0 is one core busy all the time."""


class ScaleBench(Report):
    """`rlaif bench-scale`: client throughput and memory by prompt count, against a zero-latency stub."""

    concurrency: int
    """Requests in flight, for the raw client and the pipeline alike."""
    points: list[ScalePoint] = Field(default_factory=list)
    """One per prompt count, in order."""
    cpus: int | None = None
    """CPU count of the machine."""
    platform: str = ""
    """Where it ran."""
    rss_bytes_per_prompt: float | None = None
    """Slope of peak RSS between the smallest and the largest prompt count."""
    rss_bytes_per_record: float | None = None
    """The same slope per stored record: what a record still costs in memory (its index entry and the
    prompt it belongs to)."""
    servers: list[ServersPoint] = Field(default_factory=list)
    """The same run against 1, 2, ... stub servers (`--servers`)."""


# --- authoring constitutions (`rlaif constitution lint/preview/test/compare`, `rlaif evaluate audit`) ---


class LintWarning(Report):
    """One finding of `rlaif constitution lint`."""

    rule: str
    """The rule that found it (`judge-question`, `context`, `near-duplicate`, `no-judge-question`,
    `rarely-sampled`, `tag-once`, `example-check`)."""
    file: str
    """The constitution file."""
    line: int | None
    """1-based line of what the warning is about; None where the file format has no lines for it."""
    principle_id: str | None = None
    """The principle it is about, if any."""
    message: str
    """What is wrong and what to do about it."""


class LintReport(Report):
    """`rlaif constitution lint`: warnings about a constitution that loads but may not work as meant."""

    file: str
    """The constitution file."""
    constitution: str
    """Its name and version."""
    principles: int
    """Principles checked."""
    max_context: int
    """The context budget in tokens the prompts were measured against."""
    tokens: str
    """How tokens were counted: the model's tokenizer (named) or an estimate (stated as one)."""
    warnings: list[LintWarning] = Field(default_factory=list)
    """What was found, in file order."""


class PromptPart(Report):
    """One part of a rendered request and its size."""

    label: str
    """What the part is (system prompt, few-shot example 1, conversation, answer, critique request, ...)."""
    role: str
    """The chat role of its messages."""
    text: str
    """The text exactly as the model receives it (several messages joined by blank lines)."""
    tokens: int
    """Its tokens (`PreviewReport.tokens` says how they were counted)."""


class PreviewRequest(Report):
    """One request of a principle, rendered as the pipeline renders it."""

    name: str
    """critique, revision, judge (A first) or judge (B first)."""
    messages: list[dict[str, str]]
    """The chat messages exactly as sent."""
    parts: list[PromptPart]
    """The messages grouped into named parts, with their token counts."""
    tokens: int
    """Tokens of the whole request with the chat template applied (what fills the context)."""
    cached_prefix_tokens: int | None = None
    """Tokens at its start shared with the request before it (the judge's first order for the second,
    the critique for the revision): the part vLLM's prefix cache can serve; None for the first request."""
    cached_share: float | None = None
    """cached_prefix_tokens / tokens."""


class PreviewReport(Report):
    """`rlaif constitution preview`: what the model sees for one principle."""

    constitution: str
    """Name and version."""
    principle_id: str
    """The principle shown."""
    tokens: str
    """How tokens were counted: the model's tokenizer (named) or an estimate (stated as one)."""
    max_context: int
    """The context budget the sizes are set against."""
    requests: list[PreviewRequest] = Field(default_factory=list)
    """Critique and revision (if the principle critiques), then the judge in both orders (if it judges)."""
    notes: list[str] = Field(default_factory=list)
    """What the preview left out or assumed (placeholder critique, prefix-cache block size, ...)."""


class PrincipleTrial(Report):
    """The judge under one fixed principle on a labelled set."""

    principle_id: str
    """The principle every row was judged under."""
    n: int
    """Rows judged."""
    agreement: Rate
    """Agreement with the human label (both orders averaged when judged, a tie counting half)."""
    order_consistency: Rate | None = None
    """Rows whose two orders agree; None when one order was judged."""
    same_position_rate: Rate | None = None
    """Rows where the judge picked the same position in both orders."""
    decisive: Rate
    """Rows with a label other than a tie (0.5) among those with a parsed label."""
    rows_without_label: int = 0
    """Rows with no parsed verdict in any order (left out of every rate)."""


class ConstitutionTrial(Report):
    """`rlaif constitution test`: each principle as the judge's only principle on the same labelled rows."""

    constitution: str
    """Name and version."""
    data: str
    """The labelled file."""
    rows: int
    """Labelled rows, each judged under every principle listed."""
    judge: str = ""
    """The judge model."""
    seed: int = 0
    """Seed of positions and requests (the same for every principle)."""
    principles: list[PrincipleTrial] = Field(default_factory=list)
    """One per principle tried, in constitution order."""
    seconds: float | None = None
    """Wall time of the judging."""
    warnings: list[str] = Field(default_factory=list)
    """Where a figure means the data is noise."""


class PairedDifference(Report):
    """The mean difference B - A of a per-row score, with a paired bootstrap interval over rows."""

    value: float | None
    """Mean of B's score minus A's over rows where both have one; None when none has."""
    n: int
    """Rows in the difference."""
    ci95: tuple[float, float] | None = None
    """Percentile bootstrap 95% interval, resampling rows (seeded); None with fewer than 2 rows."""
    resamples: int = 2000
    """Bootstrap resamples."""
    seed: int = 0
    """Bootstrap seed."""


class ConstitutionComparison(Report):
    """`rlaif constitution compare`: two constitutions judged on the same labelled rows and seeds."""

    a: str
    """Constitution A (name and version)."""
    b: str
    """Constitution B."""
    data: str
    """The labelled file."""
    rows: int
    """Labelled rows, judged under each constitution (principles sampled per row, as a run does)."""
    judge: str = ""
    """The judge model."""
    seed: int = 0
    """Seed of positions, principle draws and requests (the same for both)."""
    agreement_a: Rate
    """A's agreement with the human labels (a tie counting half)."""
    agreement_b: Rate
    """B's agreement."""
    difference: PairedDifference
    """B minus A in per-row agreement credit (1, 0.5 for a tie, 0), paired over rows."""
    common_principles: list[str] = Field(default_factory=list)
    """Principle ids both constitutions have."""
    disagreements_file: str | None = None
    """Where the rows on which the two differ most were written (JSONL)."""
    disagreeing_rows: int = 0
    """Rows whose labels fall on different sides of 0.5 under A and B."""
    seconds: float | None = None
    """Wall time of the judging."""
    notes: list[str] = Field(default_factory=list)
    """What the comparison cannot tell, and warnings where a figure means noise."""


class TraitShare(Report):
    """How often the chosen answer has more of one trait than the rejected one."""

    trait: str
    """The trait (`longer`, `refusal`, `list-formatting`, `hedging`, `politeness`, `passes CHECK`)."""
    chosen_more: Rate
    """Share of pairs where the chosen answer has more of it, among pairs where the two differ."""
    equal: int
    """Pairs where both have the same amount (left out of the share)."""


class TraitGroup(Report):
    """The traits of one group of pairs (all pairs, or those under one principle)."""

    group: str
    """`all`, or a principle id."""
    pairs: int
    """Pairs in the group."""
    traits: list[TraitShare] = Field(default_factory=list)
    """One per trait, in a fixed order."""


class AuditReport(Report):
    """`rlaif evaluate audit`: what a run's exported preference pairs reward, trait by trait."""

    run_dir: str
    """The run directory."""
    pairs_file: str
    """The export read (`export/pairs.jsonl`)."""
    pairs: int
    """Pairs read."""
    constitution: str | None = None
    """The constitution whose checks were run (name and version); None when none could be loaded."""
    traits: dict[str, str] = Field(default_factory=dict)
    """What each trait measures."""
    groups: list[TraitGroup] = Field(default_factory=list)
    """All pairs first, then one group per principle (a pair judged under several counts in each)."""
    chart: str | None = None
    """The PNG chart of the shares."""
    notes: list[str] = Field(default_factory=list)
    """What the audit left out or could not do, and warnings where a figure means noise."""
