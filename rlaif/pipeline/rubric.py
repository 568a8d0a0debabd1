"""The rubric stage (`judge.rubric: per_prompt`): per-prompt checklists instead of the pairwise question.

For each prompt whose drawn principles are all judged by a checklist (`judging.rubric.uses_rubric`) and
whose sampled pair no check decides, the judge writes each principle's items (`RubricItems`), scores
every sampled answer of the prompt on every item (`RubricScore`), keeps the informative items
(`filter_items`; the check-labelled sample pairs are the labelled pairs) and stores the sampled pair's
`Judgment` (mode `rubric`) in `judgments.jsonl`, where the pairs, filters, gates and calibration of the
export read it as any judge pair. Every record is stored as it comes, so a rerun resumes; a failed
request stores nothing and is retried. The items dropped, with their reasons, go to `rubric_dropped.jsonl`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif._version import __version__
from rlaif.backends.protocol import Backend
from rlaif.backends.window import window_for, windowed
from rlaif.config import JudgeConfig
from rlaif.judging.checks import checkable
from rlaif.judging.modes import Candidate, draw_principles, judge_nonce
from rlaif.judging.rubric import (
    RubricAsker,
    check_items_template,
    parse_items,
    rubric_principles,
    rubric_verdict,
)
from rlaif.pipeline.judge import check_outcomes, pair_item
from rlaif.pipeline.reports import RubricReport
from rlaif.progress import stage_progress
from rlaif.records import (
    CheckOutcome,
    Constitution,
    Judgment,
    Principle,
    PromptRecord,
    Provenance,
    Response,
    RubricItems,
    RubricScore,
    stable_id,
)
from rlaif.store import Stage, write_atomic
from rlaif.templates import SHIPPED, Templates

__all__ = ["items_id", "rubric", "rubric_on"]

TEMPLATES = ("rubric_items", "rubric_score")


def rubric_on(constitution: Constitution, config: JudgeConfig) -> bool:
    """Whether any judged principle can be judged by a checklist (then the stage runs)."""
    from rlaif.judging.rubric import uses_rubric

    return any(uses_rubric(p, config) for p in constitution.for_judging())


def items_id(
    prompt_id: str, principle: Principle, *, model: str, k: int, seed: int, constitution: Constitution,
    templates: Templates,
) -> str:  # fmt: skip
    """The id of a prompt's checklist for a principle."""
    return stable_id(
        "rubric_items", prompt_id=prompt_id, principle_id=principle.id, model=model, k=k, seed=seed,
        template_hash=templates.hash("rubric_items"), constitution_hash=constitution.hash,
    )  # fmt: skip


def _provenance(
    backend: Backend, template: str, hash_: str, constitution: Constitution, seed: int
) -> Provenance:
    return Provenance(
        model=backend.label, template=template, template_hash=hash_, constitution_hash=constitution.hash,
        seed=seed, rlaif_version=__version__,
    )  # fmt: skip


class _Prompt:
    """One prompt's rubric: items written (or read back), scored, filtered, the pair's judgment stored."""

    def __init__(self, stage: _Rubric, prompt: PromptRecord, candidates: Sequence[Response]):
        self.s, self.prompt, self.candidates = stage, prompt, candidates

    async def items(self, principle: Principle) -> RubricItems | None:
        s = self.s
        iid = items_id(
            self.prompt.id, principle, model=s.backend.label, k=s.config.rubric_items, seed=s.seed,
            constitution=s.constitution, templates=s.templates,
        )  # fmt: skip
        found = s.items_stage.get(iid)
        if found is not None:
            s.report.reused += 1
            return found
        result = await s.asker.write(self.prompt.messages, principle, f"rubric:{iid}")
        s.count(result)
        if result.error:
            s.report.fail(f"rubric items {iid}: {result.error[:200]}")
            return None
        raw = result.texts[0] if result.texts else ""
        parsed = parse_items(raw, s.config.rubric_items)
        record = RubricItems(
            id=iid, prompt_id=self.prompt.id, principle_id=principle.id,
            items=parsed[0] if parsed else (), status="ok" if parsed else "unparsed", raw=raw,
            duplicates=parsed[1] if parsed else 0,
            provenance=s.provenance("rubric_items", s.templates.hash("rubric_items")),
        )  # fmt: skip
        s.report.made += s.items_stage.append([record])
        s.report.items_unparsed += record.status == "unparsed"
        s.report.items_written += len(record.items)
        s.report.items_duplicate += record.duplicates
        return record

    async def score(self, items: RubricItems, item: str, response: Response) -> RubricScore | None:
        s = self.s
        sid = stable_id(
            "rubric_score", items_id=items.id, item=item, response_id=response.id, model=s.backend.label,
            template_hash=s.templates.hash("rubric_score"),
        )  # fmt: skip
        found = s.scores_stage.get(sid)
        if found is not None:
            return found
        p, raw, result = await s.asker.score(self.prompt.messages, item, response.text, f"rubric:{sid}")
        s.count(result)
        if result.error:
            s.report.fail(f"rubric score {sid}: {result.error[:200]}")
            return None
        record = RubricScore(
            id=sid, prompt_id=self.prompt.id, response_id=response.id, principle_id=items.principle_id,
            items_id=items.id, item=item, p_yes=p, status="ok" if p is not None else "unparsed", raw=raw,
            logprobs=result.first_token_logprobs,
            provenance=s.provenance("rubric_score", s.templates.hash("rubric_score")),
        )  # fmt: skip
        s.scores_stage.append([record])
        s.report.scores += 1
        s.report.scores_unparsed += p is None
        return record

    async def run(
        self, principles: Sequence[Principle], outcomes: dict[str, dict[str, CheckOutcome]]
    ) -> None:
        s = self.s
        written = await asyncio.gather(*(self.items(p) for p in principles))
        if any(w is None for w in written):
            return  # a request failed: nothing more for this prompt now, a rerun retries
        lists = [w for w in written if w is not None]
        jobs = [(w, item, r) for w in lists for item in w.items for r in self.candidates]
        scored = await asyncio.gather(*(self.score(w, item, r) for w, item, r in jobs))
        if any(x is None for x in scored):
            return
        table: dict[str, dict[str, dict[str, float | None]]] = {}  # principle -> response -> item -> p
        for record in scored:
            assert record is not None
            table.setdefault(record.principle_id, {}).setdefault(record.response_id, {})[record.item] = (
                record.p_yes
            )
        a, b = self.candidates[0], self.candidates[1]
        unparsed = all(w.status == "unparsed" for w in lists)
        verdict = rubric_verdict(
            principles, {w.principle_id: w.items for w in lists}, table, a.id, b.id, unparsed=unparsed,
            labelled={p.id: _labelled(p, self.candidates, outcomes) for p in principles},
        )  # fmt: skip
        s.report.items_kept += sum(len(k) for k in verdict.kept.values())
        by_principle = {w.principle_id: w.id for w in lists}
        for pid, item, reason in verdict.dropped:
            why = reason.split(" (")[0]
            s.report.items_dropped[why] = s.report.items_dropped.get(why, 0) + 1
            s.dropped.append({"prompt_id": self.prompt.id, "principle_id": pid, "items_id": by_principle[pid],
                              "item": item, "reason": reason})  # fmt: skip
        ids = tuple(p.id for p in principles)
        jid = stable_id(
            "judgment", prompt_id=self.prompt.id, response_ids=[a.id, b.id], principle_ids=[list(ids)],
            model=s.backend.label, template_hash=s.template_hash, constitution_hash=s.constitution.hash,
            settings={"rubric": "per_prompt", "rubric_items": s.config.rubric_items},
            items_ids=[w.id for w in lists],
        )  # fmt: skip
        if jid in s.judgments:
            return
        judgment = Judgment(
            id=jid, prompt_id=self.prompt.id, response_a_id=a.id, response_b_id=b.id, principle_ids=ids,
            orders=verdict.orders, p_a=verdict.p_a, consistent=None, status="unparsed" if unparsed else "ok",
            mode="rubric", rubric_items=verdict.decided,
            provenance=s.provenance("+".join(TEMPLATES), s.template_hash),
        )  # fmt: skip
        s.report.judgments += s.judgments.append([judgment])
        s.report.unparsed += unparsed


def _labelled(
    principle: Principle, candidates: Sequence[Response], outcomes: dict[str, dict[str, CheckOutcome]]
) -> list[tuple[str, str]]:
    """(better, worse) sample pairs the principle's check labels: one passes it, the other fails it."""
    passed = {r.id: outcomes.get(r.id, {}).get(principle.id) for r in candidates}
    good = [rid for rid, o in passed.items() if o is not None and o.passed is True]
    bad = [rid for rid, o in passed.items() if o is not None and o.passed is False]
    return [(g, w) for g in good for w in bad]


class _Rubric:
    """What every prompt of one stage run shares."""

    def __init__(self, backend: Backend, **fields: Any):
        self.backend = backend
        self.__dict__.update(fields)
        self.report = RubricReport()
        self.dropped: list[dict[str, str]] = []
        self.asker = RubricAsker(backend, self.config.rubric_items, self.seed, judge_nonce(self.seed),
                                 self.templates)  # fmt: skip
        self.template_hash = "+".join(self.templates.hash(t) for t in TEMPLATES)

    config: JudgeConfig
    seed: int
    constitution: Constitution
    templates: Templates
    items_stage: Stage[RubricItems]
    scores_stage: Stage[RubricScore]
    judgments: Stage[Judgment]

    def provenance(self, template: str, template_hash: str) -> Provenance:
        return Provenance(
            model=self.backend.label, template=template, template_hash=template_hash,
            constitution_hash=self.constitution.hash, seed=self.seed, rlaif_version=__version__,
        )  # fmt: skip

    def count(self, result: Any) -> None:
        self.report.requests += 1
        self.report.prompt_tokens += result.prompt_tokens
        self.report.completion_tokens += result.completion_tokens


async def rubric(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    responses: Mapping[str, Sequence[Response]],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    items: Stage[RubricItems],
    scores: Stage[RubricScore],
    judgments: Stage[Judgment],
    dropped: Path | None = None,
    quiet: bool = False,
    templates: Templates = SHIPPED,
) -> RubricReport:
    """Write, score and filter the checklists of every prompt the rubric judges, and store the judgment of
    each one's sampled pair (see the module's docstring); the report counts items, requests and tokens."""
    check_items_template(templates)
    s = _Rubric(backend, config=config, seed=seed, constitution=constitution, templates=templates,
                items_stage=items, scores_stage=scores, judgments=judgments)  # fmt: skip
    checked = checkable(constitution) if config.checks != "off" else ()

    def jobs() -> Iterator[Any]:
        for prompt in prompts:
            candidates = list(responses.get(prompt.id, ()))
            if len(candidates) < 2:
                continue
            members = draw_principles(constitution, config, seed=seed, key=f"judge:{prompt.id}")
            principles = rubric_principles(members, config)
            if principles is None:
                continue
            outcomes = check_outcomes(prompt, candidates, checked)
            a, b = candidates[0], candidates[1]
            item = pair_item(prompt, Candidate(a.id, a.text), Candidate(b.id, b.text), members, config=config,
                             seed=seed, outcomes=outcomes)  # fmt: skip
            if item.check_p_a is not None:
                continue  # the checks decide this pair (the judge stage stores it)
            s.report.prompts += 1
            yield _Prompt(s, prompt, candidates).run(principles, outcomes)

    with stage_progress("rubric", None, quiet=quiet) as advance:
        await windowed(jobs(), window=max(1, window_for(backend) // 8), on_done=lambda _: advance())
    if dropped is not None:
        write_dropped(dropped, s.dropped)
    return s.report


def _dropped_key(row: dict[str, str]) -> tuple[str, ...]:
    return (row["prompt_id"], row["principle_id"], row["item"], row["reason"])


def write_dropped(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """`rubric_dropped.jsonl` in one order whoever made it (a process, or `--workers` workers' parts
    joined by `join_dropped`), so a run's file is the same for any worker count."""
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in sorted(rows, key=_dropped_key))
    write_atomic(path, "".join(lines))


def join_dropped(path: Path, parts: Sequence[Path]) -> None:
    """Join the workers' parts of `rubric_dropped.jsonl` into it and remove them: each worker filters
    its own prompts' items, and one file written whole by each would keep the last worker's alone."""
    rows = [json.loads(line) for part in parts if part.exists() for line in part.open(encoding="utf-8")]
    write_dropped(path, rows)
    for part in parts:
        part.unlink(missing_ok=True)
