"""The evaluation harness: labelled files, baselines, metrics, and a fake judge with a known answer."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sys
from pathlib import Path

import pytest

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.config import JudgeConfig, RunConfig
from rlaif.errors import PromptSetError
from rlaif.evaluate.judge import (
    baseline_rows,
    calibration_label,
    calibration_points,
    chosen_first,
    evaluate_judge,
    judge_rows,
    summarize,
)
from rlaif.evaluate.reports import JudgeEvaluation, ParseCounts
from rlaif.evaluate.stats import (
    brier_score,
    expected_calibration_error,
    reliability_bins,
    reliability_figure,
    wilson,
)
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.labelled import load_labelled_pairs
from rlaif.records import Judgment
from rlaif.reports import Rate, percent
from rlaif.store import Stage

HH_TEST = Path(__file__).resolve().parents[4] / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
CONSTITUTION = load_constitution(find_constitution("harmless"))
CALIBRATION = calibration_label(True)


def hh(*turns: str) -> str:
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))


def tiny_file(tmp_path: Path) -> Path:
    """8 rows: in rows 1-6 the chosen reply is the "good" one, in rows 7-8 the rejected one is."""
    rows = []
    for i in range(8):
        good, bad = f"a good reply {i}", f"bad {i}"
        chosen, rejected = (good, bad) if i < 6 else (bad, good)
        rows.append({"chosen": hh(f"question {i}?", chosen), "rejected": hh(f"question {i}?", rejected)})
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def shown_a(request: ChatRequest) -> str:
    found = re.search(r"<response_A_\w+>\n(.*?)\n</response_A_", request.messages[0]["content"], re.S)
    assert found is not None
    return found.group(1)


def prefers_good(request: ChatRequest) -> float:
    return 0.8 if "good" in shown_a(request) else 0.2


def judged(path: Path, p_first: object, **config: object):  # type: ignore[no-untyped-def]
    pairs = load_labelled_pairs(path).pairs
    backend = FakeBackend(p_first=p_first)  # type: ignore[arg-type]
    rows, judgments = asyncio.run(
        judge_rows(
            backend, pairs, constitution=CONSTITUTION, config=JudgeConfig(**config), seed=3, quiet=True
        )
    )
    return summarize(rows), rows, judgments, backend


def test_known_answer_with_a_fake_judge(tmp_path: Path) -> None:
    report, rows, judgments, _ = judged(tiny_file(tmp_path), prefers_good)
    assert report.n == 8
    assert report.agreement == pytest.approx(6 / 8)
    assert report.agreement_method == "two orders averaged, a tie counts half"
    assert report.agreement_one_order.value == pytest.approx(6 / 8)
    assert report.agreement_two_orders is not None and report.agreement_two_orders.value == pytest.approx(
        6 / 8
    )
    assert (report.ties, report.decided) == (0, 8)
    assert report.order_consistency is not None and report.order_consistency.value == 1.0
    assert report.same_position_rate is not None and report.same_position_rate.value == 0.0
    assert report.parse == ParseCounts()
    assert report.agreement_ci95 is not None
    lo, hi = report.agreement_ci95
    assert lo < 0.75 < hi
    assert report.warnings == []
    # Every row's principle was sampled: nothing to report per principle.
    assert report.per_principle == {}
    assert all(j.p_a is not None for j in judgments)


def test_chosen_is_shown_first_for_exactly_half(tmp_path: Path) -> None:
    _, rows, judgments, _ = judged(tiny_file(tmp_path), prefers_good)
    assert sum(r.chosen_first for r in rows) == 4
    for row, judgment in zip(rows, judgments, strict=True):
        assert judgment.response_a_id.endswith("chosen") == row.chosen_first
    assert chosen_first(9, seed=1) == chosen_first(9, seed=1)
    assert sum(chosen_first(10, seed=1)) == 5 and sum(chosen_first(9, seed=1)) in (4, 5)
    assert chosen_first(50, seed=1) != chosen_first(50, seed=2)
    assert chosen_first(50, seed=1)[:20] == chosen_first(20, seed=1)  # a larger --limit extends a run


def test_position_bias_is_not_agreement_and_all_ties_are_n_a(tmp_path: Path) -> None:
    # A judge that always says A agrees on exactly the half of rows where the chosen reply is at A.
    report, *_ = judged(tiny_file(tmp_path), 0.9)
    assert report.agreement_one_order.value == pytest.approx(0.5)
    assert report.first_order_picks_a.value == 1.0
    # Averaged over both orders every label is exactly 0.5: all ties, no row decided. Not 0%, and not
    # the 50% that counting each tie half would make: n/a.
    assert (report.ties, report.decided) == (8, 0)
    assert report.agreement is None and report.agreement_ci95 is None
    assert report.agreement_two_orders == Rate(value=None, n=8)
    assert report.agreement_decisive == Rate(value=None, n=0)
    assert report.order_consistency is not None and report.order_consistency.value == 0.0
    assert report.same_position_rate is not None and report.same_position_rate.value == 1.0
    first, consistency, same = report.warnings
    assert first.startswith("no row was decided (8 ties, 0 without a parsed verdict)")
    assert consistency.startswith("order-consistency 0.0% of 8 rows is below 50%")
    assert same.startswith("same-position rate 100.0% of 8 rows is above 80%")


def test_ties_count_half_beside_the_decided_rate_and_the_tie_count(tmp_path: Path) -> None:
    def good_or_even(request: ChatRequest) -> float:
        # rows 0-1: a tie in both orders; the others: prefers the good reply.
        return 0.5 if re.search(r"(reply|bad) [01]$", shown_a(request)) else prefers_good(request)

    report, rows, *_ = judged(tiny_file(tmp_path), good_or_even)
    # 8 rows: 2 ties, 4 agree (rows 2-5), 2 disagree (rows 6-7, where the chosen reply is the bad one).
    assert (report.ties, report.decided) == (2, 6)
    assert report.agreement == pytest.approx((4 + 2 / 2) / 8)
    assert report.agreement_decisive.value == pytest.approx(4 / 6) and report.agreement_decisive.n == 6
    assert report.agreement_ci95 == pytest.approx(wilson(5, 8))
    assert report.warnings == []


def test_one_order(tmp_path: Path) -> None:
    report, rows, _, backend = judged(tiny_file(tmp_path), prefers_good, both_orders=False)
    assert len(backend.requests) == 8
    assert report.agreement_method == "one order, a tie counts half"
    assert report.agreement == pytest.approx(6 / 8)
    assert report.agreement_two_orders is None
    assert report.order_consistency is None and report.same_position_rate is None
    assert all(len(r.p_orders) == 1 for r in rows)


def test_unparsed_verdicts_are_counted_not_labelled(tmp_path: Path) -> None:
    class Rambling(FakeBackend):
        async def chat(self, request):  # type: ignore[no-untyped-def]
            result = await super().chat(request)
            result.texts = ["Well"]
            return result

    pairs = load_labelled_pairs(tiny_file(tmp_path)).pairs
    rows, _ = asyncio.run(
        judge_rows(Rambling(), pairs, constitution=CONSTITUTION, config=JudgeConfig(), quiet=True)
    )
    report = summarize(rows)
    assert report.agreement is None and report.decided == 0
    assert report.parse == ParseCounts(unparsed_orders=16, error_orders=0, rows_without_label=8)
    assert report.calibration.ece is None and report.calibration.points == 0
    assert report.warnings[0].startswith("no row was decided (0 ties, 8 without a parsed verdict)")


def test_hh_prefix_mismatch_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "hh.jsonl"
    rows = [
        {
            "chosen": hh("hi", "hello", "how are you?", "fine"),
            "rejected": hh("hi", "hello", "how are you?", "bad"),
        },
        {
            "chosen": hh("hi", "hello", "tell me", "sure thing"),
            "rejected": hh("hi", "go away", "tell me", "no"),
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    data = load_labelled_pairs(path)
    assert data.format == "hh-rlhf"
    assert data.mismatched == [2]
    first, second = data.pairs
    assert [m.content for m in first.conversation] == ["hi", "hello", "how are you?"]
    assert (first.chosen, first.rejected) == ("fine", "bad")
    # The diverging row compares the continuations of the shared turns; baselines still see final replies.
    assert [m.content for m in second.conversation] == ["hi"]
    assert second.chosen == "hello\n\nHuman: tell me\n\nAssistant: sure thing"
    assert (second.chosen_reply, second.rejected_reply) == ("sure thing", "no")
    assert not second.prefix_match


def test_prompt_chosen_rejected_rows(tmp_path: Path) -> None:
    path = tmp_path / "pcr.jsonl.gz"
    rows = [
        {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."},
        {
            "prompt": [{"role": "user", "content": "Say bye"}],
            "chosen": [{"role": "assistant", "content": "Bye!"}],
            "rejected": [{"role": "assistant", "content": "Whatever"}],
        },
    ]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in rows))
    data = load_labelled_pairs(path)
    assert data.format == "prompt-chosen-rejected"
    assert [(p.chosen, p.rejected) for p in data.pairs] == [("Hi!", "No."), ("Bye!", "Whatever")]
    assert data.pairs[1].conversation[0].content == "Say bye"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json\n", ":1: not valid JSON"),
        ('{"chosen": "x"}\n', ":1: a row needs `chosen` and `rejected`"),
        ('{"chosen": "\\n\\nAssistant: a", "rejected": "b"}\n', ":1: hh-rlhf `rejected` has no"),
        (
            '{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
            '{"chosen": "\\n\\nAssistant: a", "rejected": "\\n\\nAssistant: b"}\n',
            "mixes",
        ),
    ],
)
def test_bad_labelled_files(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PromptSetError, match=re.escape(needle)):
        load_labelled_pairs(path)


def baseline_agreement(path: Path, name: str) -> float | None:
    return summarize(baseline_rows(load_labelled_pairs(path).pairs, name, seed=0)).agreement


def test_baselines_on_a_tiny_file(tmp_path: Path) -> None:
    path = tiny_file(tmp_path)  # the good reply is longer in every row; 6 of 8 chosen replies are good
    assert baseline_agreement(path, "longer") == pytest.approx(6 / 8)
    assert baseline_agreement(path, "shorter") == pytest.approx(2 / 8)
    assert baseline_agreement(path, "first") == pytest.approx(4 / 8)
    assert 0 <= (baseline_agreement(path, "random") or 0) <= 1


def test_equal_lengths_are_a_tie_and_a_file_of_ties_has_no_agreement(tmp_path: Path) -> None:
    path = tmp_path / "tie.jsonl"
    rows = [
        {"prompt": "p", "chosen": " same ", "rejected": "SAME"},
        {"prompt": "q", "chosen": "a", "rejected": "bb"},
    ]
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    assert baseline_agreement(path, "shorter") is None
    assert baseline_agreement(path, "longer") is None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert baseline_agreement(path, "shorter") == pytest.approx(0.75)  # one right, one tie
    assert baseline_agreement(path, "longer") == pytest.approx(0.25)


@pytest.mark.skipif(not HH_TEST.is_file(), reason="shared hh-rlhf test file not present")
def test_shorter_reply_baseline_on_hh_rlhf_harmless_is_exactly_55_3_percent() -> None:
    data = load_labelled_pairs(HH_TEST)
    assert len(data.pairs) == 2312
    assert len(data.mismatched) == 5
    report = summarize(baseline_rows(data.pairs, "shorter"), data)
    # The known figure, 55.3%, counts the 11 equal-length pairs as losses: 1,278 wins of 2,312.
    assert report.ties == 11 and report.decided == 2301
    assert report.agreement_decisive.value is not None
    assert report.agreement_decisive.value * 2301 == pytest.approx(1278)
    assert f"{100 * 1278 / 2312:.1f}" == "55.3"
    # A tie counts half in the headline.
    assert report.agreement == (1278 + 11 / 2) / 2312
    assert percent(report.agreement) == "55.5%"
    assert report.data is not None and report.data.empty_chosen == 4


def test_wilson_interval() -> None:
    lo, hi = wilson(8, 10)  # type: ignore[misc]
    assert (lo, hi) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson(0, 0) is None
    assert wilson(0, 5)[0] == 0.0  # type: ignore[index]


def test_ece_and_brier_of_a_known_set() -> None:
    points = [(1.0, True), (1.0, False), (0.0, False), (0.5, True), (0.5, False)]
    bins = reliability_bins(points)
    assert sum(b.n for b in bins) == 5  # each point once
    # At p=1 one of two came true (error 0.5, weight 2/5); p=0 and p=0.5 are exact.
    assert expected_calibration_error(bins) == pytest.approx(0.2)
    assert brier_score(points) == pytest.approx((0 + 1 + 0 + 0.25 + 0.25) / 5)
    assert expected_calibration_error(reliability_bins([(0.5, True), (0.5, False)])) == pytest.approx(0.0)
    assert brier_score([(0.5, True), (0.5, False)]) == pytest.approx(0.25)
    assert expected_calibration_error(reliability_bins([])) is None and brier_score([]) is None


def test_calibration_has_one_point_per_row(tmp_path: Path) -> None:
    report, rows, *_ = judged(tiny_file(tmp_path), prefers_good)
    calibration = report.calibration
    assert calibration.points == sum(b.n for b in calibration.bins) == 8  # not 16: one point per row
    assert "one point per row" in calibration.label and "averaged over both orders" in calibration.label
    # The point is P(response A better) with outcome "A is the chosen one": labels 0.8 (right) and 0.2
    # (wrong) give P(A) 0.8 or 0.2 by position, so both outcomes occur in both occupied bins.
    assert calibration_points(rows) == [
        (r.p_chosen if r.chosen_first else 1 - r.p_chosen, r.chosen_first)  # type: ignore[operator]
        for r in rows
    ]
    full = [b for b in calibration.bins if b.n]
    assert [(b.mean_p, b.n) for b in full] == [(pytest.approx(0.2), 4), (pytest.approx(0.8), 4)]
    # prefers_good is right on 6 of 8 rows with confidence 0.8: ECE |0.8 - 0.75| = 0.05.
    assert calibration.ece == pytest.approx(0.05)
    assert calibration.brier == pytest.approx((6 * 0.2**2 + 2 * 0.8**2) / 8)


def test_a_label_that_ignores_the_content_is_not_perfectly_calibrated(tmp_path: Path) -> None:
    # "Always the first position" says P(A) = 1 for every row; A is the chosen reply for half of them.
    report = summarize(baseline_rows(load_labelled_pairs(tiny_file(tmp_path)).pairs, "first", seed=0))
    (only,) = [b for b in report.calibration.bins if b.n]
    assert (only.n, only.mean_p, only.observed) == (8, 1.0, 0.5)
    assert report.calibration.ece == pytest.approx(0.5) and report.calibration.brier == pytest.approx(0.5)


def test_the_plot_title_is_wrapped_whole_inside_the_figure() -> None:
    import matplotlib.pyplot as plt

    title = "a-very-long-judge-name-" * 4 + " on some_labelled_file.jsonl: 438 rows, one point per row " * 2
    fig = reliability_figure(reliability_bins([(0.3, True), (0.9, True)]), title=title, xlabel=CALIBRATION)
    try:
        fig.canvas.draw()
        shown = fig.axes[0].title
        assert "".join(shown.get_text().split()) == "".join(title.split())  # every character, wrapped
        box, page = shown.get_window_extent(), fig.bbox
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1
        assert "one point per row" in fig.axes[1].get_xlabel().replace("\n", " ")
    finally:
        plt.close(fig)


def test_evaluate_judge_writes_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.json"
    config = RunConfig.model_validate({"prompts": {"path": "unused"}})
    report = evaluate_judge(tiny_file(tmp_path), config=config, baseline="longer", json_path=out)
    saved = json.loads(out.read_text())
    assert saved["agreement"] == report.agreement == pytest.approx(6 / 8)
    assert saved["judge"] == "baseline:longer" and saved["warnings"] == []
    assert Path(saved["calibration"]["plot"]) == out.with_name("report.reliability.png")
    assert out.with_name("report.reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert JudgeEvaluation.model_validate(saved) == report
    assert report.startup_seconds is None  # a baseline starts no server


def test_cli_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlaif.cli.main import main

    out = tmp_path / "b.json"
    monkeypatch.setenv("COLUMNS", "200")
    argv = [
        "rlaif",
        "evaluate",
        "judge",
        "--data",
        str(tiny_file(tmp_path)),
        "--baseline",
        "shorter",
        "--json",
        str(out),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
        sys.exit(0)
    assert info.value.code in (0, None)
    assert json.loads(out.read_text())["agreement"] == pytest.approx(2 / 8)
    output = capsys.readouterr().out
    assert "25.0% of 8 labelled rows" in output and "warning" not in output


def test_cli_without_a_decided_row_says_n_a_warns_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlaif.cli.main import main

    data, out = tmp_path / "even.jsonl", tmp_path / "even.json"
    rows = [{"prompt": f"q{i}", "chosen": f"answer {i}", "rejected": f"reply {i}!"[:8]} for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "200")
    argv = ["rlaif", "evaluate", "judge", "--data", str(data), "--baseline", "shorter", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    output = capsys.readouterr().out
    assert "n/a (no row decided)" in output and "no row was decided (4 ties" in output
    saved = json.loads(out.read_text())
    assert saved["agreement"] is None and saved["decided"] == 0 and len(saved["warnings"]) == 1


def test_cli_unknown_baseline_is_a_usage_error_listing_the_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlaif.cli.main import main

    monkeypatch.setattr(
        sys, "argv", ["rlaif", "evaluate", "judge", "--data", str(tiny_file(tmp_path)), "--baseline", "coin"]
    )
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "'coin' is not one of 'random', 'first', 'shorter', 'longer'" in err and "Traceback" not in err


def test_an_interrupted_evaluation_resumes(tmp_path: Path) -> None:
    pairs = load_labelled_pairs(tiny_file(tmp_path)).pairs
    path = tmp_path / "judgments.jsonl"
    config = JudgeConfig()

    def once(backend: FakeBackend, upto: int) -> list[float | None]:
        store = Stage(path, Judgment)
        rows, _ = asyncio.run(
            judge_rows(
                backend, pairs[:upto], constitution=CONSTITUTION, config=config, quiet=True, store=store
            )
        )
        return [r.p_chosen for r in rows]

    first = FakeBackend(p_first=prefers_good)
    once(first, 5)  # a run with --limit 5, or one interrupted after 5 rows
    assert len(first.requests) == 10 and len(Stage(path, Judgment)) == 5
    second = FakeBackend(p_first=prefers_good)
    labels = once(second, 8)
    assert len(second.requests) == 6  # only the 3 rows not stored yet
    assert len(Stage(path, Judgment)) == 8
    third = FakeBackend(p_first=prefers_good)
    assert once(third, 8) == labels and third.requests == []


def principled_file(tmp_path: Path, *ids: str | None) -> Path:
    rows = []
    for i, pid in enumerate(ids):
        row: dict[str, object] = {
            "prompt": f"question {i}?",
            "chosen": f"a good reply {i}",
            "rejected": f"bad {i}",
        }
        if pid is not None:
            row["principle_id"] = pid
        rows.append(row)
    path = tmp_path / "principled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_row_naming_its_principle_is_judged_under_it_and_counted_per_principle(tmp_path: Path) -> None:
    harm, privacy = (CONSTITUTION.principle(pid) for pid in ("harm-general", "privacy"))
    path = principled_file(tmp_path, "harm-general", "privacy", None, "harm-general", None)
    report, rows, judgments, backend = judged(path, prefers_good, ensemble=2)
    assert [r.principle_id for r in rows] == ["harm-general", "privacy", None, "harm-general", None]
    # A fixed principle is one member, whatever the ensemble; a sampled row keeps its two draws.
    assert [j.principle_ids for j in judgments][:2] == [("harm-general",), ("privacy",)]
    assert len(judgments[2].principle_ids) == 2
    for request in backend.requests:
        text = request.messages[0]["content"]
        row = int(re.search(r"question (\d)\?", text).group(1))  # type: ignore[union-attr]
        if row in (0, 3):
            assert harm.judge_question in text and privacy.judge_question not in text
        elif row == 1:
            assert privacy.judge_question in text and harm.judge_question not in text
    # Per principle: only the rows judged under a fixed principle.
    assert set(report.per_principle) == {"harm-general", "privacy"}
    assert report.per_principle["harm-general"].n == 2 and report.per_principle["privacy"].n == 1
    data = load_labelled_pairs(path)
    assert summarize(rows, data).data.principle_rows == 3  # type: ignore[union-attr]


def test_an_unknown_principle_id_is_one_error_with_its_row_before_any_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlaif.evaluate import judge as module

    path = principled_file(tmp_path, "privacy", None, "no-such-principle")
    with pytest.raises(PromptSetError) as info:
        judged(path, prefers_good)
    assert str(info.value).startswith("line 3: principle_id 'no-such-principle' is not a principle of")

    def no_server(*args: object) -> object:
        raise AssertionError("a server was started")

    monkeypatch.setattr(module, "_eval_backend", no_server)
    config = RunConfig.model_validate({"prompts": {"path": "unused"}})
    with pytest.raises(PromptSetError) as info:
        evaluate_judge(path, config=config)
    message = str(info.value)
    assert message.startswith(
        f"{path}:3: principle_id 'no-such-principle' is not a principle of constitution"
    )
    assert "privacy" in message and "leave principle_id out" in message


def test_timing_leaves_server_start_up_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import time

    from rlaif.evaluate import judge as module

    @contextlib.contextmanager
    def slow_server(config: RunConfig, log_dir: Path):  # type: ignore[no-untyped-def]
        time.sleep(0.6)  # what starting a managed server costs, in miniature
        yield {}

    async def judge_served(args, data, constitution, config, quiet, store):  # type: ignore[no-untyped-def]
        backend = FakeBackend(p_first=prefers_good)
        rows, judgments = await judge_rows(
            backend, data.pairs, constitution=constitution, config=config.judge, quiet=True, store=store
        )
        return rows, judgments, "fake-judge"

    monkeypatch.setattr(module, "_eval_backend", slow_server)
    monkeypatch.setattr(module, "_judge_served", judge_served)
    monkeypatch.setattr(module, "cache_dir", lambda *parts: (tmp_path / "cache").joinpath(*parts))
    config = RunConfig.model_validate({"prompts": {"path": "unused"}})
    out = tmp_path / "judge.json"
    report = evaluate_judge(tiny_file(tmp_path), config=config, json_path=out)
    assert report.startup_seconds is not None and report.startup_seconds >= 0.6
    assert report.seconds is not None and report.seconds < 0.6
    assert report.judge == "fake-judge" and report.engine == "vLLM server" and report.orders_parsed == 16
    saved = json.loads(out.read_text())
    assert (saved["seconds"], saved["startup_seconds"]) == (report.seconds, report.startup_seconds)
