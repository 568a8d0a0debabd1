"""The judge engine: asks for verdicts on many pairs at once and turns them into `Judgment`s.

Modes (`JudgeConfig.mode`): a one-token A/B verdict read from log-probs; chain of thought followed by
a constrained letter (or a strictly parsed "Verdict:" line), clamped to a band; or a pointwise 1-10
rubric score per response as structured JSON. Pairwise verdicts are judged in both presentation
orders and averaged, which cancels position bias in the label and shows it in the consistency rate;
a principle ensemble repeats that under several principle draws. An answer that does not parse is
recorded as `unparsed` with its raw text: never turned into a label.

`judge_items` is shared by the pipeline's judge stage and by the evaluations; how each mode asks is in
`judging.modes`, the arithmetic in `judging.labels`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Iterable, Iterator, Sequence
from typing import Any

from rlaif._version import __version__
from rlaif.backends.protocol import Backend
from rlaif.backends.window import window_for, windowed
from rlaif.config import JudgeConfig
from rlaif.judging.injection import flag_injection
from rlaif.judging.labels import combine_orders, position_means, side
from rlaif.judging.modes import Asker, JudgeItem, judge_nonce, judge_template, solved_examples
from rlaif.judging.reports import JudgeStats
from rlaif.progress import stage_progress
from rlaif.records import Constitution, Judgment, OrderVerdict, Provenance, stable_id
from rlaif.templates import SHIPPED, Templates

__all__ = ["judge_items", "judge_stats", "judgment_id"]


def judgment_id(
    item: JudgeItem,
    *,
    model: str,
    config: JudgeConfig,
    constitution: Constitution,
    nonce: str,
    templates: Templates = SHIPPED,
) -> str:
    """The id of the judgment of `item`: changes with the model, template, principles and verdict settings."""
    settings = config.model_dump(
        mode="json",
        include={"mode", "both_orders", "few_shot", "self_consistency", "cot_max_tokens", "cot_temperature",
                 "cot_final", "cot_clamp", "defences"},
    )  # fmt: skip
    # Fields that are new since the first format enter only when set, so earlier ids stay valid.
    extra: dict[str, object] = {}
    if item.kind != "sampled":
        extra["pair_kind"] = item.kind
    if item.check_p_a is not None:
        extra.update(check_p_a=item.check_p_a, probe=item.probe)
    return stable_id(
        "judgment",
        prompt_id=item.prompt_id,
        response_ids=[item.a.id, item.b.id],
        principle_ids=[[p.id for p in member] for member in item.members],
        model=model,
        template_hash=templates.hash(judge_template(config)),
        constitution_hash=constitution.hash,
        nonce=nonce,
        settings=settings,
        **extra,
    )


async def judge_items(
    backend: Backend,
    items: Iterable[JudgeItem],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    done: Collection[str] = (),
    on_judgment: Callable[[Judgment], None] | None = None,
    concurrency: int = 32,
    quiet: bool = False,
    description: str = "judge",
    total: int | None = None,
    keep: bool = True,
    templates: Templates = SHIPPED,
) -> list[Judgment]:
    """Judge every item whose id is not in `done`; return the judgments in item order (none when not
    `keep`: a stage that stores each one through `on_judgment` need not hold them all).

    `on_judgment` is called as each judgment completes, so a stage can store it at once. At most
    `concurrency` items are in progress, which keeps an item's second order close behind its first
    (so the shared prefix is still cached) while the server's batch stays full. `items` may be a lazy
    iterable, made a window at a time; `total` is then the progress bar's length (a sequence counts
    its own).
    """
    nonce = judge_nonce(seed)
    template = judge_template(config)
    source_hash = templates.hash(template)
    examples = solved_examples(constitution, config.few_shot)
    run = Asker(backend, config, seed, nonce, template, examples, templates)

    def ident(item: JudgeItem) -> str:
        return judgment_id(
            item,
            model=backend.label,
            config=config,
            constitution=constitution,
            nonce=nonce,
            templates=templates,
        )

    if isinstance(items, Sequence) and total is None:
        total = sum(ident(item) not in done for item in items)
    results: dict[int, Judgment] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, item: JudgeItem, jid: str) -> None:
        orders: tuple[OrderVerdict, ...] = ()
        if item.check_p_a is None or item.probe:
            async with gate:
                groups = await asyncio.gather(
                    *(run.member(item, m, ps, jid) for m, ps in enumerate(item.members))
                )
            orders = tuple(v for group in groups for v in group)
        p_a, consistent, status = combine_orders(orders, item.a.id) if orders else (None, None, "ok")
        llm: dict[str, object] = {}
        if item.check_p_a is not None:  # the checks decided; a probed LLM verdict is kept beside
            agrees = None if p_a is None or side(p_a) == 0 else side(p_a) == side(item.check_p_a)
            llm = {"source": "check", "llm_p_a": p_a, "llm_agrees": agrees}
            p_a = item.check_p_a
        flags = {c.id: f for c in (item.a, item.b) if (f := flag_injection(c.text))}
        principle_ids = tuple(dict.fromkeys(p.id for member in item.members for p in member))
        judgment = Judgment(
            id=jid, prompt_id=item.prompt_id, response_a_id=item.a.id, response_b_id=item.b.id,
            principle_ids=principle_ids, orders=orders, p_a=p_a, consistent=consistent,
            status=status,  # type: ignore[arg-type]
            mode=config.mode, flags=flags, kind=item.kind, checks=item.checks, probe_kind=item.probe_kind,
            known_better=item.known_better, **llm,  # type: ignore[arg-type]
            provenance=Provenance(
                model=backend.label, template=template, template_hash=source_hash,
                constitution_hash=constitution.hash, seed=seed, rlaif_version=__version__,
            ),
        )  # fmt: skip
        if keep:
            results[index] = judgment
        if on_judgment is not None:
            on_judgment(judgment)

    def jobs() -> Iterator[Coroutine[Any, Any, None]]:
        for index, item in enumerate(items):
            jid = ident(item)
            if jid not in done:
                yield one(index, item, jid)

    with stage_progress(description, total, quiet=quiet) as advance:
        await windowed(jobs(), window=window_for(backend), on_done=lambda _: advance())
    return [results[i] for i in sorted(results)]


def judge_stats(judgments: Iterable[Judgment]) -> JudgeStats:
    """Parse counts, order-consistency and same-position counts over judgments (read once)."""
    stats = JudgeStats()
    for judgment in judgments:
        stats.judged += 1
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
