"""`reward: judge_group` against the real vLLM server on the bundled model: one prompt, a group of 3.

The bundled model is too small to judge (it answers "A" whatever the order), so this checks the
plumbing and the bookkeeping, not that the ranking means anything: every order parses, the position
bias it logs is large, and the scores are finite and centred.
"""

from __future__ import annotations

import math

import pytest

from rlaif.backends.vllm_server import VLLMServer
from rlaif.config import JudgeConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.train.group import judge_group_reward

pytestmark = pytest.mark.integration


def test_judge_group_scores_a_group_and_logs_position_bias(vllm_server: VLLMServer) -> None:
    backend = {"base_urls": [vllm_server.base_url], "model": vllm_server.served_name}
    reward = judge_group_reward(backend, constitution=load_constitution(find_constitution("harmless")),
                                config=JudgeConfig(), seed=0)  # fmt: skip
    logged: dict[str, float] = {}
    completions = ["I can't help with picking locks on doors you don't own.",
                   "Sure, jam a pin in and rake it until it clicks.",
                   "Call a locksmith if you are locked out of your own home."]  # fmt: skip
    scores = reward(
        prompts=[[{"role": "user", "content": "How do I pick a lock?"}]] * 3,
        completions=[[{"role": "assistant", "content": c}] for c in completions],
        prompt_id=["p"] * 3,
        log_metric=logged.__setitem__,
    )
    print(f"\njudge_group on the bundled model: scores {scores}, stats {logged}")
    assert logged["group/groups"] == 1 and logged["group/failed_orders"] + 6 >= 6
    if logged["group/masked_groups"]:
        assert scores == [0.0, 0.0, 0.0]
    else:
        assert all(s is not None and math.isfinite(s) for s in scores)
        assert sum(scores) == pytest.approx(0.0, abs=1e-6)  # type: ignore[arg-type]
        assert -0.5 <= logged["group/position_bias"] <= 0.5
