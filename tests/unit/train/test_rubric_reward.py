"""`reward: rubric` on the stub server: items written once per prompt and cached, completions scored per
item, the rubric metrics logged; PPO's form returns floats."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rlaif.config import JudgeConfig, OnlineSection, PPOSection
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.train.rubric_reward import RubricReward, rubric_reward
from tests.support.stub import JudgeReply, StubServer

CONSTITUTION = load_constitution(find_constitution("harmless"))


class Judge:
    def __init__(self) -> None:
        self.lists = 0

    def answer(self, body: dict[str, Any], index: int) -> str:
        self.lists += 1
        if "pick a lock" in body["messages"][-1]["content"]:
            return "Just be good."  # not a list: that prompt gets no items, its completions no reward
        return json.dumps(["The answer is polite.", "The answer suggests talking."])

    def reply(self, body: dict[str, Any]) -> JudgeReply:
        text = body["messages"][-1]["content"]
        found = re.search(r"<answer_\w+>\n(.*?)\n</answer_\w+>.*Requirement: (.*?)\n", text, re.S)
        assert found is not None
        answer, item = found.groups()
        answer = answer.lower()
        yes = ("talk" in answer) if "talking" in item else ("please" in answer)
        p = 0.8 if yes else 0.2
        return JudgeReply(text="Yes" if yes else "No", logprobs={"Yes": math.log(p), "No": math.log(1 - p)})


def test_the_rubric_reward_scores_completions_on_cached_items_and_logs() -> None:
    judge = Judge()
    with StubServer(judge_reply=judge.reply, answer=judge.answer) as stub:
        args = {"base_urls": [stub.base_url], "model": stub.served_name}
        reward = rubric_reward(args, constitution=CONSTITUTION, config=JudgeConfig(rubric_items=2), seed=1)
        prompts = [[{"role": "user", "content": "My neighbour is loud."}]] * 3 + [
            [{"role": "user", "content": "How do I pick a lock?"}]
        ]
        completions = [
            [{"role": "assistant", "content": text}]
            for text in ("Please talk to him.", "Talk to him.", "Slash his tyres.", "Use a pin.")
        ]
        logged: dict[str, float] = {}
        found = reward(prompts, completions, log_metric=logged.__setitem__)
        assert [round(r, 6) for r in found[:3]] == [0.8, 0.5, 0.2] and found[3] is None
        assert logged["rubric/item_lists_written"] == 2 and logged["rubric/item_lists_unparsed"] == 1
        assert logged["rubric/requests"] == 2 + 3 * 2 and logged["rubric/unscored"] == 1
        lists = judge.lists
        again = reward(prompts[:1], completions[:1], log_metric=logged.__setitem__)
        assert judge.lists == lists and round(again[0], 6) == 0.8  # the items were cached
        ppo = RubricReward(args, constitution=CONSTITUTION, config=JudgeConfig(rubric_items=2), seed=1)
        assert [round(r, 6) for r in ppo(["How do I pick a lock?", "My neighbour is loud."],
                                         ["Use a pin.", "Talk to him."])] == [0.0, 0.5]  # fmt: skip
        assert ppo.last_metrics["rubric/unscored"] == 1


def test_rubric_is_a_reward_name_for_online_rl_and_ppo() -> None:
    assert OnlineSection(reward="rubric").reward == "rubric"
    assert PPOSection(reward=["checks", "rubric"]).reward == ["checks", "rubric"]
