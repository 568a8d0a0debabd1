"""Judge biases beyond position on a stub server (issue 28): a judge that always prefers the longer answer
is refused by the length gate; a competent length-blind one passes it; a self-judging run says so once."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.config import load_config
from rlaif.pipeline.run import run_pipeline
from tests.support.cli import run_cli
from tests.support.stub import JudgeReply, StubServer

PROMPTS = 40


class Answers:
    """The stub's answers, of seeded lengths (3 to 60 words), and the judges that read them."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, body: dict[str, Any], index: int) -> str:
        key = json.dumps([body.get("messages"), body.get("seed"), index], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        extra = int(hashlib.sha256(digest.encode()).hexdigest()[:4], 16) % 58
        text = f"answer {digest} " + " ".join(f"w{i}" for i in range(extra))
        self.texts.append(text)
        return text

    def candidates(self, body: dict[str, Any]) -> tuple[str, str]:
        """(A, B) of a judge request: the two known answers in the order they appear."""
        shown = json.dumps(body.get("messages"))
        found = sorted((shown.find(json.dumps(t)[1:-1]), t) for t in set(self.texts))
        first, second = [t for at, t in found if at >= 0][:2]
        return first, second

    def longer(self, body: dict[str, Any]) -> JudgeReply:
        """Prefers the longer candidate in both orders, with P = 0.9."""
        a, b = self.candidates(body)
        return _reply(0.9 if len(a.split()) > len(b.split()) else 0.1)

    def competent(self, body: dict[str, Any]) -> JudgeReply:
        """Knows a truth that has nothing to do with length (a hash of the answer), with P = 0.9."""
        a, b = self.candidates(body)
        return _reply(
            0.9 if hashlib.sha256(a.encode()).digest() > hashlib.sha256(b.encode()).digest() else 0.1
        )


def _reply(p_a: float) -> JudgeReply:
    return JudgeReply("A" if p_a > 0.5 else "B", {"A": math.log(p_a), "B": math.log(1 - p_a)})


def _config(stub: StubServer, tmp_path: Path) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Question {i}: how do I do task {i}?"}) + "\n"
                               for i in range(PROMPTS)))  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"),
        "prompts": {"path": str(prompts)},
        "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
        "revise": {"enabled": False},
        # The length gate alone: no universal probes (their spoiled answers are not the stub's texts,
        # and the probe gate would refuse the length-biased judge too; tests/unit/pipeline/test_probes.py).
        "judge": {"probes": {"share": 0}},
        "quality": {"min_probe_accuracy": None},
        "train": {"dpo": {"sources": ["judge"]}},
    }))  # fmt: skip
    return path


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a unit test must not train")

    monkeypatch.setattr("rlaif.pipeline.run.train_stage", refuse)


def test_a_judge_that_prefers_the_longer_answer_is_refused_by_the_length_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_training: None
) -> None:
    answers = Answers()
    with StubServer(judge_reply=answers.longer, answer=answers) as stub:
        config = _config(stub, tmp_path)
        result = run_cli(capsys, monkeypatch)("run", str(config), "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    quality = summary["quality"]
    failed = [g for g in quality["gates"] if g["passed"] is False]
    assert [g["name"] for g in failed] == ["judge length bias"]  # position gates pass: both orders agree
    length = summary["bias"]["length"]
    n = length["judged"]["n"]
    assert n + length["judged_equal"] == quality["exported"]["judge"] >= 30
    assert length["judged"]["value"] == 1.0 and length["reference_value"] == 0.5
    assert length["excess_low"] == pytest.approx(n / (n + 1.959963984540054**2) - 0.5)
    assert length["mean_log_ratio"] > 0.3 and length["cohens_h"] > 1.5
    # The refusal's line names the figures: share, interval, reference and n.
    lines = [line for line in result.stderr.splitlines() if "judge length bias" in line]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert f"in {n} of {n} judge pairs (100.0%, 95% CI [" in line and "against 50.0% (null" in line
    assert "is above the most allowed (25.0%)" in line and "explained by length" in line
    assert "nothing was trained" in result.stderr
    # The default config judges with the policy's own model: said once, and in the card.
    out = " ".join((result.stdout + result.stderr).split())
    assert out.count("the judge is the policy's own model") == 1
    card = (tmp_path / "run" / "export" / "README.md").read_text()
    assert (
        "**self-judging**: the judge is the policy's own model (stub-model; judge.model is not set)" in card
    )
    assert "- length bias (words): chose the longer answer in" in card


def test_a_competent_length_blind_judge_passes_the_length_gate(tmp_path: Path, no_training: None) -> None:
    answers = Answers()
    with StubServer(judge_reply=answers.competent, answer=answers) as stub:
        summary = run_pipeline(load_config(_config(stub, tmp_path)), stages=("respond", "judge", "export"),
                               quiet=True)  # fmt: skip
    assert summary.quality is not None and summary.quality.passed, summary.quality
    gate = next(g for g in summary.quality.gates if g.name == "judge length bias")
    assert gate.applies and gate.passed is True and gate.value is not None and gate.value < 0.1
    assert summary.bias is not None and summary.bias.length is not None
    assert 0.25 < (summary.bias.length.judged.value or 0) < 0.75
    assert summary.bias.self_judging is not None and summary.bias.self_preference is None


def test_pairs_mixing_another_models_answers_measure_self_preference(
    tmp_path: Path, no_training: None
) -> None:
    """rlaif samples both answers from one policy; here the second sample of every prompt is relabelled as
    another model's (same-length name, so the stage file's offsets hold) before the export reads them."""
    answers = Answers()
    with StubServer(judge_reply=answers.competent, answer=answers) as stub:
        config = load_config(_config(stub, tmp_path))
        run_pipeline(config, stages=("respond", "judge"), quiet=True)
        responses = tmp_path / "run" / "responses.jsonl"
        lines = [json.loads(line) for line in responses.read_text().splitlines()]
        for row in lines:
            if row["sample_index"] == 1:
                row["provenance"]["model"] = "othr-model"
        responses.write_text("".join(json.dumps(r) + "\n" for r in lines))
        summary = run_pipeline(config, stages=("export",), quiet=True)
    assert summary.bias is not None and summary.quality is not None
    own = summary.bias.self_preference
    assert own is not None and own.judge_model == "stub-model" and own.reference_value == 0.5
    assert own.judged.n == summary.quality.exported["judge"] and own.judged_equal == 0
    # The competent judge knows a hash-made truth: its own answers win about half the time.
    pairs = [
        json.loads(line) for line in (tmp_path / "run" / "export" / "pairs.jsonl").read_text().splitlines()
    ]
    first = {r["text"] for r in lines if r["sample_index"] == 0}
    chosen_own = sum(p["chosen"][0]["content"] in first for p in pairs)
    assert own.judged.value == pytest.approx(chosen_own / len(pairs)) and 0.2 < chosen_own / len(pairs) < 0.8
    gate = next(g for g in summary.quality.gates if g.name == "judge self-preference")
    assert gate.threshold is None and gate.value == own.excess_low  # off by default, figures shown
