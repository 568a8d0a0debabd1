"""The loop of `rlaif iterate` with a fake round (no server, no training): models chain round to round,
each round gets its own prompts, a finished round is never redone, stop rules fire with their figures,
a refused round ends the loop and is retried on rerun, a changed config is refused in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rlaif.config import RunConfig
from rlaif.errors import ConfigError, GateError
from rlaif.inputs.prompts import load_prompts
from rlaif.rounds import iterate, round_prompts
from tests.unit.rounds.conftest import FakeRounds

Make = Callable[..., RunConfig]


def test_each_round_serves_the_last_rounds_model_on_its_own_slice(
    fake: FakeRounds, make_config: Make
) -> None:
    config = make_config()
    report = iterate(config, quiet=True)
    root = Path(config.run_dir)
    assert [r.round for r in report.rounds] == [1, 2, 3] and report.status == "done"
    starts = [c.model.path for c in fake.pipelines]
    assert starts[0] == config.model.path
    assert starts[1] == str((root / "rounds/1/models/dpo").resolve())
    assert starts[2] == str((root / "rounds/2/models/dpo").resolve())
    assert all(not c.train.sft.enabled and c.train.dpo.enabled and c.iterate is None for c in fake.pipelines)
    slices = [
        [p.messages[-1].content for p in load_prompts(root / f"rounds/{r}/prompts.jsonl")] for r in (1, 2, 3)
    ]
    assert slices[0] == [f"Training question number {i}?" for i in range(4)]
    assert slices[1] == [f"Training question number {i}?" for i in range(4, 8)]
    assert slices[2] == [f"Training question number {i}?" for i in (8, 9, 0, 1)]  # wraps around
    # every round measured against the base on the same held-out prompts
    assert {e["base"] for e in fake.evaluations} == {config.model.path}
    first, second = report.rounds[0], report.rounds[1]
    assert first.gain == pytest.approx(0.2) and first.gain_vs_base == pytest.approx(0.2)
    assert second.gain == pytest.approx(0.2) and second.gain_vs_base == pytest.approx(0.4)
    assert second.gain_ci95 is not None and second.gain_ci95[0] > 0
    assert report.best_round == 3 and report.best_model == str(root / "rounds/3/models/dpo")
    assert report.base_rates["every check"].passed == 20
    assert (root / "rounds.png").stat().st_size > 1000
    assert json.loads((root / "iterate_report.json").read_text())["best_round"] == 3
    assert (root / "rounds/2/round.json").exists()


def test_resample_draws_a_seeded_sample_each_round(make_config: Make) -> None:
    config = make_config("{rounds: 2, heldout: heldout.jsonl, prompts_per_round: 5, selection: resample}")
    from rlaif.inputs.load import load_inputs

    prompts = load_inputs(config)[1]
    one, two = round_prompts(config, prompts, 1), round_prompts(config, prompts, 2)
    assert len(one) == len(two) == 5 and one != two
    assert one == round_prompts(config, prompts, 1)  # seeded: the same on a rerun


def test_a_kill_in_round_two_resumes_without_redoing_anything_done(
    fake: FakeRounds, make_config: Make
) -> None:
    config = make_config()
    fake.kill_evaluating(2)
    with pytest.raises(KeyboardInterrupt):
        iterate(config, quiet=True)
    assert [Path(c.run_dir).name for c in fake.pipelines] == ["1", "2"]
    fake.fail_evaluate = None
    report = iterate(config, quiet=True)
    # round 1 was finished and round 2's pipeline had trained: neither runs again, round 2 is evaluated
    assert [Path(c.run_dir).name for c in fake.pipelines] == ["1", "2", "3"]
    assert [e["round"] for e in fake.evaluations] == [1, 2, 2, 3]
    assert [r.round for r in report.rounds] == [1, 2, 3]
    # a third run does nothing at all
    iterate(config, quiet=True)
    assert len(fake.pipelines) == 3 and len(fake.evaluations) == 4


def test_min_gain_stops_with_its_interval_and_keeps_the_best_round(
    fake: FakeRounds, make_config: Make
) -> None:
    fake.every = {1: 40, 2: 41, 3: 90}
    config = make_config("{rounds: 3, heldout: heldout.jsonl, prompts_per_round: 4, stop: {min_gain: 0.05}}")
    report = iterate(config, quiet=True)
    assert report.status == "stopped" and [r.round for r in report.rounds] == [1, 2]
    assert report.stop is not None and report.stop.rule == "min_gain" and report.stop.round == 2
    assert "rose 1.0% over round 1" in report.stop.reason and "includes 0" in report.stop.reason
    assert "below min_gain 5.0%" in report.stop.reason
    assert report.best_round == 2


def test_kl_over_budget_stops_and_that_round_is_not_the_best(fake: FakeRounds, make_config: Make) -> None:
    fake.kl = {2: 0.9}
    config = make_config("{rounds: 3, heldout: heldout.jsonl, prompts_per_round: 4, stop: {max_kl: 0.5}}")
    report = iterate(config, quiet=True)
    assert report.stop is not None and report.stop.rule == "max_kl"
    assert "0.9000 nats/token, over the budget of 0.5" in report.stop.reason
    assert report.best_round == 1


def test_a_hacking_alert_stops_the_loop(fake: FakeRounds, make_config: Make) -> None:
    fake.alerts = {1: ("length drift -0.62 below -0.5",)}
    report = iterate(make_config(), quiet=True)
    assert report.stop is not None and report.stop.rule == "alert" and report.stop.round == 1
    assert "length drift" in report.stop.reason and report.best_round is None


def test_alerts_are_only_recorded_with_on_alert_off(fake: FakeRounds, make_config: Make) -> None:
    fake.alerts = {1: ("refusal rate 40%",)}
    config = make_config("{rounds: 2, heldout: heldout.jsonl, prompts_per_round: 4, stop: {on_alert: false}}")
    report = iterate(config, quiet=True)
    assert report.status == "done" and report.rounds[0].alerts == ["refusal rate 40%"]


def test_a_refused_round_ends_the_loop_and_a_rerun_retries_it(fake: FakeRounds, make_config: Make) -> None:
    def refuse(config: RunConfig) -> None:
        if Path(config.run_dir).name == "2":
            raise GateError(
                "the data in rounds/2/export failed 1 quality gate(s); nothing was trained:\n  - x"
            )

    fake.fail_pipeline = refuse
    config = make_config()
    report = iterate(config, quiet=True)
    assert report.status == "refused" and report.stop is not None and report.stop.rule == "gate"
    assert report.stop.reason.startswith("the data in rounds/2/export failed 1 quality gate")
    assert report.rounds[-1].status == "refused" and report.best_round == 1
    assert not (Path(config.run_dir) / "rounds/2/round.json").exists()
    fake.fail_pipeline = None
    assert iterate(config, quiet=True).status == "done"


def test_more_rounds_continue_a_finished_run(fake: FakeRounds, make_config: Make) -> None:
    iterate(make_config("{rounds: 1, heldout: heldout.jsonl, prompts_per_round: 4}"), quiet=True)
    report = iterate(make_config("{rounds: 2, heldout: heldout.jsonl, prompts_per_round: 4}"), quiet=True)
    assert [r.round for r in report.rounds] == [1, 2] and len(fake.pipelines) == 2


def test_a_changed_config_is_refused_naming_what_changed(fake: FakeRounds, make_config: Make) -> None:
    iterate(make_config(), quiet=True)
    changed = make_config("{rounds: 3, heldout: heldout.jsonl, prompts_per_round: 5}", "seed: 3\n")
    with pytest.raises(ConfigError) as info:
        iterate(changed, quiet=True)
    message = str(info.value)
    assert "\n" not in message
    assert "iterate.prompts_per_round (4 -> 5)" in message and "seed (0 -> 3)" in message
    assert "another run_dir" in message


def test_held_out_prompts_that_are_training_prompts_are_refused(make_config: Make, tmp_path: Path) -> None:
    (tmp_path / "heldout.jsonl").write_text(
        json.dumps({"prompt": "Held-out question number 0?"}) + "\n"
        + json.dumps({"prompt": "  training QUESTION number 3?"}) + "\n"
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        iterate(make_config(), quiet=True)
    assert "1 of its 2 prompts are also training prompts" in str(info.value) and "\n" not in str(info.value)


def test_no_iterate_section_is_one_line(make_config: Make) -> None:
    config = make_config().model_copy(update={"iterate": None})
    with pytest.raises(ConfigError, match="has no iterate: section"):
        iterate(config, quiet=True)


def test_failed_requests_stop_the_round_and_a_rerun_retries_its_pipeline(
    fake: FakeRounds, make_config: Make
) -> None:
    from rlaif.errors import IncompleteRun

    fake.stages, fake.status = {"judge": {"failed": 3}}, "incomplete"
    config = make_config()
    with pytest.raises(IncompleteRun, match=r"round 1 is incomplete: 3 request\(s\) failed \(judge 3\)"):
        iterate(config, quiet=True)
    fake.stages, fake.status = {}, "done"
    iterate(config, quiet=True)
    assert [Path(c.run_dir).name for c in fake.pipelines] == ["1", "1", "2", "3"]
