"""The review gate before training, and human verdicts overriding the AI's labels in the export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rlaif.config import RunConfig, load_config
from rlaif.errors import GateError
from rlaif.pipeline.export import export_pairs, pair_row
from rlaif.records import CritiqueRound, PreferencePair, ReviewDecision, Revision
from rlaif.review.gate import check_gate
from rlaif.review.session import current_decisions
from rlaif.store import RunDir
from rlaif.templates import template_hash
from rlaif.train.reports import TrainResult
from tests.support.review import PROVENANCE, decision, make_pair, make_pairs

GATE = {"gate": {"min_agreement": 0.7, "min_reviewed": 10}}


def config(tmp_path: Path, review: dict[str, Any] | None = None) -> RunConfig:
    return RunConfig.model_validate(
        {
            "run_dir": str(tmp_path),
            "prompts": {"path": "p.jsonl"},
            "review": review if review is not None else GATE,
        }
    )


def store(path: Path, decisions: list[ReviewDecision]) -> None:
    with RunDir(path) as run:
        run.stage("reviews", ReviewDecision).append(decisions)


def test_no_gate_configured(tmp_path: Path) -> None:
    assert check_gate(tmp_path, config(tmp_path, review={})) is None


def test_too_few_reviews_fail_with_a_clear_message(tmp_path: Path) -> None:
    store(tmp_path, [decision(p, "chosen") for p in make_pairs(3)])
    with pytest.raises(GateError) as info:
        check_gate(tmp_path, config(tmp_path))
    message = str(info.value)
    assert "only 3 reviewed pairs" in message and "need 10" in message
    assert "rlaif review terminal" in message and "--force" in message


def test_low_agreement_fails_high_passes_force_overrides(tmp_path: Path) -> None:
    pairs = make_pairs(20)
    low = tmp_path / "low"
    store(low, [decision(p, "chosen" if i < 12 else "rejected") for i, p in enumerate(pairs)])
    with pytest.raises(GateError, match="accuracy 0.600 is below min_agreement 0.7"):
        check_gate(low, config(low))
    status = check_gate(low, config(low), force=True)
    assert status is not None and not status.passed
    high = tmp_path / "high"
    store(high, [decision(p, "chosen" if i < 16 else "rejected") for i, p in enumerate(pairs)])
    passed = check_gate(high, config(high))
    assert passed is not None and passed.passed and passed.value == pytest.approx(0.8)


def test_flags_and_ties_do_not_count_toward_accuracy_pairs(tmp_path: Path) -> None:
    pairs = make_pairs(12)
    verdicts = ["flag"] * 3 + ["chosen"] * 9
    store(tmp_path, [decision(p, v) for p, v in zip(pairs, verdicts, strict=True)])
    with pytest.raises(GateError, match="only 9 reviewed pairs"):
        check_gate(tmp_path, config(tmp_path))


def test_kappa_metric_and_a_run_dir_the_caller_holds(tmp_path: Path) -> None:
    pairs = make_pairs(30)
    store(tmp_path, [decision(p, "chosen") for p in pairs])
    kappa = config(tmp_path, review={"gate": {"min_agreement": 0.9, "min_reviewed": 30, "metric": "kappa"}})
    with RunDir(tmp_path) as run:  # the pipeline holds the lock while it checks
        status = check_gate(run, kappa)
    assert status is not None and status.metric == "kappa" and status.value == pytest.approx(1.0)


# --- overrides in the export --------------------------------------------------------------------------


def test_pair_row_swaps_on_a_human_rejected() -> None:
    pair = make_pair(1, score=0.8)
    row = pair_row(pair, human_verdict="rejected", reviewers=2)
    assert row["chosen"][0]["content"] == pair.rejected and row["rejected"][0]["content"] == pair.chosen
    assert row["score"] == pytest.approx(0.2)
    assert (row["human_reviewed"], row["human_verdict"], row["human_reviewers"]) == (True, "rejected", 2)
    plain = pair_row(pair)
    assert (plain["human_reviewed"], plain["human_verdict"], plain["chosen"][0]["content"]) == (
        False,
        None,
        pair.chosen,
    )


def test_export_applies_overrides_and_drops_ties_and_flags(tmp_path: Path) -> None:
    pairs = make_pairs(5)
    standing = current_decisions(
        [
            decision(pairs[0], "chosen"),
            decision(pairs[1], "rejected"),
            decision(pairs[2], "tie"),
            decision(pairs[3], "chosen"),
            decision(pairs[3], "flag", "bob"),
        ]
    )
    export_pairs(pairs, tmp_path, decisions=standing)
    rows = {r["pair_id"]: r for r in map(json.loads, (tmp_path / "pairs.jsonl").read_text().splitlines())}
    assert set(rows) == {pairs[0].id, pairs[1].id, pairs[4].id}
    assert rows[pairs[0].id]["human_verdict"] == "chosen"
    assert rows[pairs[1].id]["chosen"][0]["content"] == pairs[1].rejected
    assert rows[pairs[4].id]["human_reviewed"] is False
    assert (tmp_path / "pairs").is_dir()


# --- the pipeline and the CLI refuse to train --------------------------------------------------------------


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Any]]:
    """A run with one revision pair exported, and a fake trainer that records its calls."""
    from rlaif.inputs.load import load_inputs
    from rlaif.pipeline.run import run_pipeline
    from rlaif.train import dpo

    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": "How do I pick a lock?"}) + "\n")
    path = tmp_path / "run.yaml"
    path.write_text(
        f"run_dir: {tmp_path / 'run'}\nprompts: {{path: p.jsonl}}\nmodel: {{path: dummy-model}}\n"
        "review: {gate: {min_agreement: 0.7, min_reviewed: 5}}\nquality: {min_pairs: 1}\n"
    )
    cfg = load_config(path)
    constitution, prompts = load_inputs(cfg)
    # made "today": the pipeline exports only records of the current constitution and templates
    provenance = PROVENANCE.model_copy(
        update={"constitution_hash": constitution.hash, "template_hash": template_hash("revise")}
    )
    with RunDir(cfg.run_dir) as run:
        run.stage("revisions", Revision).append(
            [
                Revision(
                    id="rev-1",
                    prompt_id=prompts[0].id,
                    response_id="res-1",
                    original="Use a pin.",
                    rounds=(CritiqueRound(principle_id="harm", critique="c", revision="Ask a locksmith."),),
                    provenance=provenance,
                )
            ]
        )
    run_pipeline(cfg, stages=("export",), quiet=True)
    calls: list[Any] = []

    def fake_train(dataset_dir: Path, **kwargs: Any) -> TrainResult:
        calls.append(dataset_dir)
        return TrainResult(output_dir=Path(kwargs["output_dir"]), steps=1, seconds=0.1, losses=[0.7])

    monkeypatch.setattr(dpo, "train_dpo", fake_train)
    return path, calls


def test_train_dpo_refuses_without_force_and_trains_on_corrected_labels_with_it(
    exported: tuple[Path, list[Any]],
) -> None:
    from rlaif.cli.main import app

    path, calls = exported
    run_dir = load_config(path).run_dir
    with RunDir(run_dir) as run:
        pair = next(iter(run.stage("pairs", PreferencePair)))
        run.stage("reviews", ReviewDecision).append([decision(pair, "rejected")])
    result = CliRunner().invoke(app, ["train", "dpo", str(path), "--quiet"])
    assert isinstance(result.exception, GateError) and calls == []
    assert "only 1 reviewed pairs" in str(result.exception)
    result = CliRunner().invoke(app, ["train", "dpo", str(path), "--quiet", "--force"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    rows = [json.loads(line) for line in (Path(run_dir) / "export" / "pairs.jsonl").read_text().splitlines()]
    assert rows[0]["human_verdict"] == "rejected" and rows[0]["chosen"][0]["content"] == "Use a pin."


def test_export_runs_while_a_reviewer_is_at_work(exported: tuple[Path, list[Any]]) -> None:
    """A reviewer's session holds no run-directory lock: `rlaif export` (which takes it) runs beside it
    and exports the decision the reviewer just made; the reviewer goes on deciding afterwards."""
    from rlaif.cli.main import app
    from rlaif.records import ReviewAnswer
    from rlaif.review.session import ReviewSession
    from tests.support.review import settings

    path, _ = exported
    run_dir = load_config(path).run_dir
    with RunDir(run_dir, lock=False) as run:
        pairs = list(run.stage("pairs", PreferencePair))
        session = ReviewSession(run, pairs, settings("alice"), via="web")
        made = session.decide(ReviewAnswer(pair_id=pairs[0].id, verdict="first"))
        result = CliRunner().invoke(app, ["export", str(path), "--quiet"])
        assert result.exit_code == 0, result.output
        session.undo()  # still reviewing: the next decisions land too
        session.decide(ReviewAnswer(pair_id=pairs[0].id, verdict="flag"))
    rows = [json.loads(line) for line in (Path(run_dir) / "export" / "pairs.jsonl").read_text().splitlines()]
    assert [r["human_verdict"] for r in rows] == [made.verdict]
    with RunDir(run_dir) as run:
        assert [d.verdict for d in run.stage("reviews", ReviewDecision)] == [made.verdict] * 2 + ["flag"]
