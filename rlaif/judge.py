"""The AI judge: two responses, one or more principles, a verdict with a soft label.

Modes (`JudgeConfig.mode`): a one-token A/B verdict read from log-probs; chain of thought followed by
a constrained letter (or a strictly parsed "Verdict:" line), clamped to a band; or a pointwise 1-10
rubric score per response as structured JSON. Pairwise verdicts are judged in both presentation
orders and averaged, which cancels position bias in the label and shows it in the consistency rate;
a principle ensemble repeats that under several principle draws. An answer that does not parse is
recorded as `unparsed` with its raw text: never turned into a label.

`judge_items` is the engine, shared by the pipeline stage `judge` and by `rlaif evaluate`; how each
mode asks is in `judge_modes`, the arithmetic in `judge_math`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from rlaif import __version__
from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig
from rlaif.injection import flag_injection
from rlaif.judge_math import OPTIONS, combine_orders, option_probability, position_means, side
from rlaif.judge_modes import (
    SCORE_SCHEMA,
    Asker,
    Candidate,
    JudgeItem,
    draw_principles,
    judge_nonce,
    judge_prompt,
    judge_template,
    order_verdict,
    solved_examples,
)
from rlaif.progress import stage_progress
from rlaif.records import Constitution, Judgment, PromptRecord, Provenance, Response, stable_id
from rlaif.respond import StageReport
from rlaif.store import Stage
from rlaif.templates import template_hash

__all__ = [
    "OPTIONS",
    "SCORE_SCHEMA",
    "Candidate",
    "JudgeItem",
    "JudgeStats",
    "combine_orders",
    "draw_principles",
    "judge",
    "judge_items",
    "judge_nonce",
    "judge_prompt",
    "judge_stats",
    "judge_template",
    "judgment_id",
    "option_probability",
    "order_verdict",
]


def judgment_id(
    item: JudgeItem, *, model: str, config: JudgeConfig, constitution: Constitution, nonce: str
) -> str:
    """The id of the judgment of `item`: changes with the model, template, principles and verdict settings."""
    settings = config.model_dump(
        mode="json",
        include={"mode", "both_orders", "few_shot", "self_consistency", "cot_max_tokens", "cot_temperature",
                 "cot_final", "cot_clamp", "defences"},
    )  # fmt: skip
    return stable_id(
        "judgment",
        prompt_id=item.prompt_id,
        response_ids=[item.a.id, item.b.id],
        principle_ids=[[p.id for p in member] for member in item.members],
        model=model,
        template_hash=template_hash(judge_template(config)),
        constitution_hash=constitution.hash,
        nonce=nonce,
        settings=settings,
    )


async def judge_items(
    backend: Backend,
    items: Sequence[JudgeItem],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    done: Collection[str] = (),
    on_judgment: Callable[[Judgment], None] | None = None,
    concurrency: int = 32,
    quiet: bool = False,
    description: str = "judge",
) -> list[Judgment]:
    """Judge every item whose id is not in `done`; return the judgments in item order.

    `on_judgment` is called as each judgment completes, so a stage can store it at once. At most
    `concurrency` items are in progress, which keeps an item's second order close behind its first
    (so the shared prefix is still cached) while the server's batch stays full.
    """
    nonce = judge_nonce(seed)
    template = judge_template(config)
    source_hash = template_hash(template)
    run = Asker(backend, config, seed, nonce, template, solved_examples(constitution, config.few_shot))
    ids = [
        judgment_id(item, model=backend.label, config=config, constitution=constitution, nonce=nonce)
        for item in items
    ]
    todo = [(i, jid) for i, jid in enumerate(ids) if jid not in done]
    results: dict[int, Judgment] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, jid: str) -> None:
        item = items[index]
        async with gate:
            groups = await asyncio.gather(
                *(run.member(item, m, ps, jid) for m, ps in enumerate(item.members))
            )
        orders = tuple(v for group in groups for v in group)
        p_a, consistent, status = combine_orders(orders, item.a.id)
        flags = {c.id: f for c in (item.a, item.b) if (f := flag_injection(c.text))}
        principle_ids = tuple(dict.fromkeys(p.id for member in item.members for p in member))
        judgment = Judgment(
            id=jid, prompt_id=item.prompt_id, response_a_id=item.a.id, response_b_id=item.b.id,
            principle_ids=principle_ids, orders=orders, p_a=p_a, consistent=consistent,
            status=status,  # type: ignore[arg-type]
            mode=config.mode, flags=flags,
            provenance=Provenance(
                model=backend.label, template=template, template_hash=source_hash,
                constitution_hash=constitution.hash, seed=seed, rlaif_version=__version__,
            ),
        )  # fmt: skip
        results[index] = judgment
        if on_judgment is not None:
            on_judgment(judgment)

    with stage_progress(description, len(todo), quiet=quiet) as advance:
        pending = [asyncio.ensure_future(one(i, jid)) for i, jid in todo]
        try:
            for finished in asyncio.as_completed(pending):
                await finished
                advance()
        finally:
            for future in pending:
                future.cancel()
    return [results[i] for i in sorted(results)]


@dataclass
class JudgeStats:
    """Run-level judge metrics."""

    judged: int
    parsed_orders: int
    unparsed_orders: int
    both_orders: int
    """Judgments with a parsed verdict in both presentation orders."""
    consistent: int
    same_position: int
    """Judgments whose two orders both preferred the first (or both the second) position."""

    @property
    def consistency_rate(self) -> float | None:
        return self.consistent / self.both_orders if self.both_orders else None

    @property
    def same_position_rate(self) -> float | None:
        return self.same_position / self.both_orders if self.both_orders else None


def judge_stats(judgments: Sequence[Judgment]) -> JudgeStats:
    """Parse counts, order-consistency and same-position counts over judgments."""
    stats = JudgeStats(len(judgments), 0, 0, 0, 0, 0)
    for judgment in judgments:
        parsed = sum(o.status == "ok" for o in judgment.orders)
        stats.parsed_orders += parsed
        stats.unparsed_orders += len(judgment.orders) - parsed
        first, second = position_means(judgment.orders, judgment.response_a_id)
        if first is None or second is None:
            continue
        stats.both_orders += 1
        stats.consistent += side(first) == side(second)
        # Same position: a wins when shown first and loses when shown second, or the reverse.
        stats.same_position += side(first) == -side(second) != 0
    return stats


async def judge(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    responses: dict[str, list[Response]],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool = False,
) -> StageReport:
    """Judge the first two responses of every prompt; store one Judgment per prompt."""
    report = StageReport()
    items = []
    for prompt in prompts:
        candidates = responses.get(prompt.id, [])
        if len(candidates) < 2:
            continue
        a, b = candidates[0], candidates[1]
        items.append(
            JudgeItem(
                prompt_id=prompt.id,
                conversation=prompt.messages,
                a=Candidate(a.id, a.text),
                b=Candidate(b.id, b.text),
                members=draw_principles(constitution, config, seed=seed, key=f"judge:{prompt.id}"),
            )
        )
    done = {j.id for j in stage}  # ids already stored: a rerun resumes

    def store(judgment: Judgment) -> None:
        failed = [o for o in judgment.orders if o.status == "error"]
        if failed:  # the request failed, not the model: keep it out of the store so a rerun retries
            report.fail(f"judgment {judgment.id}: {failed[0].raw[:200]}")
            return
        # An answer that did not parse is the model's verdict, recorded as such with its raw text.
        report.unparsed += judgment.status != "ok"
        report.made += stage.append([judgment])

    made = await judge_items(
        backend, items, constitution=constitution, config=config, seed=seed, done=done,
        on_judgment=store, quiet=quiet,
    )  # fmt: skip
    report.reused += len(items) - len(made)
    return report
