"""The cost benchmark's token arithmetic: shared prefix S counted once, the rest R twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif.bench.judge_cost import _result, token_counts
from rlaif.bench.reports import JudgeCostRun, TokenCounts
from rlaif.config import JudgeConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles, judge_nonce, judge_prompt
from rlaif.records import Message

CONSTITUTION = load_constitution(find_constitution("harmless"))


class CharTokenizer:
    """One token per character, with a fixed chat-template header."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):  # type: ignore[no-untyped-def]
        return [ord(c) for c in "<user>" + messages[0]["content"] + "<assistant>"]


def _item() -> JudgeItem:
    return JudgeItem(
        "p",
        (Message(role="user", content="Hello?"),),
        Candidate("a", "first answer"),
        Candidate("b", "second answer"),
        draw_principles(CONSTITUTION, JudgeConfig(), seed=0, key="p"),
    )


def test_token_ratio_counts_the_shared_prefix_once() -> None:
    item = _item()
    counts = token_counts([item], CharTokenizer(), seed=0, block=4)
    one = (
        "<user>"
        + judge_prompt(
            item.conversation, item.members[0], "first answer", "second answer", judge_nonce(0)
        ).text
    )
    two = (
        "<user>"
        + judge_prompt(
            item.conversation, item.members[0], "second answer", "first answer", judge_nonce(0)
        ).text
    )
    shared = next(i for i, (x, y) in enumerate(zip(one, two, strict=False)) if x != y)
    length_one, length_two = len(one) + len("<assistant>"), len(two) + len("<assistant>")
    assert counts.shared_tokens_S == shared
    assert counts.rest_tokens_R == length_one - shared
    assert counts.token_ratio == pytest.approx((length_one + length_two - shared) / length_one)
    blocks = (shared // 4) * 4
    assert counts.block_ratio == pytest.approx((length_one + length_two - blocks) / length_one)
    # Everything before the first candidate is shared: instructions, principle and conversation.
    assert one[:shared].endswith("<response_A_" + judge_nonce(0) + ">\n")


class EncodingTokenizer(CharTokenizer):
    """Like transformers 5: `tokenize=True` gives a BatchEncoding-like mapping, not a list."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):  # type: ignore[no-untyped-def]
        from collections import UserDict

        ids = super().apply_chat_template(messages, add_generation_prompt, tokenize)
        return UserDict({"input_ids": ids, "attention_mask": [1] * len(ids)})


def test_token_counts_read_a_batch_encoding() -> None:
    item = _item()
    assert token_counts([item], EncodingTokenizer(), seed=0) == token_counts([item], CharTokenizer(), seed=0)
    assert token_counts([item], EncodingTokenizer(), seed=0).one_order_tokens > 100


def run(measurement: str, repeat: int, seconds: float, hits: int = 0) -> JudgeCostRun:
    return JudgeCostRun(
        measurement=measurement, repeat=repeat, seconds=seconds, ok=48,
        prefix_cache_hit_tokens=hits, prefix_cache_query_tokens=100,
    )  # fmt: skip


def test_the_result_averages_repeats_and_compares_with_the_token_ratio() -> None:
    tokens = TokenCounts(
        pairs=48, shared_tokens_S=60, rest_tokens_R=40, one_order_tokens=100, two_order_tokens=140,
        token_ratio=1.4, block_ratio=1.5, block=128,
    )  # fmt: skip
    runs = [run("one-order", 0, 10.0), run("two-order", 0, 14.0, hits=30), run("cot-one-order", 0, 28.0),
            run("one-order", 1, 12.0), run("two-order", 1, 16.0, hits=10)]  # fmt: skip
    result = _result(Path("model"), tokens, runs)
    assert result.mean_seconds == {"one-order": 11.0, "two-order": 15.0, "cot-one-order": 28.0}
    assert result.prefix_cache_hit_rate["two-order"] == pytest.approx(40 / 200)
    assert result.wall_ratio == pytest.approx(15 / 11)
    assert result.wall_over_token_ratio == pytest.approx(15 / 11 / 1.4)
    assert result.within_10_percent is True
    assert result.cot_one_order_over_two_order == pytest.approx(28 / 15)
    # Before the one-order measurement there is no ratio to give, and nothing pretends there is.
    partial = _result(Path("model"), tokens, runs[1:2])
    assert partial.wall_ratio is None and partial.within_10_percent is None
