"""Reward-model ensembles and per-principle heads: the arithmetic, the head groups and the RL readings,
on hand-made tensors and a scorer whose scores are fixed (no model)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
import torch

from rlaif.config import RunConfig
from rlaif.errors import ConfigError, RlaifError
from rlaif.records import Constitution, Principle
from rlaif.train.ensemble import EnsembleManifest, read_manifest, write_manifest
from rlaif.train.heads import head_groups, head_mask, plan_heads
from rlaif.train.ppo.rollout import combined, step_metrics
from rlaif.train.reward import train_reward
from rlaif.train.reward_math import bootstrap_indices, conservative, masked_pair_loss, pairwise_accuracy
from rlaif.train.scoring import ModelReward, RewardScorer, held_out_accuracy, trl_reward


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_masked_loss_counts_only_the_heads_a_pair_was_labelled_under() -> None:
    chosen = torch.tensor([[2.0, -9.0], [0.0, 1.0]], requires_grad=True)
    rejected = torch.tensor([[0.0, 9.0], [5.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = masked_pair_loss(chosen, rejected, mask)
    assert loss.item() == pytest.approx(-(logsig(2.0) + logsig(1.0)) / 2)
    loss.backward()
    assert chosen.grad is not None
    assert chosen.grad[0, 1] == 0 and chosen.grad[1, 0] == 0  # masked cells: no gradient at all
    assert chosen.grad[0, 0] < 0 and chosen.grad[1, 1] < 0


def test_masked_loss_with_margins_and_with_nothing_unmasked() -> None:
    chosen, rejected = torch.tensor([[3.0], [1.0]]), torch.tensor([[1.0], [1.0]])
    loss = masked_pair_loss(chosen, rejected, torch.ones(2, 1), torch.tensor([1.0, 0.5]))
    assert float(loss) == pytest.approx(-(logsig(1.0) + logsig(-0.5)) / 2)
    empty = torch.zeros(2, 1, requires_grad=True)
    nothing = masked_pair_loss(empty, rejected, torch.zeros(2, 1))
    nothing.backward()
    assert nothing.item() == 0.0 and empty.grad is not None and not empty.grad.any()


def test_bootstrap_resamples_are_seeded_per_member() -> None:
    first = bootstrap_indices(50, seed=3, member=0)
    assert first == bootstrap_indices(50, seed=3, member=0)
    assert first != bootstrap_indices(50, seed=3, member=1) != bootstrap_indices(50, seed=4, member=1)
    assert len(first) == 50 and all(0 <= i < 50 for i in first) and first == sorted(first)
    assert len(set(first)) < 50  # drawn with replacement


def test_conservative_reward_is_mean_minus_lambda_std_of_the_weighted_heads() -> None:
    # 2 members × 2 rows × 2 heads
    scores = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[3.0, 1.0], [2.0, 4.0]]])
    weights = torch.tensor([1.0, 0.0])
    reward, mean, std = conservative(scores, weights, 0.5)
    assert mean.tolist() == [2.0, 1.0] and std.tolist() == [1.0, 1.0]  # population std over members
    assert reward.tolist() == [1.5, 0.5]
    reward, mean, std = conservative(scores, torch.tensor([0.5, 0.5]), 2.0)
    assert mean.tolist() == [2.0, 1.5] and std.tolist() == [0.0, 1.5] and reward.tolist() == [2.0, -1.5]
    single, _, spread = conservative(scores[:1], weights, 10.0)
    assert spread.tolist() == [0.0, 0.0] and single.tolist() == [1.0, 0.0]  # one model: no penalty, no NaN


def test_pairwise_accuracy_counts_a_tie_half() -> None:
    assert pairwise_accuracy([2.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]) == pytest.approx(2.5 / 4)
    assert pairwise_accuracy([], []) is None


class FixedScorer(RewardScorer):
    """A scorer without models whose scores are a function of the conversation's last turn."""

    def __init__(self, heads: Sequence[str], table: dict[str, list[list[float]]]) -> None:
        super().__init__([object()] * len(next(iter(table.values()))), None, heads, device="cpu")
        self.table = table

    def score(self, conversations: Sequence[Any]) -> torch.Tensor:
        rows = [self.table[c[-1]["content"]] for c in conversations]  # each: members × heads
        return torch.tensor(rows).permute(1, 0, 2)


TABLE = {
    "good": [[2.0, 1.0], [4.0, 1.0]],
    "bad": [[0.0, 3.0], [0.0, 1.0]],
    "meh": [[1.0, 1.0], [1.0, 1.0]],
}


def test_head_weights_combine_heads_and_unknown_heads_are_refused() -> None:
    scorer = FixedScorer(["helpful", "safety"], TABLE)
    assert scorer.weights(None, key="k").tolist() == [0.5, 0.5]
    assert scorer.weights({"safety": 2.0}, key="k").tolist() == [0.0, 2.0]
    with pytest.raises(ConfigError, match=r"train.ppo.head_weights: no head named 'harm'.*helpful, safety"):
        ModelReward(scorer, head_weights={"harm": 1.0, "safety": 1.0})


def test_model_reward_reads_the_ensemble_and_reports_its_disagreement() -> None:
    reward = ModelReward(FixedScorer(["helpful", "safety"], TABLE), head_weights={"helpful": 1.0},
                         uncertainty_penalty=1.0)  # fmt: skip
    # good: helpful 2 and 4 → mean 3, std 1; meh: 1 and 1 → mean 1, std 0
    assert reward(["q", "q"], ["good", "meh"]) == [2.0, 1.0]
    assert reward.last_metrics == {
        "reward/model_mean": 2.0, "reward/ensemble_std": 0.5,
        "reward/head/helpful": 2.0, "reward/head/safety": 1.0,
    }  # fmt: skip
    both = combined([reward, lambda p, c: [1.0] * len(c)], [2.0, 1.0])
    assert both(["q"], ["good"]) == [5.0]
    assert step_metrics(both)["reward/ensemble_std"] == 1.0  # PPO logs what its parts report

    logged: dict[str, float] = {}
    func = trl_reward(reward)
    prompts = [[{"role": "user", "content": "q"}]]
    assert func(prompts, [[{"role": "assistant", "content": "meh"}]], log_metric=logged.__setitem__) == [1.0]
    assert logged["reward/ensemble_std"] == 0.0 and logged["reward/head/safety"] == 1.0


def test_held_out_accuracy_of_members_ensemble_and_heads() -> None:
    scorer = FixedScorer(["helpful", "safety"], TABLE)
    groups = {"helpful": frozenset({"h"}), "safety": frozenset({"s"})}

    def row(chosen: str, rejected: str, ids: list[str]) -> dict[str, Any]:
        turn = [{"role": "user", "content": "q"}]
        return {"prompt": turn, "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}], "principle_ids": ids}  # fmt: skip

    rows = [row("good", "bad", ["h"]), row("good", "bad", ["s"]), row("meh", "good", ["h", "s"]),
            row("good", "meh", ["other"])]  # fmt: skip
    result = held_out_accuracy(scorer, rows, groups)
    assert result.pairs == 3  # the last pair is under no head
    # member 0: good/bad helpful 2>0 ✓; safety 1<3 ✗; meh vs good on both heads: 1 vs 1.5 ✗
    # member 1: 4>0 ✓; 1=1 tie ½; 1 vs 2.5 ✗
    assert result.members == [pytest.approx(1 / 3), pytest.approx(1.5 / 3)]
    assert result.heads["helpful"].pairs == 2 and result.heads["helpful"].accuracy == 0.5
    # the ensemble's mean: good [3, 1], bad [0, 2], meh [1, 1]
    assert result.heads["safety"].pairs == 2 and result.heads["safety"].accuracy == 0.25
    plain = held_out_accuracy(FixedScorer(["reward"], {k: [[v[0][0]], [v[1][0]]] for k, v in TABLE.items()}),
                              rows, None)  # fmt: skip
    assert plain.pairs == 4 and plain.heads == {} and plain.ensemble == pytest.approx(3 / 4)


CONSTITUTION = Constitution(
    name="c",
    principles=(
        Principle(id="kind", judge_question="Which is kinder?", tags=("helpful",)),
        Principle(id="useful", judge_question="Which helps?", tags=("helpful",)),
        Principle(id="no-harm", judge_question="Which is safer?", tags=("safety",)),
        Principle(id="plain", judge_question="Which is plainer?"),
    ),
)


def test_head_groups_from_tags_or_a_mapping_of_tags_and_ids() -> None:
    assert head_groups("tags", CONSTITUTION) == {
        "helpful": frozenset({"kind", "useful"}), "safety": frozenset({"no-harm"})
    }  # fmt: skip
    assert head_groups({"good": ["helpful", "plain"], "safe": ["no-harm"]}, CONSTITUTION) == {
        "good": frozenset({"kind", "useful", "plain"}), "safe": frozenset({"no-harm"})
    }  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"train.reward.heads.safe: 'harm' is neither.*tags: helpful, safety"
    ):
        head_groups({"safe": ["harm"]}, CONSTITUTION)
    untagged = Constitution(name="u", principles=(CONSTITUTION.principles[3],))
    with pytest.raises(ConfigError, match="train.reward.heads: tags needs tagged principles"):
        head_groups("tags", untagged)


def test_a_head_without_training_pairs_is_left_out_and_said_why() -> None:
    groups = head_groups({"helpful": ["helpful"], "safety": ["safety"], "style": ["plain"]}, CONSTITUTION)
    plan = plan_heads(groups, [["kind"], ["no-harm", "useful"], ["other"]])
    assert list(plan.heads) == ["helpful", "safety"] and plan.unassigned == 1
    assert plan.pairs == {"helpful": 2, "safety": 1, "style": 0}
    assert "no training pair was labelled under its principles (plain)" in plan.excluded["style"]
    assert head_mask(["no-harm", "useful"], plan.heads) == [1.0, 1.0]
    with pytest.raises(RlaifError, match="none of the 1 training pairs.*principle ids: other"):
        plan_heads(groups, [["other"]])


def test_ensemble_manifest_round_trip_and_a_damaged_one(tmp_path: Any) -> None:
    manifest = EnsembleManifest(
        members=["member-0", "member-1"], heads=["reward"], seeds=[0, 1], bootstrap=True
    )
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    (tmp_path / "ensemble.json").write_text("{")
    with pytest.raises(RlaifError, match="not a valid ensemble manifest"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "nothing") is None


def section(**reward: Any) -> RunConfig:
    return RunConfig.model_validate({"prompts": {"path": "p.jsonl"}, "train": {"reward": reward}})


def test_reward_settings_are_checked_at_the_door(tmp_path: Any) -> None:
    assert section(ensemble=4, heads="tags").train.reward.ensemble == 4
    bad_settings = [
        ({"ensemble": 0}, "greater than or equal to 1"),
        ({"ensemble": 17}, "less than or equal"),
        ({"heads": {}}, "at least one head"),
        ({"heads": {"a b": ["x"]}}, "head name 'a b'"),
        ({"heads": {"a": []}}, "lists no tag"),
    ]
    for bad, needle in bad_settings:
        with pytest.raises(ValueError, match=needle):
            section(**bad)
    with pytest.raises(ValueError, match="uncertainty_penalty"):
        RunConfig.model_validate({"prompts": {"path": "p"}, "train": {"ppo": {"uncertainty_penalty": -1}}})
    with pytest.raises(ConfigError, match=r"train.reward.ensemble: 17 members; choose 1 to 16"):
        train_reward(tmp_path, model_path="m", output_dir=tmp_path / "o", ensemble=17)


def test_the_reward_stage_resolves_heads_against_the_runs_constitution(tmp_path: Any) -> None:
    from rlaif.train.registry import train_stage

    config = RunConfig.model_validate(
        {"base_dir": str(tmp_path), "prompts": {"path": "p.jsonl"},
         "train": {"reward": {"heads": {"safety": ["harm"], "kind": ["no-such-tag"]}}}}
    )  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"train.reward.heads.kind: 'no-such-tag' is neither .*tags: .*harm"
    ):
        train_stage("reward", config, tmp_path, model="m")
