"""The judge stage: the first two responses of every prompt, judged under sampled principles."""

from __future__ import annotations

from collections.abc import Sequence

from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig
from rlaif.judging.engine import judge_items
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles
from rlaif.records import Constitution, Judgment, PromptRecord, Response
from rlaif.reports import StageReport
from rlaif.store import Stage

__all__ = ["judge"]


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
