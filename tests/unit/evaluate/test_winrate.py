"""Win-rate arithmetic: the Wilson interval, both-order preferences, the tally and length statistics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rlaif.evaluate.reports import (
    KLEstimate,
    LengthComparison,
    LengthStats,
    PromptSetInfo,
    SamplingSettings,
    WinRateReport,
)
from rlaif.evaluate.samples import Sample
from rlaif.evaluate.stats import wilson
from rlaif.evaluate.winrate import length_stats, preference, tally, winrate_warnings
from rlaif.judging.reports import JudgeStats
from rlaif.records import OrderVerdict

BASE, CAND = "base-1", "cand-1"


def order(first: str, p_first: float | None, status: str = "ok") -> OrderVerdict:
    return OrderVerdict(first_id=first, p_first=p_first, status=status, raw="A")  # type: ignore[arg-type]


def wilson_interval(successes: float, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    interval = wilson(successes, n, confidence=confidence)
    assert interval is not None
    return interval


def test_wilson_matches_hand_computed_values() -> None:
    # 8 of 10 at 95%: p=0.8, z=1.95996; centre=(0.8+0.19207)/1.38415, half=z*sqrt(0.016+0.009604)/1.38415
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)


def test_wilson_is_symmetric_narrows_with_n_and_takes_half_wins() -> None:
    low, high = wilson_interval(5, 10)
    assert low + high == pytest.approx(1.0)
    wide, narrow = wilson_interval(50, 100), wilson_interval(500, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    low, high = wilson_interval(2.5, 5)  # ties count half
    assert low < 0.5 < high
    lo90, hi90 = wilson_interval(5, 10, confidence=0.9)
    lo95, hi95 = wilson_interval(5, 10)
    assert lo95 < lo90 < hi90 < hi95


@pytest.mark.parametrize("bad", [(1, 0), (-1, 5), (6, 5)])
def test_wilson_rejects_impossible_counts(bad: tuple[float, int]) -> None:
    with pytest.raises(ValueError):
        wilson(*bad)


def test_wilson_of_nothing_is_undefined() -> None:
    assert wilson(0, 0) is None


def test_both_orders_agree_for_the_candidate() -> None:
    # base shown first: P(first=base)=0.2; candidate shown first: P(first=candidate)=0.9
    p, consistent = preference([order(BASE, 0.2), order(CAND, 0.9)], CAND)
    assert p == pytest.approx((0.8 + 0.9) / 2) and consistent is True


def test_a_judge_that_always_picks_the_first_answer_gives_a_tie() -> None:
    p, consistent = preference([order(BASE, 0.9), order(CAND, 0.9)], CAND)
    assert p == pytest.approx(0.5) and consistent is False


def test_orders_that_disagree_keep_their_average_lean() -> None:
    p, consistent = preference([order(BASE, 0.6), order(CAND, 0.9)], CAND)
    assert p == pytest.approx(0.65) and consistent is False


def test_one_unparsed_order_leaves_the_other() -> None:
    p, consistent = preference([order(BASE, None, "unparsed"), order(CAND, 0.7)], CAND)
    assert p == pytest.approx(0.7) and consistent is None
    assert preference([order(BASE, None, "unparsed"), order(CAND, None, "error")], CAND) == (None, None)


def test_tally_counts_wins_losses_ties_and_unjudged() -> None:
    prefs = [(0.9, True), (0.8, True), (0.3, True), (0.5, False), (None, None), (0.65, False)]
    result = tally(prefs)
    assert (result.wins, result.losses, result.ties, result.unjudged) == (3, 1, 1, 1)
    assert result.n == 5 and result.orders_disagreed == 2
    assert result.win_rate == pytest.approx(3.5 / 5)
    assert result.ci == pytest.approx(wilson_interval(3.5, 5))
    assert result.mean_p_candidate == pytest.approx((0.9 + 0.8 + 0.3 + 0.5 + 0.65) / 5)


def test_tally_handles_disagreeing_orders_as_configured() -> None:
    prefs = [(0.9, True), (0.3, True), (0.65, False)]
    assert tally(prefs, inconsistent="keep").wins == 2
    dropped = tally(prefs, inconsistent="drop")
    assert dropped.n == 2 and dropped.win_rate == pytest.approx(0.5)
    tied = tally(prefs, inconsistent="tie")
    assert (tied.wins, tied.ties) == (1, 1) and tied.win_rate == pytest.approx(1.5 / 3)


def test_tally_with_no_verdict_has_no_rate() -> None:
    result = tally([(None, None)])
    assert result.win_rate is None and result.ci is None and result.unjudged == 1


def test_all_ties_is_no_win_rate_not_fifty_percent() -> None:
    result = tally([(0.5, True), (0.5, True), (0.65, False)], inconsistent="tie")
    assert (result.n, result.ties, result.win_rate, result.ci) == (3, 3, None, None)
    consistency, same_position, warnings = winrate_warnings(
        result, JudgeStats(judged=3, both_orders=3, consistent=2, same_position=1)
    )
    assert consistency is not None and consistency.value == pytest.approx(2 / 3)
    assert same_position is not None and same_position.value == pytest.approx(1 / 3)
    assert len(warnings) == 1 and warnings[0].startswith("no prompt was decided (3 ties, 0 without")


def test_a_judge_that_is_mostly_position_bias_is_warned_about() -> None:
    result = tally([(0.9, True), (0.6, False), (0.4, False), (0.7, False)])
    consistency, same_position, warnings = winrate_warnings(
        result, JudgeStats(judged=4, both_orders=4, consistent=1, same_position=4)
    )
    assert result.win_rate == pytest.approx(0.75)
    assert consistency is not None and consistency.value == 0.25
    assert [w.split(" ")[0] for w in warnings] == ["order-consistency", "same-position"]
    assert "25.0% of 4 prompts is below 50%" in warnings[0]
    assert "100.0% of 4 prompts is above 80%" in warnings[1]
    # At the thresholds themselves nothing is said.
    _, _, quiet = winrate_warnings(result, JudgeStats(judged=5, both_orders=5, consistent=3, same_position=4))
    assert quiet == []


def test_length_stats() -> None:
    samples = [
        Sample("a b c", (1, 2, 3, 9), True),
        Sample("a", (1, 9), True),
        Sample("x y", tuple(range(10)), False),
    ]
    stats = length_stats(samples)
    assert stats.tokens_mean == pytest.approx(16 / 3) and stats.tokens_median == 4
    assert stats.tokens_p90 == 10 and stats.words_mean == pytest.approx(2.0)
    assert stats.cut_off is not None and math.isclose(stats.cut_off, 1 / 3)
    assert length_stats([]) == LengthStats(n=0)


def report(*preferences: tuple[float | None, bool | None], stats: JudgeStats) -> WinRateReport:
    result = tally(list(preferences))
    consistency, same_position, warnings = winrate_warnings(result, stats)
    lengths = length_stats([Sample("a b", (1, 2), True)])
    return WinRateReport(
        base="base-model", candidate="runs/x/models/dpo", judge="judge-model", judge_mode="logprob",
        prompts=PromptSetInfo(path="held.jsonl", count=3, overlap_with_training=0, held_out=True),
        sampling=SamplingSettings(max_tokens=16, temperature=1.0, top_p=1.0, engine="transformers", seed=0),
        win_rate=result, win_rate_strict=tally(list(preferences), inconsistent="tie"),
        order_consistency=consistency, same_position_rate=same_position, warnings=warnings,
        lengths=LengthComparison(base=lengths, candidate=lengths, drift_tokens=0.0),
        kl=KLEstimate(per_token=0.001, per_answer=0.01, answers=1, tokens=2, temperature=1.0, estimator="x"),
        seconds={"judge_startup": 3.0, "judge": 1.0, "total": 9.0},
    )  # fmt: skip


def run_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: WinRateReport
) -> tuple[int | None, str, Path]:
    from typer.testing import CliRunner

    from rlaif.cli.main import app
    from rlaif.evaluate import winrate

    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.setattr(winrate, "evaluate_winrate", lambda config, **options: made)
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    config = tmp_path / "c.yaml"
    config.write_text("prompts: {path: p.jsonl}\n")
    result = CliRunner().invoke(app, ["evaluate", "winrate", str(config), "--quiet"])
    return result.exit_code, result.output, config


def test_the_cli_renders_the_report_and_exits_0_with_a_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = report(
        (0.9, True), (0.5, True), (0.3, True), stats=JudgeStats(judged=3, both_orders=3, consistent=3)
    )
    code, output, _ = run_cli(tmp_path, monkeypatch, made)
    assert code == 0, output
    assert "50.0% of 3  95% CI" in output and "1 / 1 / 1" in output
    assert "order-consistency" in output and "100.0% of 3" in output
    assert "judge server start 3.0 s" in output and "warning" not in output


def test_the_cli_says_n_a_warns_and_exits_1_without_a_decided_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = report(
        (0.5, False), (0.5, False), stats=JudgeStats(judged=2, both_orders=2, consistent=0, same_position=2)
    )
    code, output, _ = run_cli(tmp_path, monkeypatch, made)
    assert code == 1
    assert "n/a (no prompt decided)" in output
    assert output.count("warning") == 3 and "no prompt was decided" in output


def test_the_chart_draws_a_decided_and_an_undecided_report(tmp_path: Path) -> None:
    from rlaif.evaluate.winrate import plot_winrate

    decided = report((0.9, True), (0.2, False), (None, None), stats=JudgeStats(judged=3, both_orders=2))
    path = plot_winrate(decided, tmp_path / "charts" / "winrate.png")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000
    undecided = report((0.5, False), stats=JudgeStats(judged=1, both_orders=1))
    assert undecided.win_rate.win_rate is None  # drawn as "n/a", not as 0 or 50%
    assert plot_winrate(undecided, tmp_path / "none.png").read_bytes().startswith(b"\x89PNG")
