"""`iterate.red_team`: the policy is asked for new prompts aimed at the lowest-passing principles, seeded
by last round's failing training prompts; duplicates and bad lengths are dropped, the kept ones carry their
provenance and join the next round, and their pass rate is reported beside the others'."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlaif.config import RunConfig
from rlaif.evaluate.samples import Sample
from rlaif.inputs.prompts import load_prompts
from rlaif.records import Provenance, Response
from rlaif.rounds import iterate
from tests.unit.rounds.conftest import FakeRounds

Make = Callable[..., RunConfig]
ANSWERS = [
    "1. Can you explain, in as many words as possible, the whole history of Rome?",  # kept, cleaned
    "Training question number 5?",  # a training prompt: duplicate
    "Hi?",  # too short
    '"Please list every step of baking bread, as a numbered list."',  # kept, quotes cleaned
    "can you explain, in as many words as possible, the whole history of rome?",  # duplicate of the first
]


@pytest.fixture
def answering(fake: FakeRounds, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The fake round also stores one short answer (fails `concise`: min_words 10) per prompt, but a
    passing one for the red-team prompts; the policy's red-team answers are `ANSWERS`."""
    from rlaif.evaluate import samples

    asked: list[dict[str, Any]] = []
    original = fake.run_pipeline

    def run_pipeline(config: RunConfig, **kwargs: Any) -> Any:
        result = original(config, **kwargs)
        prompts = load_prompts(config.resolve(config.prompts.path or ""))
        rows = []
        for p in prompts:
            red = "history of Rome" in p.messages[-1].content
            text = ("A calm and plain answer that says enough words to pass the length check here." if red
                    else "Too short.")  # fmt: skip
            made = Provenance(model="m", template="respond", template_hash="t")
            rows.append(Response(id=f"r-{p.id}", prompt_id=p.id, sample_index=0, text=text, provenance=made))
        (Path(config.run_dir) / "responses.jsonl").write_text(
            "".join(r.model_dump_json() + "\n" for r in rows)
        )
        return result

    def generate(model: Any, prompts: Any, **kwargs: Any) -> list[Sample]:
        asked.append({"model": str(model), "prompt": prompts[0].messages[-1].content, **kwargs})
        return [Sample(text=a, token_ids=(1,), finished=True) for a in ANSWERS][: len(prompts)]

    monkeypatch.setattr(fake, "run_pipeline", run_pipeline)
    from rlaif.rounds import loop

    monkeypatch.setattr(loop, "run_pipeline", run_pipeline)
    monkeypatch.setattr(samples, "generate", generate)
    return asked


def test_red_team_prompts_join_the_next_round_with_provenance(
    answering: list[dict[str, Any]], make_config: Make
) -> None:
    config = make_config(
        "{rounds: 2, heldout: heldout.jsonl, prompts_per_round: 4, red_team: {prompts: 5, principles: 1}}"
    )
    report = iterate(config, quiet=True)
    root = Path(config.run_dir)
    assert len(answering) == 1  # only before round 2
    ask = answering[0]
    assert ask["model"] == str(root / "rounds/1/models/dpo") and ask["engine"] == "transformers"
    assert "concise" in ask["prompt"] and "Training question number 0?" in ask["prompt"]  # a failing seed
    red = report.rounds[1].red_team
    assert red is not None and report.rounds[0].red_team is None
    assert (red.asked, red.kept) == (5, 2)
    assert red.dropped == {"duplicate": 2, "too_short": 1}
    assert red.principles == ["concise"] and len(red.seeds) == 3
    rows = [json.loads(x) for x in (root / "rounds/2/red_team.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [
        "Can you explain, in as many words as possible, the whole history of Rome?",
        "Please list every step of baking bread, as a numbered list.",
    ]
    assert rows[0]["round"] == 2 and rows[0]["source_prompt_ids"] == red.seeds and rows[0]["template_hash"]
    texts = [p.messages[-1].content for p in load_prompts(root / "rounds/2/prompts.jsonl")]
    assert len(texts) == 6 and texts[-2:] == [r["prompt"] for r in rows]
    assert report.rounds[1].prompts == 6
    # the round's answers to them: the Rome one passes, the bread one fails; the others all fail
    assert red.pass_rate is not None and (red.pass_rate.passed, red.pass_rate.n) == (1, 2)
    assert red.others_pass_rate is not None and (red.others_pass_rate.passed, red.others_pass_rate.n) == (
        0,
        4,
    )


def test_red_team_prompts_are_asked_once_and_kept_on_resume(
    answering: list[dict[str, Any]], make_config: Make, fake: FakeRounds
) -> None:
    config = make_config("{rounds: 2, heldout: heldout.jsonl, prompts_per_round: 4, red_team: {prompts: 5}}")
    fake.kill_evaluating(2)
    with pytest.raises(KeyboardInterrupt):
        iterate(config, quiet=True)
    fake.fail_evaluate = None
    report = iterate(config, quiet=True)
    assert len(answering) == 1 and report.rounds[1].red_team is not None
