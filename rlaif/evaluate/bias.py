"""Judge biases beyond position: a preference for longer answers, and for its own model's answers.

Both are read the same way. Among the judge's pairs whose two answers differ in the trait (one is
longer; one was written by the judge's own model), the share whose chosen answer has it is set beside a
reference: the same share among pairs whose better answer is known (check-decided pairs, human-reviewed
pairs), once there are `MIN_REFERENCE` of them, else the null 0.5. The null is exact, not a guess: the
two answers of a sampled pair are two draws from the same policy for the same prompt, so which one is
longer is a coin flip, and a judge blind to length chooses the longer one half the time whatever the
lengths are. What the null cannot tell apart is a length-biased judge from a world where the longer
answer really is better; known-label pairs can, which is why they replace it when there are enough.

The gate (`quality.max_length_bias`) reads `excess_low`, the lower end of the 95% interval of judged
share minus reference (Newcombe's hybrid score interval; Wilson's lower bound minus 0.5 against the
null), so a handful of pairs cannot trip it and 40 of 40 longer-chosen pairs do.

`rlaif evaluate audit` reads the same figure from the exported rows through `LengthTally.add_row`, the
function the pipeline's export uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlaif.backends.serving import model_label
from rlaif.config import RunConfig
from rlaif.evaluate.reports import BiasShare, LengthBiasReport, SelfPreferenceReport
from rlaif.evaluate.stats import newcombe, rate
from rlaif.reports import Rate, percent

__all__ = [
    "MIN_REFERENCE",
    "answer_text",
    "LengthTally",
    "SelfPreferenceTally",
    "bias_share",
    "describe_share",
    "length_warning",
    "self_judging",
    "words",
]

MIN_REFERENCE = 20
"""Known-label pairs (that differ in the trait) needed before their share replaces the null 0.5: with
fewer, one or two pairs would set the reference (a single pair whose shorter answer was right would
let a judge that always picks the longer one through)."""

NULL = 0.5
"""The reference without known labels: a judge blind to the trait, on two samples of one policy."""


def words(text: str) -> int:
    """Whitespace-separated words: the length the length bias and the audit's `longer` count."""
    return len(text.split())


@dataclass
class _Count:
    more: int = 0
    less: int = 0
    equal: int = 0

    def add(self, sign: int) -> None:
        if sign > 0:
            self.more += 1
        elif sign < 0:
            self.less += 1
        else:
            self.equal += 1


def bias_share(
    judged: Mapping[str, int], known: Mapping[str, int], cls: type[Any], *, null: str, **extra: Any
) -> Any:
    """A `BiasShare` (of type `cls`) from counts `{"more", "less", "equal"}` of the judge's pairs and of
    the known-label pairs (the better answer as "chosen"); `null` says why 0.5 is the reference without
    enough known labels."""
    share = rate(judged["more"], judged["more"] + judged["less"])
    known_n = known["more"] + known["less"]
    reference: Rate | None = rate(known["more"], known_n) if known_n >= MIN_REFERENCE else None
    if reference is not None and reference.value is not None:
        value = reference.value
        kind = f"known-label pairs (checks, human reviews): {known['more']} of {known_n}"
        interval = newcombe(share, reference)
        low = interval[0] if interval else None
    else:
        value = NULL
        few = f"; {known_n} known-label pairs, fewer than {MIN_REFERENCE}" if known_n else ""
        kind = f"null: {null}{few}"
        low = None if share.ci95 is None else share.ci95[0] - NULL
    excess = None if share.value is None else share.value - value
    h = None
    if share.value is not None:
        h = 2 * math.asin(math.sqrt(share.value)) - 2 * math.asin(math.sqrt(value))
    return cls(
        judged=share, judged_equal=judged["equal"], reference=reference, reference_value=value,
        reference_kind=kind, excess=excess, excess_low=low, cohens_h=h, **extra,
    )  # fmt: skip


def describe_share(report: BiasShare, what: str) -> str:
    """One line of the figures: "chose the longer answer in 40 of 40 judge pairs (100.0%, 95% CI
    [91.2%, 100.0%]; 0 equal left out) against 50.0% (null ...); excess ≥ +41.2 points"."""
    share = report.judged
    ci = f", 95% CI [{percent(share.ci95[0])}, {percent(share.ci95[1])}]" if share.ci95 else ""
    hits = round((share.value or 0) * share.n)
    low = "n/a" if report.excess_low is None else f"{100 * report.excess_low:+.1f} points"
    h = "" if report.cohens_h is None else f", Cohen's h {report.cohens_h:+.2f}"
    return (
        f"chose {what} in {hits} of {share.n} judge pairs ({percent(share.value)}{ci}; "
        f"{report.judged_equal} equal left out) against {percent(report.reference_value)} "
        f"({report.reference_kind}); excess at least {low}{h}"
    )


def length_warning(report: LengthBiasReport, threshold: float | None) -> str | None:
    """The warning where the length bias is over `quality.max_length_bias` (the figure its gate reads)."""
    if threshold is None or report.excess_low is None or report.excess_low <= threshold:
        return None
    return (
        f"the judge's preferences are explained by length: it {describe_share(report, 'the longer answer')}, "
        f"over quality.max_length_bias {percent(threshold)}; training on these pairs teaches length"
    )


class LengthTally:
    """Counts, pair by pair, how often the chosen answer is the longer one: the judge's pairs on one side,
    the known-label pairs on the other. One tally serves the export and `rlaif evaluate audit`."""

    def __init__(self) -> None:
        self._judged = _Count()
        self._known = _Count()
        self._log_ratios = 0.0

    def add(self, chosen: str, rejected: str, *, known: bool) -> None:
        """A pair: `known` when its better answer is known without the LLM judge."""
        c, r = words(chosen), words(rejected)
        sign = (c > r) - (c < r)
        if known:
            self._known.add(sign)
        else:
            self._judged.add(sign)
            self._log_ratios += math.log((c + 1) / (r + 1))

    def add_row(self, row: Mapping[str, Any]) -> None:
        """An exported preference row: a judge row not reviewed by a person is the judge's; a check row
        or a human-reviewed row has a known label; revision rows count on neither side (the revision is
        the policy's own rewrite, not a verdict)."""
        known = row.get("source") == "check" or bool(row.get("human_reviewed"))
        if row.get("source") != "judge" and not known:
            return
        self.add(answer_text(row["chosen"]), answer_text(row["rejected"]), known=known)

    @property
    def judged(self) -> int:
        """Judge pairs counted so far."""
        return self._judged.more + self._judged.less + self._judged.equal

    def report(self) -> LengthBiasReport:
        n = self.judged
        return bias_share(  # type: ignore[no-any-return]
            vars(self._judged), vars(self._known), LengthBiasReport,
            null="a length-blind judge on two samples of one policy",
            mean_log_ratio=self._log_ratios / n if n else None,
        )  # fmt: skip


class SelfPreferenceTally:
    """Counts, over the judge's pairs of one answer by its own model and one by another, how often it
    chose its own (and the same among known-label pairs)."""

    def __init__(self, judge_model: str) -> None:
        self.judge_model = judge_model
        self._judged = _Count()
        self._known = _Count()
        self.own_answers = 0
        """Judged answers written by the judge's own model (self-judging when above 0)."""

    def add(self, chosen_model: str, rejected_model: str, *, known: bool) -> None:
        own = (chosen_model == self.judge_model, rejected_model == self.judge_model)
        if not known:
            self.own_answers += sum(own)
        if own[0] == own[1]:
            return  # both or neither by the judge's model: no own-model preference to read
        (self._known if known else self._judged).add(1 if own[0] else -1)

    def report(self, ground_truth: Rate | None = None) -> SelfPreferenceReport | None:
        """None when no judge pair mixed the judge's model's answer with another model's."""
        if not self._judged.more + self._judged.less:
            return None
        return bias_share(  # type: ignore[no-any-return]
            vars(self._judged), vars(self._known), SelfPreferenceReport,
            null="a judge blind to who wrote the answers, if both models answer equally well",
            judge_model=self.judge_model, ground_truth=ground_truth,
        )  # fmt: skip


def self_judging(config: RunConfig) -> str | None:
    """Why the judge is the policy's own model (`judge.model` unset, or naming the policy's model), in one
    sentence; None when the judge is another model."""
    judge = config.judge.model
    if judge is not None and model_label(judge) != model_label(config.model):
        return None
    how = "judge.model is not set" if judge is None else "judge.model names the policy's model"
    return (
        f"the judge is the policy's own model ({model_label(config.model)}; {how}), so it judges answers it "
        "wrote itself, where self-preference is worst (GPT-4 preferred its own answers 87.2% of the time on "
        "MT-Bench): set judge.model to a different, stronger model"
    )


def answer_text(turns: Any) -> str:
    """The answer of an exported `chosen` or `rejected` column (a one-turn list, or a string)."""
    if isinstance(turns, list):
        return "\n".join(str(t.get("content", "")) for t in turns if isinstance(t, dict))
    return str(turns)
