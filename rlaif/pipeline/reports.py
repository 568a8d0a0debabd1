"""The reports of the pipeline's stages and of a whole run: counts, the judge's summary, the quality
gates, `RunSummary` (what `rlaif run --json` writes)."""

from __future__ import annotations

from pydantic import Field, SerializeAsAny

from rlaif.evaluate.reports import (
    CalibrationFit,
    EnsembleVotes,
    LengthBiasReport,
    SelfPreferenceReport,
)
from rlaif.judging.reports import JudgeStats
from rlaif.reports import Rate, Report, percent
from rlaif.train.reports import TrainSummary

__all__ = [
    "Gate",
    "JudgeBiasReport",
    "JudgeSummary",
    "ProbeReport",
    "ProbeTally",
    "QualityReport",
    "RunCounts",
    "RunSummary",
    "StageReport",
]


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


class RubricReport(StageReport):
    """The rubric stage (`judge.rubric`): `made`/`reused` count item lists, `unparsed` the judgments
    whose every item list was unparsed."""

    prompts: int = 0
    """Prompts whose sampled pair the rubric judges."""
    items_written: int = 0
    """Items in the lists written by this run (after deduplication)."""
    items_duplicate: int = 0
    """Items dropped as repeats within their list."""
    items_unparsed: int = 0
    """Item-writing answers that were not a JSON list of 1 to k strings."""
    items_kept: int = 0
    """Items that passed the filter."""
    items_dropped: dict[str, int] = Field(default_factory=dict)
    """Items the filter dropped, by reason (each in `rubric_dropped.jsonl`)."""
    scores: int = 0
    """Answer-item scores made by this run."""
    scores_unparsed: int = 0
    """Of those, answers that were not a clean Yes or No."""
    judgments: int = 0
    """Rubric judgments stored by this run."""
    requests: int = 0
    """Requests sent by this run (item writing and scoring)."""
    prompt_tokens: int = 0
    """Prompt tokens of those requests, as the server counted them."""
    completion_tokens: int = 0
    """Completion tokens of those requests."""


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
    """(right + ties / 2) / (right + wrong + ties), with its Wilson 95% interval; n/a without a verdict.
    One verdict's worth: position bias (a tie) pulls it towards 50% like a coin would."""
    decided: Rate | None = None
    """right / (right + wrong): the accuracy of the verdicts whose two orders agree, the only ones a judge
    pair is made from, so the figure that predicts the exported labels; the `min_probe_accuracy` gate reads
    it (ties are the order-consistency gate's). n/a when no probe was decided."""
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
        """One line: each kind's accuracy where decided, its denominator and its ties ("padded 50.0% of
        10 decided (2 ties), ...")."""
        shown = []
        for kind, tally in self.by_kind.items():
            value, n = (tally.decided.value, tally.decided.n) if tally.decided else (None, 0)
            shown.append(
                f"{kind} {percent(value)} of {n} decided" + (f" ({tally.ties} ties)" if tally.ties else "")
            )
        return ", ".join(shown)


class JudgeBiasReport(Report):
    """Judge biases beyond position: whether the judge judges its own model's answers, its preference for
    longer answers and for its own model's."""

    self_judging: str | None = None
    """Why the judge's model is the policy's (or wrote the answers it judged), once; None when not."""
    length: LengthBiasReport | None = None
    """Length preference of the judge pairs in the export; None when nothing was exported."""
    self_preference: SelfPreferenceReport | None = None
    """Own-model preference; None unless the judged pairs mix answers of the judge's model and another."""


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
    stages: dict[str, SerializeAsAny[StageReport]] = Field(default_factory=dict)
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
    calibration: CalibrationFit | None = None
    """The judge's soft labels against the run's ground truth, and whether the export calibrates them."""
    ensemble: EnsembleVotes | None = None
    """With `judge.ensemble` > 1: the effective number of votes the members are worth."""
    bias: JudgeBiasReport | None = None
    """Judge biases beyond position (self-judging, length, self-preference); None before any judging."""
    probes: ProbeReport | None = None
    """The judge's accuracy on the universal probes; None when the judge was off or nothing was probed."""


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
    detail: str = ""
    """The figures behind the value, when one number does not say it (e.g. share, interval, reference, n)."""

    def message(self) -> str:
        """One line: the value, the threshold, the figures behind it and what to do."""
        shown = (lambda v: str(int(v))) if self.name == "pairs" else percent
        relation = "below the least" if self.at_least else "above the most"
        detail = f" ({self.detail})" if self.detail else ""
        limit = f"allowed ({shown(self.threshold)}){detail}"
        return f"{self.name} {shown(self.value)} is {relation} {limit}: {self.fix}"


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
