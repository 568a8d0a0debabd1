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
from rlaif.evaluate.judge import baseline_rows, chosen_first, evaluate_judge, judge_rows, summarize
from rlaif.evaluate.stats import expected_calibration_error, reliability_bins, wilson
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.labelled import load_labelled_pairs
from rlaif.records import Judgment
from rlaif.store import Stage

HH_TEST = Path(__file__).resolve().parents[4] / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
CONSTITUTION = load_constitution(find_constitution("harmless"))


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
    assert report["n"] == 8
    assert report["agreement"] == pytest.approx(6 / 8)
    assert report["agreement_method"] == "two orders averaged"
    assert report["agreement_one_order"]["value"] == pytest.approx(6 / 8)
    assert report["agreement_two_orders"]["value"] == pytest.approx(6 / 8)
    assert report["order_consistency"]["value"] == 1.0
    assert report["same_position_rate"]["value"] == 0.0
    assert report["parse"] == {"unparsed_orders": 0, "error_orders": 0, "rows_without_label": 0}
    lo, hi = report["agreement_ci95"]
    assert lo < 0.75 < hi
    assert sum(r["n"] for r in report["per_principle"].values()) == 8
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


def test_position_bias_is_not_agreement(tmp_path: Path) -> None:
    # A judge that always says A agrees on exactly the half of rows where the chosen reply is at A.
    report, *_ = judged(tiny_file(tmp_path), 0.9)
    assert report["agreement_one_order"]["value"] == pytest.approx(0.5)
    assert report["first_order_picks_a"]["value"] == 1.0
    # Averaged over both orders every label is exactly 0.5: a tie, never agreement.
    assert report["agreement"] == 0.0
    assert report["ties"] == 8
    assert report["order_consistency"]["value"] == 0.0
    assert report["same_position_rate"]["value"] == 1.0


def test_one_order(tmp_path: Path) -> None:
    report, rows, _, backend = judged(tiny_file(tmp_path), prefers_good, both_orders=False)
    assert len(backend.requests) == 8
    assert report["agreement_method"] == "one order"
    assert report["agreement"] == pytest.approx(6 / 8)
    assert report["agreement_two_orders"] is None
    assert report["order_consistency"] is None
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
    assert report["agreement"] == 0.0
    assert report["parse"] == {"unparsed_orders": 16, "error_orders": 0, "rows_without_label": 8}
    assert report["calibration"]["ece"] is None


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


def baseline_agreement(path: Path, name: str) -> float:
    return summarize(baseline_rows(load_labelled_pairs(path).pairs, name, seed=0))["agreement"]


def test_baselines_on_a_tiny_file(tmp_path: Path) -> None:
    path = tiny_file(tmp_path)  # the good reply is longer in every row; 6 of 8 chosen replies are good
    assert baseline_agreement(path, "longer") == pytest.approx(6 / 8)
    assert baseline_agreement(path, "shorter") == pytest.approx(2 / 8)
    assert baseline_agreement(path, "first") == pytest.approx(4 / 8)
    assert 0 <= baseline_agreement(path, "random") <= 1


def test_equal_lengths_count_as_not_chosen(tmp_path: Path) -> None:
    path = tmp_path / "tie.jsonl"
    path.write_text(
        json.dumps({"prompt": "p", "chosen": " same ", "rejected": "SAME"}) + "\n", encoding="utf-8"
    )
    assert baseline_agreement(path, "shorter") == 0.0
    assert baseline_agreement(path, "longer") == 0.0


@pytest.mark.skipif(not HH_TEST.is_file(), reason="shared hh-rlhf test file not present")
def test_shorter_reply_baseline_on_hh_rlhf_harmless_is_exactly_55_3_percent() -> None:
    data = load_labelled_pairs(HH_TEST)
    assert len(data.pairs) == 2312
    assert len(data.mismatched) == 5
    report = summarize(baseline_rows(data.pairs, "shorter"), data)
    assert report["agreement"] * 2312 == pytest.approx(1278)
    assert report["agreement"] == 1278 / 2312
    assert f"{100 * report['agreement']:.1f}" == "55.3"
    assert report["data"]["empty_chosen"] == 4


def test_wilson_interval() -> None:
    lo, hi = wilson(8, 10)  # type: ignore[misc]
    assert (lo, hi) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson(0, 0) is None
    assert wilson(0, 5)[0] == 0.0  # type: ignore[index]


def test_ece_of_a_known_set() -> None:
    bins = reliability_bins([1.0, 1.0, 0.0, 0.5])
    # Symmetrised: at p=1 two of three came true, at p=0 one of three did, at 0.5 one of two.
    assert expected_calibration_error(bins) == pytest.approx(0.25)
    assert expected_calibration_error(reliability_bins([0.5, 0.5])) == pytest.approx(0.0)
    assert expected_calibration_error(reliability_bins([])) is None


def test_evaluate_judge_writes_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.json"
    config = RunConfig.model_validate({"prompts": {"path": "unused"}})
    report = evaluate_judge(tiny_file(tmp_path), config=config, baseline="longer", json_path=out)
    saved = json.loads(out.read_text())
    assert saved["agreement"] == report["agreement"] == pytest.approx(6 / 8)
    assert saved["judge"] == "baseline:longer"
    assert Path(saved["calibration"]["plot"]) == out.with_name("report.reliability.png")
    assert out.with_name("report.reliability.png").read_bytes()[:4] == b"\x89PNG"


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
    assert "25.0%" in capsys.readouterr().out


def test_cli_unknown_baseline_is_one_line_error(
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
    assert "unknown baseline 'coin'" in err and "Traceback" not in err


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
