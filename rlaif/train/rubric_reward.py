"""`reward: rubric` for online RL (RLOO/GRPO) and our PPO: each completion scored on the prompt's checklist.

The judge writes each prompt's items once per drawn principle (`judging.rubric`, the rubric stage's own
requests) and they are cached for the rest of training; every completion is then scored item by item as
P(yes), and its reward is the principles' weighted mean of their items' mean P(yes). Nothing is filtered
online: there are no labelled answers to filter against, so an item every completion meets adds the
same to all of them (no advantage) rather than being dropped. An item list that does not parse gives that
principle no items; a completion with no scored item gets None (TRL: no reward; PPO: 0.0).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from rlaif.config import JudgeConfig
from rlaif.judging.modes import draw_principles, judge_nonce
from rlaif.judging.rubric import RubricAsker, mean_score, parse_items, weighted
from rlaif.records import Constitution, Message, Principle, stable_id

__all__ = ["RubricReward", "rubric_reward"]


class RubricReward:
    """Scores completions on cached per-prompt rubric items through a judge server (`backend_args`, an
    `OpenAIBackend`'s arguments; a fresh client per call inside its own `asyncio.run`, so TRL's synchronous
    loop can call it). `last_metrics` holds the last call's `rubric/*` figures."""

    def __init__(
        self, backend_args: dict[str, Any], *, constitution: Constitution, config: JudgeConfig, seed: int
    ) -> None:
        self.backend_args, self.constitution, self.config, self.seed = (
            backend_args,
            constitution,
            config,
            seed,
        )
        self.items: dict[tuple[str, str], tuple[str, ...]] = {}
        """(conversation id, principle id) -> its items (() when the answer did not parse)."""
        self.last_metrics: dict[str, float] = {}

    def principles(self, key: str) -> tuple[Principle, ...]:
        members = draw_principles(self.constitution, self.config, seed=self.seed, key=f"rubric-reward:{key}")
        return tuple(dict.fromkeys(p for member in members for p in member))

    async def _score(
        self, conversations: Sequence[tuple[Message, ...]], texts: Sequence[str]
    ) -> list[float | None]:
        from rlaif.backends.openai_api import OpenAIBackend

        backend = OpenAIBackend(**self.backend_args)
        written = unparsed_lists = unparsed_scores = requests = 0
        try:
            await backend.resolve_model()
            asker = RubricAsker(backend, self.config.rubric_items, self.seed, judge_nonce(self.seed))
            keys = [stable_id("conversation", messages=list(c)) for c in conversations]
            wanted = {
                (k, p.id): (c, p)
                for k, c in zip(keys, conversations, strict=True)
                for p in self.principles(k)
            }
            missing = [key for key in wanted if key not in self.items]
            results = await asyncio.gather(
                *(
                    asker.write(wanted[key][0], wanted[key][1], f"rubric-reward:{key[0]}:{key[1]}")
                    for key in missing
                )
            )
            for key, result in zip(missing, results, strict=True):
                requests += 1
                if result.error:
                    continue  # asked again next step
                parsed = parse_items(result.texts[0] if result.texts else "", self.config.rubric_items)
                self.items[key] = parsed[0] if parsed else ()
                written += 1
                unparsed_lists += parsed is None
            jobs = [
                (row, pid, item)
                for row, (k, c) in enumerate(zip(keys, conversations, strict=True))
                for p in self.principles(k)
                for pid in (p.id,)
                for item in self.items.get((k, pid), ())
            ]
            scored = await asyncio.gather(
                *(
                    asker.score(conversations[row], item, texts[row], f"rubric-reward:{keys[row]}:{item}")
                    for row, _, item in jobs
                )
            )
            requests += len(jobs)
            table: list[dict[str, dict[str, float | None]]] = [{} for _ in texts]
            for (row, pid, item), (p, _, _) in zip(jobs, scored, strict=True):
                table[row].setdefault(pid, {})[item] = p
                unparsed_scores += p is None
        finally:
            await backend.aclose()
        rewards: list[float | None] = []
        for row, k in enumerate(keys):
            per = []
            for p in self.principles(k):
                s = mean_score(self.items.get((k, p.id), ()), table[row].get(p.id, {}))
                if s is not None:
                    per.append((s, p.weight))
            rewards.append(weighted(per))
        self.last_metrics = {
            "rubric/item_lists_written": float(written), "rubric/item_lists_unparsed": float(unparsed_lists),
            "rubric/scores_unparsed": float(unparsed_scores), "rubric/requests": float(requests),
            "rubric/unscored": float(sum(r is None for r in rewards)),
        }  # fmt: skip
        return rewards

    def score(self, conversations: Sequence[tuple[Message, ...]], texts: Sequence[str]) -> list[float | None]:
        return asyncio.run(self._score(conversations, texts))

    def __call__(self, prompts: list[str], completions: list[str]) -> list[float]:
        """PPO's reward function (each prompt one user turn): the rubric scores, 0.0 where unscored."""
        found = self.score([(Message(role="user", content=p),) for p in prompts], completions)
        return [0.0 if r is None else r for r in found]


def rubric_reward(
    backend_args: dict[str, Any], *, constitution: Constitution, config: JudgeConfig, seed: int
) -> Any:
    """TRL reward function (`reward: rubric`): a completion's rubric score; logs `rubric/*` each step
    through TRL's `log_metric`."""
    scorer = RubricReward(backend_args, constitution=constitution, config=config, seed=seed)

    def rubric(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        conversations = [
            tuple(Message(role=m["role"], content=m["content"]) for m in p)
            if isinstance(p, list)
            else (Message(role="user", content=str(p)),)
            for p in prompts
        ]
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        found = scorer.score(conversations, texts)
        log = kwargs.get("log_metric")
        if log is not None:
            for name, value in scorer.last_metrics.items():
                log(name, value)
        return found

    rubric.scorer = scorer  # type: ignore[attr-defined]
    return rubric
