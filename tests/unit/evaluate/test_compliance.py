"""Compliance: pass rates with Wilson intervals, Newcombe's interval of the difference, the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rlaif.evaluate.compliance import ALL, compliance_rows, newcombe, pass_rate, plot_compliance
from rlaif.evaluate.reports import (
    ComplianceReport,
    KLEstimate,
    LengthComparison,
    LengthStats,
    PrincipleCompliance,
)
from rlaif.records import Check, CheckOutcome, Message, Principle, PromptRecord

SHORT = Principle(id="short", judge_question="Which is shorter?", check=Check(max_words=5, min_words=2))
PLAIN = Principle(
    id="no-links", judge_question="Which has no links?", check=Check(must_not_match=r"https?://")
)
PROMPTS = [PromptRecord(id=f"p{i}", messages=(Message(role="user", content=f"q{i}"),)) for i in range(2)]


def outcome(passed: bool | None) -> CheckOutcome:
    if passed is None:
        return CheckOutcome(principle_id="x", error="boom")
    return CheckOutcome(principle_id="x", score=float(passed), passed=passed)


def test_pass_rate_leaves_check_errors_out_and_counts_them() -> None:
    rate = pass_rate([outcome(True), outcome(False), outcome(None), outcome(True), None])
    assert (rate.passed, rate.n, rate.errors, rate.value) == (2, 3, 1, pytest.approx(2 / 3))
    assert rate.ci95 is not None and rate.ci95[0] < 2 / 3 < rate.ci95[1]
    empty = pass_rate([outcome(None)])
    assert empty.value is None and empty.ci95 is None and empty.errors == 1


def test_newcombe_matches_the_published_example() -> None:
    """Newcombe (1998), table II example: 56/70 against 48/80, difference 0.2000, 95% CI 0.0524 to 0.3339."""
    a = pass_rate([outcome(True)] * 56 + [outcome(False)] * 14)
    b = pass_rate([outcome(True)] * 48 + [outcome(False)] * 32)
    low, high = newcombe(a, b)  # type: ignore[misc]
    assert (low, high) == (pytest.approx(0.0524, abs=5e-4), pytest.approx(0.3339, abs=5e-4))
    assert newcombe(pass_rate([]), b) is None


def test_rows_run_every_check_on_every_answer_and_combine_them() -> None:
    answers = [
        "A short clear answer.",
        "See https://x.io now",
        "Too long an answer with many more words than five.",
        "",
    ]
    rows = compliance_rows([SHORT, PLAIN], PROMPTS, answers)
    assert [o.passed for o in rows["short"]] == [True, True, False, False]  # type: ignore[union-attr]
    assert [o.passed for o in rows["no-links"]] == [True, False, True, True]  # type: ignore[union-attr]
    assert [o.passed for o in rows[ALL]] == [True, False, False, False]  # type: ignore[union-attr]


def test_the_chart_is_written(tmp_path: object) -> None:
    from pathlib import Path

    rate_a, rate_b = (
        pass_rate([outcome(True)] * 3 + [outcome(False)] * 7),
        pass_rate([outcome(True)] * 9 + [outcome(False)]),
    )
    row = PrincipleCompliance(principle_id="short", rules="max_words: 5", base=rate_a, candidate=rate_b,
                              difference=0.6, difference_ci95=newcombe(rate_b, rate_a))  # fmt: skip
    lengths = LengthStats(n=10, words_mean=12.0)
    report = ComplianceReport(
        constitution="c", base="/m/base", candidate="/m/dpo", prompts_path="h.jsonl", prompts=5,
        prompts_seen_in_training=0, samples=2, temperature=0.8, max_tokens=64, engine="transformers",
        principles=[row], lengths=LengthComparison(base=lengths, candidate=lengths, drift_tokens=None),
        kl=KLEstimate(per_token=0.01, per_answer=0.3, answers=10, tokens=300, temperature=0.8, estimator="e"),
    )  # fmt: skip
    path = plot_compliance(report, Path(str(tmp_path)) / "chart.png")
    assert path.stat().st_size > 5000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_base_cache_samples_the_base_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rlaif iterate` measures every round against one base: its answers are sampled once and read back
    (for the same prompts and sampling only)."""
    from rlaif.config import load_config
    from rlaif.evaluate import samples
    from rlaif.evaluate.compliance import evaluate_compliance
    from rlaif.evaluate.samples import Sample

    for name in ("base", "cand"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "h.jsonl").write_text('{"prompt": "Why is the sky blue?"}\n{"prompt": "What is rain?"}\n')
    (tmp_path / "run.yaml").write_text(
        f"constitution: concise-plain\nprompts: {{path: h.jsonl}}\nrun_dir: {tmp_path}/r\n"
    )
    config = load_config(tmp_path / "run.yaml")
    calls: list[str] = []

    def generate(path: Any, prompts: Any, **kwargs: Any) -> list[Sample]:
        calls.append(Path(path).name)
        text = (
            "Short."
            if Path(path).name == "base"
            else "A plain answer of a dozen words that passes every check here."
        )
        return [Sample(text=text, token_ids=(1, 2), finished=True) for _ in prompts]

    monkeypatch.setattr(samples, "generate", generate)
    cache = tmp_path / "base.json"
    common = {"prompts_path": tmp_path / "h.jsonl", "base": str(tmp_path / "base"), "kl": False,
              "candidate": str(tmp_path / "cand"), "samples": 1, "base_cache": cache,
              "quiet": True}  # fmt: skip
    first = evaluate_compliance(config, **common)  # type: ignore[arg-type]
    second = evaluate_compliance(config, **common)  # type: ignore[arg-type]
    assert calls == ["base", "cand", "cand"]
    assert first.principles == second.principles and first.principles[-1].base.passed == 0
    evaluate_compliance(config, **{**common, "max_tokens": 7})  # type: ignore[arg-type]
    assert calls[-2:] == ["base", "cand"]  # other sampling: sampled again
