"""The reports of the benchmarks: generation and scale against raw vLLM and the raw client, the judge's
cost, training against plain TRL, the checks' speed, what the data-trust machinery is worth."""

from __future__ import annotations

from typing import Any

from pydantic import Field, computed_field

from rlaif.reports import Rate, Report

__all__ = [
    "BenchMeasurement",
    "CheckBenchPrinciple",
    "CheckBenchReport",
    "GenerationBench",
    "Hardware",
    "JudgeCostBench",
    "JudgeCostRun",
    "JudgeThroughput",
    "ScaleBench",
    "ScalePoint",
    "ServersPoint",
    "WorkersPoint",
    "TokenCounts",
    "TrainBench",
    "TrainerComparison",
    "TrainerMeasurement",
    "TrustArm",
    "TrustBench",
    "TrustCell",
    "TrustJudge",
]


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


class WorkersPoint(Report):
    """`rlaif run --workers N` against one zero-latency stub: how the client's requests/s grow with N."""

    workers: int
    """Client processes (`model.workers`)."""
    prompts: int
    requests: int
    """Requests the stub answered."""
    requests_per_second: float
    """requests / generation seconds (the run's own timing, from the summary)."""
    cpu_ms_per_request: float
    """CPU time of `rlaif run` and all its workers, per request."""
    client_cores: float
    """That CPU time over the run's wall seconds (startup and export included)."""
    stub_cpu_ms_per_request: float
    """CPU time of the stub server per request."""
    stub_cores: float
    """The stub's CPU time over the same wall seconds."""
    machine_busy_cores: float
    """Every process of the machine together over those seconds (from /proc/stat): what others ran
    beside the benchmark shows as this minus the client's and the stub's."""
    worker_peak_rss_mib: list[float] = Field(default_factory=list)
    """Peak RSS of each worker process (empty for one worker, which is the `rlaif run` process)."""
    peak_rss_mib: float = 0.0
    """Peak RSS of the `rlaif run` process (the largest of it and its waited-for workers)."""


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
    workers: list[WorkersPoint] = Field(default_factory=list)
    """The same run with 1, 2, ... client processes against one stub (`--workers`)."""


class TrustJudge(Report):
    """A synthetic judge of `rlaif bench-trust` (`rlaif.bench.synthetic`): per order, with probability
    `position_bias` it answers A; else with probability `length_bias` the longer answer; else the better
    one with probability `accuracy`."""

    accuracy: float
    """P(the better answer) when neither bias decides."""
    length_bias: float
    """P(the longer answer), when position did not decide."""
    position_bias: float
    """P(the first position), whatever the answers."""
    served_name: str
    """The stub's model name that judges so."""
    single_order_accuracy: float
    """P(one verdict is right) on the run's own pairs: q/2 + (1-q)(l/2 + (1-l) a)."""
    two_order_agreement: float
    """Expected share of pairs whose two orders agree."""
    two_order_accuracy: float
    """Expected share of those agreeing pairs that are right."""


class TrustArm(Report):
    """One judge through one pipeline: what it exported, how right the labels are, what the gates said."""

    arm: str
    """`naive` (one order, hard labels, no filters, no probes, no gates) or `rlaif` (the defaults)."""
    judged: int
    """Judge pairs judged (one per prompt)."""
    exported: int
    """Judge pairs exported (for `rlaif`: what would be trained on if no gate refused)."""
    label_accuracy: Rate
    """Share of the exported pairs whose chosen answer is truly the better one (Wilson 95% interval)."""
    chose_longer: Rate
    """Share of the exported pairs (answers of different lengths) whose chosen answer is the longer."""
    refused: bool
    """A quality gate failed: `rlaif run` would train on nothing."""
    failed_gates: list[str] = []
    """The names of the gates that failed."""
    gate_lines: list[str] = []
    """Their one-line messages, as `rlaif run` prints them."""
    order_consistency: float | None = None
    """Share of the judge pairs whose two orders agreed; None with one order."""
    probe_accuracy: Rate | None = None
    """Accuracy on the universal probes where both orders agreed (what the gate reads); None without."""
    probe_by_kind: dict[str, Rate] = {}
    """The same per probe kind."""
    length_share: Rate | None = None
    """The length gate's share: exported judge pairs whose chosen answer is the longer."""
    length_excess_low: float | None = None
    """What the length gate reads: the lower 95% bound of that share's excess over its reference."""
    calibration: str = ""
    """Whether the exported soft labels were calibrated, and how (the run's calibration line)."""
    seconds: float
    """Wall time of the judge and export stages."""
    expected_accuracy: float | None = None
    """The judges' generative model's expected label accuracy on this run's very pairs (for `rlaif`: of
    the pairs whose orders agree), to read the measured one against."""


class TrustCell(Report):
    """One synthetic judge through both pipelines, on the same answers."""

    judge: TrustJudge
    """The judge."""
    naive: TrustArm
    """One order, hard labels, no filters, no gates."""
    rlaif: TrustArm
    """rlaif's defaults."""


class TrustBench(Report):
    """`rlaif bench-trust`: synthetic judges of known accuracy, position and length bias through a naive
    pipeline and through rlaif's defaults, on the same synthetic answers whose better one is known."""

    prompts: int
    """Prompts (one judge pair each), answered once and judged by every judge in both arms."""
    seed: int
    """The run seed."""
    naive_settings: dict[str, str]
    """The settings that make the naive arm (dotted config keys and values)."""
    first_better: Rate
    """Share of the judged pairs whose first sample (shown first in one order) is the better answer."""
    longer_better: Rate
    """Share of the judged pairs of different lengths whose longer answer is the better one."""
    cells: list[TrustCell]
    """One per judge, in grid order."""
    respond_seconds: float
    """Wall time of answering the prompts once."""
    seconds: float
    """Wall time of the whole benchmark."""
    machine: str = ""
    """Where it ran (platform, CPU count, Python)."""
