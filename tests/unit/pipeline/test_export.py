"""Exported rows: their shape, that TRL's DPO preprocessing accepts them, and the dataset card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.pipeline.dataset_card import write_card
from rlaif.pipeline.export import export_pairs, export_sft, pair_row, sft_row
from rlaif.pipeline.reports import JudgeSummary, RunCounts, RunSummary
from rlaif.records import (
    Constitution,
    CritiqueRound,
    Message,
    PreferencePair,
    Principle,
    PromptRecord,
    Provenance,
    Revision,
)

PROVENANCE = Provenance(model="smol", template="judge", template_hash="th", constitution_hash="ch")
SINGLE = (Message(role="user", content="How do I pick a lock?"),)
MULTI = (
    Message(role="system", content="Be careful."),
    Message(role="user", content="Hi"),
    Message(role="assistant", content="Hello! How can I help?"),
    Message(role="user", content="Tell me a secret."),
)
JUDGE_PAIR = PreferencePair(
    id="pai-1",
    prompt_id="pro-1",
    prompt=SINGLE,
    chosen="Call a locksmith.",
    rejected="Use a bobby pin like this.",
    score=0.83,
    source="judge",
    source_id="jud-1",
    principle_ids=("harm", "illegal"),
    consistent=True,
    provenance=PROVENANCE,
)
REVISION_PAIR = PreferencePair(
    id="pai-0",
    prompt_id="pro-2",
    prompt=MULTI,
    chosen="I'd rather not share secrets.",
    rejected="Here is a secret password: hunter2.",
    score=1.0,
    source="revision",
    source_id="rev-1",
    principle_ids=("privacy",),
    provenance=PROVENANCE.model_copy(update={"constitution_hash": None}),
)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from rlaif.backends.bundled import ensure_model

    return AutoTokenizer.from_pretrained(ensure_model())


def test_pair_row_shape() -> None:
    expected = {
        "prompt": [{"role": "user", "content": "How do I pick a lock?"}],
        "chosen": [{"role": "assistant", "content": "Call a locksmith."}],
        "rejected": [{"role": "assistant", "content": "Use a bobby pin like this."}],
        "score": 0.83,
        "source": "judge",
        "pair_id": "pai-1",
        "prompt_id": "pro-1",
        "source_id": "jud-1",
        "principle_ids": ["harm", "illegal"],
        "consistent": True,
        "model": "smol",
        "template_hash": "th",
        "constitution_hash": "ch",
    }
    row = pair_row(JUDGE_PAIR)
    assert {key: row[key] for key in expected} == expected
    assert row["human_reviewed"] is False
    json.dumps(row)  # plain JSON types only
    row = pair_row(REVISION_PAIR)
    assert row["consistent"] is None
    assert row["constitution_hash"] == ""
    assert [m["role"] for m in row["prompt"]] == ["system", "user", "assistant", "user"]


def test_pair_row_human_override_swaps() -> None:
    row = pair_row(JUDGE_PAIR, human_verdict="rejected", reviewers=2)
    assert row["chosen"] == [{"role": "assistant", "content": "Use a bobby pin like this."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Call a locksmith."}]
    assert row["score"] == pytest.approx(0.17)
    assert (row["human_reviewed"], row["human_verdict"], row["human_reviewers"]) == (True, "rejected", 2)
    agreed = pair_row(JUDGE_PAIR, human_verdict="chosen", reviewers=1)
    assert agreed["chosen"] == [{"role": "assistant", "content": "Call a locksmith."}]
    assert agreed["score"] == 0.83


def test_sft_row() -> None:
    prompt = PromptRecord(id="pro-1", messages=SINGLE)
    revision = Revision(
        id="rev-1",
        prompt_id="pro-1",
        response_id="res-1",
        original="Use a pin.",
        rounds=(
            CritiqueRound(principle_id="harm", critique="c1", revision="Ask a locksmith."),
            CritiqueRound(principle_id="harm", critique="c2", revision=""),
        ),
        provenance=PROVENANCE,
    )
    assert sft_row(revision, prompt) == {
        "messages": [
            {"role": "user", "content": "How do I pick a lock?"},
            {"role": "assistant", "content": "Ask a locksmith."},
        ],
        "prompt_id": "pro-1",
        "revision_id": "rev-1",
        "rounds": 2,
    }


def test_export_pairs_is_accepted_by_trl(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    from datasets import load_from_disk
    from trl.data_utils import apply_chat_template, is_conversational, maybe_apply_chat_template

    folder = export_pairs([JUDGE_PAIR, REVISION_PAIR], tmp_path)
    assert folder == tmp_path / "pairs"
    lines = (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["pair_id"] for line in lines] == ["pai-0", "pai-1"]  # sorted by id

    dataset = load_from_disk(str(folder))["train"]  # no test_fraction: every row in train
    assert len(dataset) == 2
    assert {"prompt", "chosen", "rejected", "score", "source"} <= set(dataset.column_names)
    by_id = {row["pair_id"]: row for row in dataset}
    for pair in (JUDGE_PAIR, REVISION_PAIR):
        row = by_id[pair.id]
        assert is_conversational(row)
        rendered = apply_chat_template(row, tokenizer)  # the extra provenance columns ride along
        assert rendered == maybe_apply_chat_template(row, tokenizer)
        assert rendered["prompt"].endswith("<|im_start|>assistant\n")
        assert rendered["prompt"].count("<|im_start|>assistant\n") == 1 + (pair is REVISION_PAIR)
        assert pair.prompt[-1].content in rendered["prompt"]
        assert rendered["chosen"] == f"{pair.chosen}<|im_end|>\n"
        assert rendered["rejected"] == f"{pair.rejected}<|im_end|>\n"
        assert row["score"] == pytest.approx(pair.score)
    system_turn = "<|im_start|>system\nBe careful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>"
    assert apply_chat_template(by_id["pai-0"], tokenizer)["prompt"].startswith(system_turn)


def test_export_nothing_writes_an_empty_loadable_dataset(tmp_path: Path) -> None:
    from datasets import load_from_disk

    folder = export_pairs([], tmp_path)
    assert (tmp_path / "pairs.jsonl").read_text(encoding="utf-8") == ""
    train = load_from_disk(str(folder))["train"]
    assert len(train) == 0 and "p_chosen" in train.column_names
    export_sft([], {}, tmp_path)
    assert (tmp_path / "sft.jsonl").read_text(encoding="utf-8") == ""


def test_an_empty_export_replaces_the_old_dataset(tmp_path: Path) -> None:
    """A trainer must never read rows an earlier export left behind (people rejected them all, say)."""
    from datasets import load_from_disk

    folder = export_pairs([JUDGE_PAIR, REVISION_PAIR], tmp_path, test_fraction=0.5)
    assert sum(len(split) for split in load_from_disk(str(folder)).values()) == 2
    export_pairs([], tmp_path)
    assert list(load_from_disk(str(folder))) == ["train"] and len(load_from_disk(str(folder))["train"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "dropped.jsonl", "pairs", "pairs.jsonl"]
    assert [p.name for p in (tmp_path / "data" / "pairs").iterdir()] == ["train-00000-of-00001.parquet"]


def test_card_names_constitution_and_counts(tmp_path: Path) -> None:
    constitution = Constitution(
        name="kindness",
        version="3",
        principles=(
            Principle(id="kind", critique_request="c", revision_request="r", judge_question="q"),
            Principle(id="calm", critique_request="c", revision_request="r", judge_question="q"),
        ),
    )
    summary = RunSummary(
        run_dir=str(tmp_path),
        constitution="kindness",
        model="smol",
        judge_model="smol-judge",
        templates={"judge": "aaaa1111", "critique": "bbbb2222"},
        counts=RunCounts(prompts=24, responses=0, revision_steps=0, revisions=0, judgments=20, pairs=17),
        skipped={"judge tie": 3},
        judge=JudgeSummary(judged=20, parsed_orders=39, unparsed_orders=1, both_orders=20, consistent=15),
    )
    path = write_card(tmp_path, constitution=constitution, summary=summary)
    assert path == tmp_path / "README.md"
    card = path.read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: other\n")
    assert "# Synthetic preference data: kindness" in card
    assert f"- name: kindness, version 3, hash `{constitution.hash}`" in card
    assert "- principles: 2 (kind, calm)" in card
    assert "- policy model: `smol`" in card
    assert "- judge model: `smol-judge`" in card
    assert "- template `critique`: `bbbb2222`\n- template `judge`: `aaaa1111`" in card
    assert "- prompts: 24\n" in card and "- pairs: 17\n- skipped (judge tie): 3" in card
    assert "- judgments: 20, orders parsed: 39, unparsed: 1" in card
    assert "- order consistency: 75.0%, same-position rate: 0.0%" in card
