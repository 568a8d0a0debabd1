"""`judge:`: the AI judge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlaif.config.base import Section
from rlaif.config.model import ModelConfig

__all__ = ["JudgeConfig"]


PROBE_KINDS = ("padded", "off_topic", "truncated", "repetition")
"""The universal probes (`rlaif.pipeline.probes`)."""
ProbeKind = Literal["padded", "off_topic", "truncated", "repetition"]


class ProbesConfig(Section):
    """Universal probes: for a seeded share of prompts, the prompt's first answer is judged, in both
    orders and under the prompt's sampled principles, against a spoiled copy of itself whose loss is
    known without any check. A ground truth for the judge in every run, whatever the constitution;
    stored in `probes.jsonl`, never exported for training."""

    share: float = Field(default=0.2, ge=0.0, le=1.0)
    """Share of prompts probed (seeded by the run's seed and the prompt); 0 probes nothing."""
    kinds: list[ProbeKind] = Field(default=list(PROBE_KINDS))
    """`padded`: the answer with irrelevant filler appended; `off_topic`: another prompt's answer;
    `truncated`: the answer cut off mid-sentence; `repetition`: its first sentence repeated."""


class JudgeConfig(Section):
    """The AI judge."""

    enabled: bool = True
    mode: Literal["logprob", "cot", "pointwise"] = "logprob"
    """`logprob`: one-token A/B verdict, soft label from the option log-probs; `cot`: reasoning first,
    then a verdict (see `cot_final`), soft label clamped to `cot_clamp`; `pointwise`: each response
    scored 1-10 alone as structured JSON, the label from the score difference."""
    both_orders: bool = True
    """Judge A/B and B/A and average: removes position bias from the soft label."""
    principles_per_judgment: int = Field(default=1, ge=1)
    """Principles asked about in one verdict."""
    ensemble: int = Field(default=1, ge=1)
    """Principle ensemble: judge under this many distinct principle draws and average the labels."""
    few_shot: int = Field(default=0, ge=0)
    """Constitution examples shown to the judge as solved comparisons (revision against original)."""
    self_consistency: int = Field(default=1, ge=1)
    """`cot` only: reasoning samples per order (at `cot_temperature`), their labels averaged."""
    cot_max_tokens: int = Field(default=256, ge=8)
    """`cot`: most reasoning tokens."""
    cot_temperature: float = Field(default=0.7, ge=0)
    """`cot`: sampling temperature when `self_consistency` > 1 (one sample is greedy)."""
    cot_final: Literal["constrained", "parse"] = "constrained"
    """`cot`: `constrained` asks once more after the reasoning for one letter (A/B, log-probs);
    `parse` reads a strict "Verdict: A|B" line from the reasoning (none or both: unparsed)."""
    cot_clamp: tuple[float, float] | None = (0.4, 0.6)
    """`cot`: band each order's label is clamped to (Constitutional AI used 0.4-0.6); null: no clamp."""
    defences: bool = True
    """Candidates between per-run random delimiters with the question after them (`judge.jinja`);
    false uses `judge_plain.jinja` (no delimiters, question first), for attack-suite comparisons."""
    inconsistent: Literal["keep", "drop", "tie"] = "drop"
    """Pairs whose two orders disagree: `drop` them from the export (they stay in pairs.jsonl, counted;
    their label is position bias, not preference), `keep` them with the averaged low-confidence label,
    or count them as a `tie` (no pair is made)."""
    min_confidence: float = Field(default=0.6, ge=0.5, le=1.0)
    """Judge pairs whose P(chosen) is below this are dropped from the export (kept in pairs.jsonl)."""
    checks: Literal["exact", "probe", "off"] = "probe"
    """Principles with a `check`: where the two responses' check outcomes differ, the check labels the
    pair. `exact` asks the LLM judge nothing there; `probe` asks it too and records whether it agreed
    (the judge's agreement with the checks: a ground truth for the judge in every run); `off` ignores
    checks."""
    probe_share: float = Field(default=1.0, ge=0.0, le=1.0)
    """`probe`: share of the check-decided pairs also put to the LLM judge (seeded); the rest as `exact`."""
    contrast_pairs: bool = True
    """With checks on and several samples per prompt: for each checkable principle, one more pair per
    prompt of a sample that passes its check against one that fails it (the two that differ least on
    the other checks), labelled by the check. Free: no LLM request unless probed."""
    validate_revisions: Literal["auto", "on", "off"] = "auto"
    """Ask the judge, in both orders and under the revision's principles, whether the revision beats the
    original before a revision pair is exported (Constitutional AI's validation). `auto`: on when
    `judge.model` names a judge of its own, off when the policy judges itself."""
    model: ModelConfig | None = None
    """A different judge model or server; None uses the policy's."""
    probes: ProbesConfig = ProbesConfig()
    """Universal probes: a ground truth for the judge in every run (see `ProbesConfig`)."""
    rubric: Literal["off", "per_prompt"] = "off"
    """`per_prompt`: for each prompt and judged principle the judge writes `rubric_items` yes/no checklist
    items (`rubric_items.jinja`), scores every sampled answer item by item as P(yes) (`rubric_score.jinja`),
    keeps the items that separate the answers, and labels the sampled pair from the two scores instead of
    asking the pairwise question (`rlaif.pipeline.rubric`). A principle's own `rubric: true|false` wins."""
    rubric_items: int = Field(default=4, ge=1, le=12)
    """Checklist items written per prompt and principle (1-12)."""
    calibration: str = Field(default="auto", min_length=1)
    """The exported `p_chosen` of judge pairs: `auto` fits a temperature on the run's ground truth (probes,
    checks, contrast pairs, reviews) and applies it when there is enough (30 decided rows with a right and
    a wrong pick, and a judge better than a coin), else keeps the raw labels and says why; `off` keeps
    them raw; or a file written by `rlaif evaluate judge --save-calibration` (its T is applied)."""

    @model_validator(mode="after")
    def _coherent(self) -> JudgeConfig:
        if self.cot_clamp is not None:
            low, high = self.cot_clamp
            if not 0.0 <= low <= 0.5 <= high <= 1.0:
                raise ValueError(
                    f"cot_clamp {list(self.cot_clamp)} must be [low, high] with "
                    "0 <= low <= 0.5 <= high <= 1, e.g. [0.4, 0.6]; null turns clamping off"
                )
        if self.self_consistency > 1 and self.mode != "cot":
            raise ValueError(
                f"self_consistency {self.self_consistency} needs mode: cot (mode is {self.mode}); "
                "set mode: cot or self_consistency: 1"
            )
        return self
