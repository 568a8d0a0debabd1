"""The reports of the constitution author's tools: lint, preview, test, compare and audit."""

from __future__ import annotations

from pydantic import Field

from rlaif.evaluate.reports import LengthBiasReport
from rlaif.reports import Rate, Report

__all__ = [
    "AuditReport",
    "ConstitutionComparison",
    "ConstitutionTrial",
    "LintReport",
    "LintWarning",
    "PairedDifference",
    "PreviewReport",
    "PreviewRequest",
    "PrincipleTrial",
    "PromptPart",
    "TraitGroup",
    "TraitShare",
]


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


class RubricPreview(Report):
    """The checklist a judge wrote for the preview's conversation (`preview --rubric --base-url`)."""

    status: str
    """`ok`, `unparsed` (not a JSON list of 1 to k strings) or `error` (the request failed)."""
    raw: str
    """The answer as written (or the error)."""
    items: list[str] = Field(default_factory=list)
    """The items, deduplicated."""
    duplicates: int = 0
    """Repeats dropped."""
    model: str | None = None
    """The judge that wrote them."""


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
    rubric: RubricPreview | None = None
    """With `--rubric --base-url`: the items the judge wrote for the sample conversation."""


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
    length_bias: LengthBiasReport | None = None
    """The judge pairs' length preference against the known-label pairs: the figure the run's
    `quality.max_length_bias` gate reads."""
    warnings: list[str] = Field(default_factory=list)
    """Figures that say the pairs teach a bias (the length bias over the run's `quality.max_length_bias`)."""
