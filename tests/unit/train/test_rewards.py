"""Checks as rewards: the weighted share of checks passed, for online RL and our PPO, and combinations."""

from __future__ import annotations

import pytest

from rlaif.config import RunConfig
from rlaif.errors import ConfigError
from rlaif.judging.checks import checks_score
from rlaif.records import Check, Constitution, Principle
from rlaif.train.online import checks_reward
from rlaif.train.ppo.rollout import checks_scorer, combined

SHORT = Principle(id="short", judge_question="Which is short?", check=Check(max_words=4), weight=3)
NO_LINKS = Principle(
    id="no-links", judge_question="Which has no link?", check=Check(must_not_match="https?://")
)
HELPFUL = Principle(id="helpful", critique_request="c", revision_request="r", judge_question="Which helps?")
CONSTITUTION = Constitution(name="c", principles=(HELPFUL, SHORT, NO_LINKS))


def test_the_score_is_the_weighted_share_passed() -> None:
    principles = (SHORT, NO_LINKS)
    assert checks_score(principles, [], "Short and plain.") == 1.0
    assert checks_score(principles, [], "Short, https://x.io") == pytest.approx(3 / 4)
    assert checks_score(principles, [], "A much longer answer with no link at all.") == pytest.approx(1 / 4)
    assert checks_score(principles, [], "A much longer answer, see https://x.io") == 0.0


def test_online_reward_reads_conversational_completions() -> None:
    reward = checks_reward(CONSTITUTION)
    prompts = [[{"role": "user", "content": "hi"}]] * 2
    completions = [
        [{"role": "assistant", "content": "Hello there."}],
        [{"role": "assistant", "content": "x " * 9}],
    ]
    assert reward(prompts, completions) == [1.0, pytest.approx(1 / 4)]


def test_ppo_scorer_and_a_weighted_combination() -> None:
    checks = checks_scorer(CONSTITUTION)
    assert checks(["hi", "hi"], ["Hello there.", "x " * 9]) == [1.0, pytest.approx(0.25)]

    def length(prompts: list[str], completions: list[str]) -> list[float]:
        return [float(len(c.split())) for c in completions]

    both = combined([checks, length], [2.0, 0.5])
    assert both(["hi"], ["Hello there."]) == [pytest.approx(2.0 + 1.0)]


def test_a_constitution_without_checks_cannot_be_a_checks_reward() -> None:
    plain = Constitution(name="plain", principles=(HELPFUL,))
    with pytest.raises(ConfigError, match="train.online.reward: checks needs principles"):
        checks_reward(plain)
    with pytest.raises(ConfigError, match="train.ppo.reward: checks needs principles"):
        checks_scorer(plain)


@pytest.mark.parametrize(
    ("train", "needle"),
    [
        ({"ppo": {"reward": ["checks", "model"], "reward_weights": [1.0]}}, "one weight per reward"),
        ({"ppo": {"reward": ["checks", "checks"]}}, "at most once"),
        ({"ppo": {"reward": "judge"}}, "model"),
        ({"online": {"reward": []}}, "at least one"),
    ],
)
def test_bad_reward_settings_are_one_clear_error(train: dict[str, object], needle: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=needle):
        RunConfig.model_validate({"prompts": {"path": "p"}, "train": train})
    ok = RunConfig.model_validate(
        {
            "prompts": {"path": "p"},
            "train": {"ppo": {"reward": ["checks", "model"], "reward_weights": [1, 0.5]}},
        }
    )
    assert ok.train.ppo.reward == ["checks", "model"]
