"""`reward: judge_group`: the comparison plan, the Bradley–Terry fit, and the failure policy (fake judge)."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import pytest

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.config import JudgeConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.judging.engine import judge_items
from rlaif.train.group import bradley_terry, comparison_plan, group_rewards

CONSTITUTION = load_constitution(find_constitution("harmless"))
CONFIG = JudgeConfig(both_orders=True)


def test_small_groups_compare_every_pair() -> None:
    assert comparison_plan(4, None, seed=0, key="p") == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert comparison_plan(4, 3, seed=0, key="p") == comparison_plan(4, None, seed=0, key="p")


def test_large_groups_get_a_balanced_seeded_subset() -> None:
    plan = comparison_plan(8, 2, seed=3, key="p")
    degree = [sum(i in pair for pair in plan) for i in range(8)]
    assert len(plan) == 8 and degree == [2] * 8
    assert plan == comparison_plan(8, 2, seed=3, key="p") != comparison_plan(8, 2, seed=4, key="p")
    assert all(
        d == 4 for d in (sum(i in p for p in comparison_plan(9, 4, seed=0, key="q")) for i in range(9))
    )


def test_bradley_terry_orders_by_strength_and_is_centred() -> None:
    # 0 beats 1 three times of four, 1 beats 2 three times of four, 0 beats 2 every time
    wins = [[0, 3, 4], [1, 0, 3], [0, 1, 0]]
    scores = bradley_terry(wins, prior=0.0)
    assert scores[0] > scores[1] > scores[2] and sum(scores) == pytest.approx(0.0, abs=1e-9)


def test_bradley_terry_two_players_matches_the_closed_form() -> None:
    # Without a prior, 3 wins of 4 give strength ratio 3: a log-gap of log 3
    scores = bradley_terry([[0, 3], [1, 0]], prior=0.0, iterations=2000)
    assert scores[0] - scores[1] == pytest.approx(math.log(3), rel=1e-6)


def test_the_prior_keeps_unanimous_wins_finite() -> None:
    scores = bradley_terry([[0, 2], [0, 0]])
    assert all(math.isfinite(s) for s in scores) and scores[0] > scores[1]
    assert bradley_terry([[0, 0], [0, 0]]) == [0.0, 0.0]


class PicksHigherNumber(FakeBackend):
    """A judge preferring the candidate with the higher `cand-N`, leaning to the first position;
    it answers nonsense (unparsed) whenever `cand-broken` is shown."""

    def __init__(self) -> None:
        super().__init__(p_first=self.p)

    @staticmethod
    def p(request: ChatRequest) -> float:
        shown = [int(n) for n in re.findall(r"cand-(\d+)", request.messages[-1]["content"])]
        return 0.95 if shown[0] > shown[1] else 0.15

    async def chat(self, request: ChatRequest) -> ChatResult:
        if "cand-broken" in request.messages[-1]["content"]:
            self.requests.append(request)
            return ChatResult(texts=["Both are fine."], finish_reasons=["stop"], first_token_logprobs={})
        return await super().chat(request)


def run(completions: list[str], prompt_ids: list[str], **options: Any) -> tuple[list[Any], dict[str, Any]]:
    backend = PicksHigherNumber()

    def judge(items: list[Any]) -> list[Any]:
        return asyncio.run(judge_items(backend, items, constitution=CONSTITUTION, config=CONFIG, seed=0,
                                       quiet=True))  # fmt: skip

    prompts = [[{"role": "user", "content": f"question {pid}"}] for pid in prompt_ids]
    chats = [[{"role": "assistant", "content": c}] for c in completions]
    options = {"per_completion": None, "min_valid": 0.5, **options}
    return group_rewards(prompts, chats, prompt_ids, judge, constitution=CONSTITUTION, config=CONFIG,
                         seed=0, **options)  # fmt: skip


def test_group_scores_follow_the_judge_and_log_its_position_bias() -> None:
    rewards, stats = run(["cand-1", "cand-3", "cand-2", "cand-7", "cand-8"], ["p", "p", "p", "q", "q"])
    assert rewards[1] > rewards[2] > rewards[0] and rewards[4] > rewards[3]  # type: ignore[operator]
    assert stats["group/position_bias"] == pytest.approx((0.95 + 0.15) / 2 - 0.5)
    assert (
        stats["group/failed_orders"] == 0 and stats["group/masked_groups"] == 0 and stats["group/groups"] == 2
    )


def test_failed_orders_are_excluded_and_counted_never_neutral() -> None:
    rewards, stats = run(["cand-1", "cand-3", "cand-2", "cand-broken"], ["p"] * 4, min_valid=0.4)
    # cand-broken's three pairs (six orders) fail: it has no valid comparison, so the group gets none
    assert stats["group/failed_orders"] == 6 and stats["group/masked_groups"] == 1
    assert rewards == [0.0] * 4


def test_a_group_below_min_valid_gets_no_gradient_others_still_do() -> None:
    completions = ["cand-broken", "cand-broken", "cand-2", "cand-4", "cand-5"]
    rewards, stats = run(completions, ["p", "p", "p", "q", "q"], min_valid=0.5)
    assert rewards[:3] == [0.0, 0.0, 0.0] and rewards[4] > rewards[3]  # type: ignore[operator]
    assert stats["group/masked_groups"] == 1 and stats["group/failed_orders"] == 6


@pytest.mark.parametrize(
    ("online", "key"),
    [({"group_comparisons": 0}, "train.online.group_comparisons"),
     ({"group_comparisons": 1000}, "train.online.group_comparisons"),
     ({"group_min_valid": 0}, "train.online.group_min_valid"),
     ({"reward": ["judge_group", "judge_group"]}, "at most once")],
)  # fmt: skip
def test_bad_group_settings_name_the_key(tmp_path: Any, online: dict[str, Any], key: str) -> None:
    import json

    from rlaif.config import load_config
    from rlaif.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"prompts": {"path": "p.jsonl"}, "train": {"online": online}}))
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(path)


def test_trajectory_completions_are_judged_whole() -> None:
    """TRL conversational completions with tool calls and results: the judge reads each trace, and two
    trajectories with the same final answer but different calls are told apart."""
    seen: list[str] = []

    def judge(items: list[Any]) -> list[Any]:
        seen.extend(item.a.text for item in items)
        seen.extend(item.b.text for item in items)
        return asyncio.run(judge_items(PicksHigherNumber(), items, constitution=CONSTITUTION, config=CONFIG,
                                       seed=0, quiet=True))  # fmt: skip

    def used(n: int) -> list[dict[str, Any]]:
        call = {
            "id": f"c{n}",
            "type": "function",
            "function": {"name": "calculator", "arguments": f"cand-{n}"},
        }
        return [{"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": f"c{n}", "content": "4"},
                {"role": "assistant", "content": "It is 4."}]  # fmt: skip

    prompts = [[{"role": "user", "content": "What is 2 + 2?", "tool_calls": None, "tool_call_id": None}]] * 2
    rewards, stats = group_rewards(prompts, [used(1), used(5)], ["p", "p"], judge, constitution=CONSTITUTION,
                                   config=CONFIG, seed=0, per_completion=None, min_valid=0.5)  # fmt: skip
    assert all(text.startswith("[tool call c") and text.endswith("[final answer]\nIt is 4.") for text in seen)
    assert rewards[1] > rewards[0] and stats["group/failed_orders"] == 0  # type: ignore[operator]
