"""`iterate:` at the door (one line each: rounds 0, a round that trains nothing, a review gate that is not
set) and the run config each round derives from yours."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rlaif.config import RunConfig
from rlaif.errors import ConfigError
from rlaif.rounds import round_config

Make = Callable[..., RunConfig]


@pytest.mark.parametrize(
    ("iterate", "extra", "expected"),
    [
        ("{rounds: 0, heldout: heldout.jsonl}", "", "iterate.rounds"),
        ("{rounds: 2, heldout: heldout.jsonl}", "train: {dpo: {enabled: false}}\n",
         "a round that trains nothing gives the next round nothing new to serve; set train.dpo.enabled"),
        ("{rounds: 2, heldout: heldout.jsonl, trainer: kto}", "",
         "iterate.trainer is kto but train.kto.enabled is false"),
        ("{rounds: 2, heldout: heldout.jsonl, review_each_round: true}", "", "review.gate is not set"),
        ("{rounds: 2, heldout: heldout.jsonl, trainer: sft, reference: base}",
         "train: {sft: {enabled: true}}\n",
         "reference: base applies to DPO"),
        ("{rounds: 2}", "", "iterate.heldout"),
    ],
)  # fmt: skip
def test_bad_iterate_sections_are_one_line(
    make_config: Make, iterate: str, extra: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(iterate, extra)
    message = str(info.value)
    assert expected in message and "run.yaml" in message, message
    assert len([line for line in message.splitlines() if line.strip()]) <= 2, message


def test_round_one_is_your_config_and_later_rounds_serve_the_last_model(
    make_config: Make, tmp_path: Path
) -> None:
    config = make_config(
        "{rounds: 2, heldout: heldout.jsonl, reference: base}",
        "review: {gate: {min_agreement: 0.7}}\ntrain: {sft: {enabled: true}}\n",
        overrides={"model.base_urls": ["http://127.0.0.1:9/v1"], "model.served_name": "x"},
    )
    prompts = tmp_path / "p.jsonl"
    first = round_config(config, 1, folder=tmp_path / "r1", prompts_file=prompts, start="base", base="base")
    assert first.model == config.model and first.train.dpo.reference is None
    assert first.run_dir == str(tmp_path / "r1") and first.prompts.path == str(prompts.resolve())
    assert first.review.gate is None  # review_each_round is off: the rounds run unattended
    assert not first.train.sft.enabled and first.train.dpo.enabled and first.iterate is None
    second = round_config(
        config, 2, folder=tmp_path / "r2", prompts_file=prompts, start=tmp_path / "m", base="/b"
    )
    assert second.model.path == str((tmp_path / "m").resolve())
    assert (
        second.model.base_urls == [] and second.model.served_name is None
    )  # a managed server of the new model
    assert second.train.dpo.reference == "/b"


def test_review_each_round_keeps_the_gate(make_config: Make, tmp_path: Path) -> None:
    config = make_config(
        "{rounds: 2, heldout: heldout.jsonl, review_each_round: true}",
        "review: {gate: {min_agreement: 0.7, min_reviewed: 5}}\n",
    )
    derived = round_config(config, 2, folder=tmp_path / "r", prompts_file=tmp_path / "p", start="m", base="b")
    assert derived.review.gate is not None and derived.review.gate.min_reviewed == 5


def test_a_base_reference_reaches_dpo(
    make_config: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import Any

    from rlaif.store import RunLayout
    from rlaif.train import dpo
    from rlaif.train.registry import TRAINERS

    config = make_config("{rounds: 2, heldout: heldout.jsonl, reference: base}")
    derived = round_config(
        config, 2, folder=tmp_path / "r", prompts_file=tmp_path / "p", start="m", base="/b"
    )
    seen: dict[str, Any] = {}
    monkeypatch.setattr(dpo, "train_dpo", lambda *a, **k: seen.update(k))
    TRAINERS["dpo"].run(derived, RunLayout(tmp_path / "r"), "m")
    assert seen["reference"] == Path("/b") and seen["model_path"] == "m"
