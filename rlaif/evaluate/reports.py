"""The reports of the evaluations: the judge against human labels, attacks on it, win rate and
compliance of a trained policy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rlaif.reports import Rate, Report
from rlaif.train.reports import MonitorReadings

__all__ = [
    "AttackOutcome",
    "AttackReport",
    "AttackResult",
    "Calibration",
    "CalibrationBin",
    "ComplianceExample",
    "ComplianceReport",
    "JudgeEvaluation",
    "KLEstimate",
    "LabelledDataInfo",
    "LengthComparison",
    "LengthStats",
    "ParseCounts",
    "PassRate",
    "PrincipleCompliance",
    "PromptSetInfo",
    "SamplingSettings",
    "WinRateReport",
    "WinRateRow",
    "WinTally",
]


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


class CalibrationFit(Report):
    """A temperature map p' = sigmoid(logit(p) / T) from the judge's two-order P(A better) to how often it
    comes true, fitted by maximum likelihood on ground truth (`rlaif.evaluate.calibration`).

    One parameter keeps P(A) + P(B) = 1 whatever the order (Platt's intercept would add a side the pair's
    frame does not have) and is what a few dozen rows can fit. ECE is over 10 equal-width bins of the
    probability of the answer the judge prefers (so only the upper five hold rows); Brier is the same in
    any frame (0.25 for a constant 0.5).
    """

    source: Literal["fitted", "file", "off"]
    """`fitted`: T fitted on this ground truth; `file`: T read from `judge.calibration: FILE` (scored here,
    not fitted here); `off`: `judge.calibration: off`."""
    applied: bool
    """Whether the exported `p_chosen` of judge pairs is calibrated (else it is the raw soft label)."""
    reason: str
    """Why it is applied or not, in one line (T and its rows, or too few rows, no signal, off)."""
    rows: int
    """Ground-truth rows with a decided judge label (ties left out, counted in `ties`)."""
    ties: int = 0
    """Ground-truth rows whose judge label was exactly 0.5 (no preferred answer): left out."""
    by_source: dict[str, int] = Field(default_factory=dict)
    """Rows by where their truth came from (probe kind, check, contrast, review, labelled)."""
    min_rows: int = 30
    """Fewest decided rows, with at least one right and one wrong pick, before a fitted T is applied."""
    accuracy: Rate | None = None
    """Share of decided rows where the judge preferred the better answer (Wilson 95%)."""
    no_signal: bool = False
    """The accuracy's interval includes 0.5: the judge is not distinguishable from a coin here, and no
    fitted T means anything."""
    temperature: float | None = None
    """T (> 1: the judge was overconfident and its labels are softened); None when not fitted."""
    temperature_ci95: tuple[float, float] | None = None
    """Wald 95% interval of T from the likelihood's curvature in 1/T; None when it reaches 1/T <= 0."""
    ece_before: float | None = None
    """ECE of the raw labels on these rows."""
    ece_after: float | None = None
    """ECE of the calibrated labels (see `after_method`); None when there is no T."""
    brier_before: float | None = None
    """Brier score of the raw labels."""
    brier_after: float | None = None
    """Brier score of the calibrated labels (see `after_method`)."""
    after_method: str | None = None
    """How the "after" figures were scored: K-fold cross-validated (each row by a T fitted without its
    fold), or by a file's T not fitted on these rows."""
    file: str | None = None
    """The calibration file used, if any."""
    judge_model: str | None = None
    """The judge model whose labels were fitted."""
    template_hash: str | None = None
    """Hash of the judge template those labels came from."""
    warnings: list[str] = Field(default_factory=list)
    """Where a figure misleads: no signal, a file from another judge, few rows."""


class EnsembleVotes(Report):
    """How many independent votes a `judge.ensemble` of k members is worth (Kish's design effect):
    n_eff = k / (1 + (k - 1) * rho), rho the mean pairwise Pearson correlation of the members' P(A better)
    (each member's two orders averaged) over the judged pairs where every member parsed."""

    members: int
    """k: members per pair (`judge.ensemble`)."""
    items: int
    """Pairs every member gave a label on (the correlations' rows)."""
    left_out: int = 0
    """Pairs left out: a member did not parse."""
    mean_correlation: float | None = None
    """rho: mean over member pairs with a defined correlation; None when no pair had one."""
    pairs_undefined: int = 0
    """Member pairs whose correlation is undefined (one member constant over the items and not the
    other); two members constant and equal count as identical (correlation 1)."""
    effective_votes: float | None = None
    """n_eff; with rho <= 0 it is k (a negative estimate is not credited beyond the k votes cast)."""
    note: str = ""
    """What the figure says, in one line."""


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
    calibration_fit: CalibrationFit | None = None
    """A temperature fitted on these rows (cross-validated before/after); `--save-calibration` saves it."""
    ensemble: EnsembleVotes | None = None
    """With `judge.ensemble` > 1: the effective number of votes the members are worth."""


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


class BiasShare(Report):
    """How often the judge's chosen answer has a trait (is longer; is its own model's), beside a reference:
    the same share where the better answer is known, or the share a judge blind to the trait gets."""

    judged: Rate
    """Share of the judge's pairs whose chosen answer has the trait, among those whose two answers differ
    in it (Wilson 95% interval)."""
    judged_equal: int
    """Judge pairs whose two answers do not differ in the trait (left out of the share)."""
    reference: Rate | None
    """The same share among pairs whose better answer is known (checks, human reviews); None when there
    are too few of them and the null below is the reference."""
    reference_value: float
    """The reference share the excess is measured from."""
    reference_kind: str
    """Where the reference comes from, in words."""
    excess: float | None
    """judged - reference (None when no judge pair differs)."""
    excess_low: float | None
    """Lower end of the excess's 95% interval (Newcombe's; Wilson's lower bound minus the null when the
    reference is the null): what the gate reads, so a few pairs cannot trip it."""
    cohens_h: float | None
    """Cohen's h of the judged share against the reference (0.2 small, 0.5 medium, 0.8 large)."""


class LengthBiasReport(BiasShare):
    """The share of the judge's pairs whose chosen answer is the longer one (in words)."""

    unit: str = "words"
    """What is counted: whitespace-separated words (the same as `rlaif evaluate audit`'s `longer`)."""
    mean_log_ratio: float | None = None
    """Mean of ln((words chosen + 1) / (words rejected + 1)) over every judge pair (equal ones count 0):
    above 0 the chosen answers are longer; 0.69 means twice as long."""


class SelfPreferenceReport(BiasShare):
    """The share of the judge's pairs of one answer by its own model and one by another whose chosen
    answer is its own model's."""

    judge_model: str
    """The judge's model, as its records name it."""
    ground_truth: Rate | None = None
    """The judge's accuracy where the better answer is known (agreement with the checks), to read the
    preference beside; None when nothing measured it."""
