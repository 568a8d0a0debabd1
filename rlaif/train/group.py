"""`reward: judge_group`: the judge ranks a prompt's group of G completions against each other.

Completions are compared in pairs, each pair in both orders (so a judge's lean to the first position
cancels), all pairs for a small group or a seeded balanced subset of k comparisons per completion for a
large one. The verdicts are fitted by Bradley–Terry (Hunter's MM iterations) with a small prior: every
completion also plays `PRIOR` won and `PRIOR` lost games against a fixed unit-strength opponent, so the
fit exists even when one completion wins every comparison. The score is the log-strength, centred in
the group. Bradley–Terry rather than win share: with a subset of pairs, beating a strong completion
counts for more than beating a weak one, which win share ignores.

Failure policy: an order that did not parse or failed is excluded and counted, never a neutral 0.5. A
group whose valid orders are fewer than `min_valid` of those planned, or in which a completion has no
valid order at all, gets the same reward for every completion: zero advantage (no gradient), counted.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlaif.config import JudgeConfig
from rlaif.records import Constitution, Judgment, Message, stable_id

__all__ = ["PRIOR", "GroupScores", "bradley_terry", "comparison_plan", "judge_group_reward", "score_group"]

PRIOR = 0.5
"""Pseudo-games won and lost against a unit-strength opponent per completion (a weak pull to 0)."""


def comparison_plan(size: int, per_completion: int | None, *, seed: int, key: str) -> list[tuple[int, int]]:
    """The pairs (i < j) of a group to compare: all of them, or a balanced seeded subset.

    With `per_completion` k below size - 1, the completions are shuffled (seeded by `key`) onto a ring
    and each is paired with its ceil(k/2) nearest neighbours on each side: every completion is in the
    same number of pairs (2·ceil(k/2), or size - 1 when that is fewer), and the ring keeps it connected.
    """
    every = list(itertools.combinations(range(size), 2))
    if per_completion is None or per_completion >= size - 1:
        return every
    order = list(range(size))
    random.Random(f"{seed}:{key}").shuffle(order)
    pairs = set()
    for offset in range(1, math.ceil(per_completion / 2) + 1):
        for position in range(size):
            a, b = order[position], order[(position + offset) % size]
            pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


def bradley_terry(
    wins: Sequence[Sequence[float]], *, prior: float = PRIOR, iterations: int = 200, tolerance: float = 1e-9
) -> list[float]:
    """Log-strengths (centred) from `wins[i][j]`, the (possibly fractional) games i won against j.

    Hunter's (2004) MM update with the prior's virtual opponent of strength 1:
    p_i ← (W_i + prior) / (Σ_j n_ij / (p_i + p_j) + 2·prior / (p_i + 1)).
    """
    size = len(wins)
    games = [[wins[i][j] + wins[j][i] for j in range(size)] for i in range(size)]
    won = [sum(row) + prior for row in wins]
    strength = [1.0] * size
    for _ in range(iterations):
        updated = [
            won[i]
            / (sum(games[i][j] / (strength[i] + strength[j]) for j in range(size) if j != i)
               + 2 * prior / (strength[i] + 1.0))
            for i in range(size)
        ]  # fmt: skip
        change = max(abs(a - b) for a, b in zip(updated, strength, strict=True)) if size else 0.0
        strength = updated
        if change < tolerance:
            break
    logs = [math.log(s) for s in strength]
    mean = sum(logs) / size if size else 0.0
    return [v - mean for v in logs]


@dataclass(frozen=True)
class GroupScores:
    """One group's outcome."""

    scores: list[float]
    """One score per completion (all 0.0 when masked)."""
    valid: int
    """Orders that parsed."""
    failed: int
    """Orders excluded: unparsed or failed requests."""
    masked: bool
    """Too few valid orders: every completion got the same score (no gradient)."""
    first_position: list[float]
    """P(first shown is better) of each valid order, for the position bias."""


def score_group(
    size: int, pairs: Sequence[tuple[int, int]], judgments: Sequence[Judgment], *, min_valid: float
) -> GroupScores:
    """Bradley–Terry scores of a group from the judgments of `pairs` (in that order, `a` = the pair's i)."""
    wins = [[0.0] * size for _ in range(size)]
    seen = [0] * size
    valid = failed = 0
    first: list[float] = []
    for (i, j), judgment in zip(pairs, judgments, strict=True):
        for order in judgment.orders:
            if order.status != "ok" or order.p_first is None:
                failed += 1
                continue
            valid += 1
            first.append(order.p_first)
            ahead, behind = (i, j) if order.first_id == judgment.response_a_id else (j, i)
            wins[ahead][behind] += order.p_first
            wins[behind][ahead] += 1.0 - order.p_first
            seen[i] += 1
            seen[j] += 1
    planned = valid + failed
    if not planned or valid < min_valid * planned or min(seen, default=0) == 0:
        return GroupScores([0.0] * size, valid, failed, True, first)
    return GroupScores(bradley_terry(wins), valid, failed, False, first)


def judge_group_reward(
    backend_args: dict[str, Any],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    per_completion: int | None = None,
    min_valid: float = 0.5,
) -> Any:
    """TRL reward function: each prompt's completions scored against each other by the judge.

    Requests go through `judge_items` on a fresh `OpenAIBackend` per call (inside its own `asyncio.run`),
    both orders always. Logs `group/position_bias` (mean P(first) − 0.5 of valid orders),
    `group/failed_orders` and `group/masked_groups` through TRL's `log_metric`.
    """
    from rlaif.backends.openai_api import OpenAIBackend

    both = config.model_copy(update={"both_orders": True})

    async def judge(items: list[Any]) -> list[Judgment]:
        from rlaif.judging.engine import judge_items

        backend = OpenAIBackend(**backend_args)
        try:
            await backend.resolve_model()
            return await judge_items(backend, items, constitution=constitution, config=both, seed=seed,
                                     quiet=True, description="judge group")  # fmt: skip
        finally:
            await backend.aclose()

    def judge_group(
        prompts: list[Any], completions: list[Any], prompt_id: list[str], **kwargs: Any
    ) -> list[float | None]:
        rewards, stats = group_rewards(
            prompts, completions, prompt_id, lambda items: asyncio.run(judge(items)),
            constitution=constitution, config=both, seed=seed, per_completion=per_completion,
            min_valid=min_valid,
        )  # fmt: skip
        log = kwargs.get("log_metric")
        if log is not None:
            for name, value in stats.items():
                if value is not None:
                    log(name, value)
        return rewards

    return judge_group


def group_rewards(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    prompt_ids: Sequence[str],
    judge: Any,
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    per_completion: int | None,
    min_valid: float,
) -> tuple[list[float | None], dict[str, float | None]]:
    """Rewards for a batch (completions grouped by prompt id) and the batch's group statistics;
    `judge(items) -> judgments` runs the comparisons of every group at once."""
    from rlaif.judging.modes import Candidate, JudgeItem, draw_principles

    groups: dict[str, list[int]] = {}
    for index, pid in enumerate(prompt_ids):
        groups.setdefault(pid, []).append(index)
    from rlaif.inputs.trajectory import flat_turns
    from rlaif.judging.trace import judged_text

    answers = [_answer(c) for c in completions]
    plans, items = {}, []
    for pid, rows in groups.items():
        plans[pid] = comparison_plan(len(rows), per_completion, seed=seed, key=pid)
        prompt = prompts[rows[0]]
        conversation = flat_turns([_turn(m) for m in prompt]) \
            if isinstance(prompt, list) else (Message(role="user", content=str(prompt)),)  # fmt: skip
        for i, j in plans[pid]:
            members = draw_principles(constitution, config, seed=seed, key=f"group:{pid}:{i}:{j}")
            shown = [p for member in members for p in member]
            # A trajectory (tool calls and results before the final answer) is judged whole under
            # `scope: trace`; its id hashes what is shown, so the whole trajectory.
            a, b = (judged_text(*answers[rows[k]], shown) for k in (i, j))
            items.append(JudgeItem(
                prompt_id=pid, conversation=conversation,
                a=Candidate(stable_id("completion", prompt_id=pid, text=a, index=i), a),
                b=Candidate(stable_id("completion", prompt_id=pid, text=b, index=j), b),
                members=members,
            ))  # fmt: skip
    judgments = judge(items) if items else []
    rewards: list[float | None] = [None] * len(completions)
    first: list[float] = []
    failed = masked = 0
    start = 0
    for pid, rows in groups.items():
        count = len(plans[pid])
        outcome = score_group(len(rows), plans[pid], judgments[start : start + count], min_valid=min_valid)
        start += count
        for row, score in zip(rows, outcome.scores, strict=True):
            rewards[row] = score
        first += outcome.first_position
        failed += outcome.failed
        masked += outcome.masked
    stats: dict[str, float | None] = {
        "group/position_bias": sum(first) / len(first) - 0.5 if first else None,
        "group/failed_orders": float(failed),
        "group/masked_groups": float(masked),
        "group/groups": float(len(groups)),
    }
    return rewards, stats


def _answer(completion: Any) -> tuple[str, tuple[Message, ...]]:
    """(final text, trace) of a completion: a string, or TRL conversational turns whose last is the
    answer and whose earlier ones (assistant tool calls, tool results) are its trace."""
    if not isinstance(completion, list):
        return str(completion), ()
    turns = [_turn(m) for m in completion]
    return turns[-1].content, tuple(turns[:-1])


def _turn(message: Any) -> Message:
    """A chat turn as datasets give it back: Arrow fills the tool fields a turn lacks with None."""
    given = {k: v for k, v in dict(message).items() if v is not None}
    return Message.model_validate({**given, "content": given.get("content") or ""})
