"""`rlaif bench-trust`: the synthetic world's truth is exact, its judges behave as documented, and the
machinery moves a biased judge's data the right way; the committed results back the docs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rlaif.bench.reports import TrustBench
from rlaif.bench.stub_server import completion
from rlaif.bench.synthetic import (
    POLICY,
    JudgeSpec,
    answer,
    canonical,
    merit,
    prompt_text,
    quality,
    single_order_accuracy,
    tag_of,
    two_order_expectation,
    words,
)
from rlaif.bench.trust import run_trust_bench
from rlaif.cli.tables.bench import trust_markdown
from rlaif.pipeline.probes import padded, repeated, truncated
from rlaif.reports import percent
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "examples" / "results"


def _answer(i: int, seed: int) -> str:
    return answer({"messages": [{"role": "user", "content": prompt_text(i)}], "seed": seed})


def _judge_body(spec: JudgeSpec, topic: int, first: str, second: str, nonce: str) -> dict[str, object]:
    shown = (
        f"The conversation:\nHuman: {prompt_text(topic)}\n\n<response_A_{nonce}>\n{first}\n"
        f"</response_A_{nonce}>\n\n<response_B_{nonce}>\n{second}\n</response_B_{nonce}>\n\nAnswer A or B."
    )
    return {"model": spec.name, "messages": [{"role": "user", "content": shown}], "logprobs": True,
            "structured_outputs": {"choice": ["A", "B"]}}  # fmt: skip


def test_an_answer_is_its_tag_and_every_spoiled_copy_loses() -> None:
    text = _answer(7, seed=3)
    tag = tag_of(text)
    assert tag is not None and tag.startswith("q0007-") and canonical(tag) == text
    assert len(text.split()) == words(tag) and 12 <= words(tag) <= 72
    assert merit(text, "q0007") == quality(tag) and 0 <= quality(tag) < 1
    spoiled = [padded(text, seed=0, key="k"), truncated(text), repeated(text)]
    assert all(s is not None and merit(s, "q0007") == -1.0 for s in spoiled)
    assert merit(text, "q0008") == -1.0  # another prompt's answer: off topic
    # Length and quality come from different bits of the tag: independent.
    tags = [tag_of(_answer(i, seed=s)) for i in range(300) for s in range(2)]
    lengths, qualities = [words(t) for t in tags if t], [quality(t) for t in tags if t]
    mean_l, mean_q = sum(lengths) / len(lengths), sum(qualities) / len(qualities)
    covariance = sum((x - mean_l) * (y - mean_q) for x, y in zip(lengths, qualities, strict=True))
    spread = (sum((x - mean_l) ** 2 for x in lengths) * sum((y - mean_q) ** 2 for y in qualities)) ** 0.5
    assert abs(covariance / spread) < 0.1


@pytest.mark.parametrize(
    ("a", "ln", "q"), [(0.9, 0.0, 0.0), (0.6, 0.6, 0.0), (0.75, 0.3, 0.3), (0.5, 0.0, 1.0)]
)
def test_a_synthetic_judge_is_right_as_often_as_its_formula_says(a: float, ln: float, q: float) -> None:
    spec, rng, right, n = JudgeSpec(a, ln, q), random.Random(0), 0, 2000
    for i in range(n):
        first, second = _answer(i, seed=1), _answer(i, seed=2)
        if len(first.split()) == len(second.split()):
            second = _answer(i, seed=3 + rng.randrange(10**6))
        picked, p = spec.pick(_judge_body(spec, i, first, second, nonce=f"n{i}"))
        assert 0.6 <= p <= 0.95
        better = 0 if merit(first, f"q{i:04d}") > merit(second, f"q{i:04d}") else 1
        right += picked == better
    assert right / n == pytest.approx(single_order_accuracy(a, ln, q), abs=0.03)


def test_the_stub_serves_the_synthetic_world_by_model_name() -> None:
    plain = completion(
        {"model": POLICY, "messages": [{"role": "user", "content": prompt_text(3)}], "seed": 1}
    )
    text = plain["choices"][0]["message"]["content"]
    assert tag_of(text) is not None and tag_of(text).startswith("q0003-")  # type: ignore[union-attr]
    spec = JudgeSpec(1.0, 0.0, 0.0)
    good, bad = sorted([_answer(3, seed=1), _answer(3, seed=2)], key=lambda t: -merit(t, "q0003"))
    for first, second, letter in ((good, bad, "A"), (bad, good, "B")):
        choice = completion(_judge_body(spec, 3, first, second, nonce="x"))["choices"][0]
        assert choice["message"]["content"] == letter
    with pytest.raises(ValueError, match="accuracy 1.5 must be between 0 and 1"):
        JudgeSpec(1.5, 0.0, 0.0)


def test_expected_figures() -> None:
    assert single_order_accuracy(0.9, 0.0, 0.3) == pytest.approx(0.78)
    agree, right = two_order_expectation(0.75, 0.0, 0.0)
    assert agree == pytest.approx(0.625) and right == pytest.approx(0.9)
    assert two_order_expectation(0.5, 0.6, 0.0)[1] == pytest.approx(0.5)  # length alone: no signal


def test_a_tiny_grid_refuses_the_length_judge_and_cleans_the_competent_ones_data(tmp_path: Path) -> None:
    report = run_trust_bench([(0.5, 0.6, 0.0), (0.9, 0.0, 0.0)], prompts=60, folder=tmp_path)
    length, competent = report.cells
    # A judge that knows nothing of quality and prefers the longer answer 60% of the time: the naive
    # pipeline exports all its pairs at chance; rlaif's defaults refuse it, naming the length gate.
    assert length.naive.exported == 60 and not length.naive.refused and length.naive.failed_gates == []
    assert length.naive.label_accuracy.ci95 is not None and length.naive.label_accuracy.ci95[0] < 0.5
    assert length.rlaif.refused and "judge length bias" in length.rlaif.failed_gates
    assert length.rlaif.length_excess_low is not None and length.rlaif.length_excess_low > 0.25
    assert (length.rlaif.chose_longer.value or 0) > 0.85
    assert any(
        "judge length bias" in line and "explained by length" in line for line in length.rlaif.gate_lines
    )
    # A competent judge (a = 0.9, no bias): both pass; rlaif drops the pairs whose orders disagree, and
    # what it keeps is labelled right more often than the naive pipeline's single order.
    assert not competent.naive.refused and not competent.rlaif.refused, competent.rlaif.gate_lines
    assert competent.rlaif.exported < competent.naive.exported == 60
    naive, rlaif = competent.naive.label_accuracy.value, competent.rlaif.label_accuracy.value
    assert naive is not None and rlaif is not None and rlaif > naive
    assert competent.rlaif.probe_accuracy is not None and (competent.rlaif.probe_accuracy.value or 0) >= 0.8
    assert competent.naive.probe_accuracy is None and competent.naive.order_consistency is None
    # The measured accuracies are what the generative model expects on these very pairs.
    for cell in report.cells:
        for arm in (cell.naive, cell.rlaif):
            low, high = arm.label_accuracy.ci95 or (0, 1)
            assert arm.expected_accuracy is not None and low <= arm.expected_accuracy <= high, arm
    # The truth is counted from the exported files themselves.
    rows = [
        json.loads(x)
        for x in (tmp_path / "a0.90_l0.00_q0.00-rlaif" / "export" / "pairs.jsonl").read_text().splitlines()
    ]
    assert len(rows) == competent.rlaif.exported


def test_bench_trust_out_must_be_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    result = run_cli(capsys, monkeypatch)("bench-trust", "--out", str(file))
    assert result.returncode != 0 and "is a file; give a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_committed_results_back_the_table_and_the_docs() -> None:
    report = TrustBench.model_validate_json((RESULTS / "trust.json").read_text(encoding="utf-8"))
    table = trust_markdown(report)
    assert (RESULTS / "trust.md").read_text(encoding="utf-8") == table + "\n"
    assert (RESULTS / "trust.png").stat().st_size > 10_000
    assert len(report.cells) == 18 and report.prompts >= 200
    # The synthetic judges behave as their model says: the naive arm's one verdict, and rlaif's agreeing
    # pairs, hold the accuracy expected on these pairs in their 95% intervals in nearly every cell.
    arms = [arm for c in report.cells for arm in (c.naive, c.rlaif)]
    held = [
        a.label_accuracy.ci95 is not None
        and a.label_accuracy.ci95[0] <= (a.expected_accuracy or -1) <= a.label_accuracy.ci95[1]
        for a in arms
    ]
    assert sum(held) >= 32, held
    # The claims of the results page, from the same file.
    page = " ".join((ROOT / "docs" / "results" / "trust.md").read_text(encoding="utf-8").split())
    assert "<!-- results:trust -->" in page
    refused = [c for c in report.cells if c.rlaif.refused]
    passed = [c for c in report.cells if not c.rlaif.refused]
    assert f"rlaif refused {len(refused)} of the {len(report.cells)} judges" in page
    for cell in passed:
        rlaif, naive = cell.rlaif, cell.naive
        assert f"exported {rlaif.exported} pairs, {percent(rlaif.label_accuracy.value)}" in page
        assert (
            f"all {naive.exported} of the same judge's pairs, {percent(naive.label_accuracy.value)}" in page
        )
    naive = [c.naive.label_accuracy.value or 0 for c in report.cells]
    rlaif = [c.rlaif.label_accuracy.value or 0 for c in report.cells]
    assert all(r >= n for r, n in zip(rlaif, naive, strict=True))
    low, high = percent(min(rlaif)).rstrip("%"), percent(max(rlaif))
    assert f"({low}–{high} right against {percent(min(naive)).rstrip('%')}–{percent(max(naive))})" in page
    cell = next(
        c
        for c in report.cells
        if (c.judge.accuracy, c.judge.length_bias, c.judge.position_bias) == (0.9, 0, 0.3)
    )
    assert f"naive export is {percent(cell.naive.label_accuracy.value)} right" in page
    assert (
        f"{percent(cell.rlaif.label_accuracy.value)} right ({cell.rlaif.exported} of {report.prompts} kept)"
        in page
    )
    assert f"probes {percent(cell.rlaif.probe_accuracy.value if cell.rlaif.probe_accuracy else None)}" in page
    long = [c for c in report.cells if c.judge.length_bias == 0.6]
    assert all("judge length bias" in c.rlaif.failed_gates for c in long) and len(long) == 6
    assert f"{report.seconds:.0f} s in all" in page
    # The README's table is this file's, row for row.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for c in report.cells:
        j, n, r = c.judge, c.naive, c.rlaif
        verdict = (
            "**pass**"
            if not r.refused
            else "refused: " + ", ".join(g.removeprefix("judge ") for g in r.failed_gates)
        )
        row = (
            f"| {j.accuracy:.2f} / {j.length_bias:.2f} / {j.position_bias:.2f} "
            f"| {n.exported}, {percent(n.label_accuracy.value)} "
            f"| {r.exported}, {percent(r.label_accuracy.value)} "
            f"| {verdict} |"
        )
        assert row in readme, row
    kept = [c.rlaif.label_accuracy.value or 0 for c in passed]
    plain = [c.naive.label_accuracy.value or 0 for c in passed]
    assert f"{percent(min(kept)).rstrip('%')}–{percent(max(kept))} right" in readme
    assert f"{percent(min(plain)).rstrip('%')}–{percent(max(plain))}" in readme
    assert all(c.rlaif.refused for c in report.cells if c.judge.length_bias > 0)  # every length-biased judge
