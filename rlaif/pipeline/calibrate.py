"""The run's calibration of its judge's soft labels: ground truth gathered, T fitted or read, for the export.

`rlaif.evaluate.calibration` does the arithmetic; this module feeds it what a run has: the judgments whose
better answer is known (probes, probed check and contrast pairs) and the judge pairs people reviewed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rlaif.config import RunConfig
from rlaif.evaluate.calibration import fit_calibration, ground_truth, load_calibration
from rlaif.evaluate.reports import CalibrationFit
from rlaif.records import Judgment, PreferencePair, ReviewDecision
from rlaif.review.session import consensus

__all__ = ["calibrate_run", "is_ground_truth", "reviewed_labels"]


def is_ground_truth(judgment: Judgment) -> bool:
    """Whether a judgment can be a ground-truth row (kept while the judgments stream past)."""
    return judgment.known_better is not None or judgment.llm_p_a is not None


def reviewed_labels(
    human: Mapping[str, Mapping[str, ReviewDecision]], pairs: Iterable[PreferencePair]
) -> list[tuple[float, bool]]:
    """(raw P(chosen), people kept the chosen answer) of each judge pair of `pairs` people decided on."""
    found = []
    for pair in pairs:
        decisions = human.get(pair.id)
        if pair.source != "judge" or not decisions:
            continue
        verdict = consensus(decisions.values())
        if verdict in ("chosen", "rejected"):
            found.append((pair.score, verdict == "chosen"))
    return found


def calibrate_run(
    config: RunConfig,
    judgments: Sequence[Judgment],
    reviewed: Sequence[tuple[float, bool]] = (),
    *,
    judge_model: str | None = None,
    template_hash: str | None = None,
) -> CalibrationFit:
    """The run's `CalibrationFit` under `judge.calibration` (`auto`, `off` or a saved file)."""
    setting = config.judge.calibration
    saved = file = None
    if setting not in ("auto", "off"):
        path = config.resolve(setting)
        saved, file = load_calibration(path), str(path)
    return fit_calibration(
        ground_truth(judgments, reviewed), setting=setting, saved=saved, file=file,
        judge_model=judge_model, template_hash=template_hash,
    )  # fmt: skip
