"""The judge stage: the first two responses of every prompt, judged under sampled principles; and the
validation of revisions against their originals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from rlaif.backends.protocol import Backend
from rlaif.config import JudgeConfig
from rlaif.inputs.trajectory import flat_turns
from rlaif.judging.checks import checkable, run_check
from rlaif.judging.engine import judge_items
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles
from rlaif.judging.rubric import rubric_principles, uses_rubric
from rlaif.judging.trace import checked_conversation, judged_text
from rlaif.pipeline.reports import StageReport
from rlaif.records import (
    CheckOutcome,
    Constitution,
    Judgment,
    Message,
    Principle,
    PromptRecord,
    Response,
    Revision,
    derive_seed,
)
from rlaif.store import Stage
from rlaif.templates import SHIPPED, Templates

__all__ = ["check_outcomes", "judge", "judge_all", "pair_item", "validate_revisions", "validates_revisions"]


def _storer(stage: Stage[Judgment], report: StageReport) -> Callable[[Judgment], None]:
    def store(judgment: Judgment) -> None:
        failed = [o for o in judgment.orders if o.status == "error"]
        if failed:  # the request failed, not the model: keep it out of the store so a rerun retries
            report.fail(f"judgment {judgment.id}: {failed[0].raw[:200]}")
            return
        # An answer that did not parse is the model's verdict, recorded as such with its raw text.
        report.unparsed += judgment.status != "ok"
        report.made += stage.append([judgment])

    return store


async def judge_all(
    backend: Backend,
    items: Iterable[JudgeItem],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool,
    description: str,
    total: int | None = None,
    templates: Templates,
) -> StageReport:
    """Judge `items` not yet in `stage`, storing each judgment as it comes (a failed request is not
    stored, so a rerun retries it); the report counts made, reused, failed and unparsed."""
    report = StageReport()
    store = _storer(stage, report)
    seen = judged = 0

    def counted() -> Iterator[JudgeItem]:
        nonlocal seen
        for item in items:
            seen += 1
            yield item

    def on_judgment(judgment: Judgment) -> None:
        nonlocal judged
        judged += 1
        store(judgment)

    await judge_items(
        backend, counted(), constitution=constitution, config=config, seed=seed, done=stage.ids(),
        on_judgment=on_judgment, quiet=quiet, description=description, total=total, keep=False,
        templates=templates,
    )  # fmt: skip
    report.reused += seen - judged
    return report


def _decision(
    members: tuple[tuple[Principle, ...], ...], outcomes: dict[str, dict[str, CheckOutcome]], a: str, b: str
) -> float | None:
    """1.0 when the checks prefer response `a`, 0.0 when they prefer `b`; None when they cannot decide:
    a principle without a check, a check error, or equal scores."""
    principles = [p for member in members for p in member]
    if not principles or any(p.id not in outcomes[a] for p in principles):
        return None
    scores = []
    for response in (a, b):
        found = [outcomes[response][p.id].score for p in principles]
        if any(score is None for score in found):
            return None  # a check error is never a pass or a fail
        scores.append(sum(found) / len(found))  # type: ignore[arg-type]
    if scores[0] == scores[1]:
        return None
    return 1.0 if scores[0] > scores[1] else 0.0


def _probed(config: JudgeConfig, seed: int, key: str) -> bool:
    """Whether a check-decided pair is also put to the LLM (`probe`, for a seeded `probe_share` of pairs)."""
    if config.checks != "probe":
        return False
    return config.probe_share >= 1.0 or (derive_seed(seed, f"probe:{key}") / 2**31) < config.probe_share


def _contrast(
    principle: Principle,
    others: Sequence[Principle],
    candidates: Sequence[Response],
    outcomes: dict[str, dict[str, CheckOutcome]],
) -> tuple[Response, Response] | None:
    """A sample that passes `principle`'s check and one that fails it, chosen to differ least on the other
    checks (then to pass more of them): the pair teaches this principle and little else."""
    passing = [r for r in candidates if outcomes[r.id][principle.id].passed is True]
    failing = [r for r in candidates if outcomes[r.id][principle.id].passed is False]
    if not passing or not failing:
        return None

    def score(response: Response, other: Principle) -> float:
        value = outcomes[response.id][other.id].score
        return -1.0 if value is None else value

    def rank(pair: tuple[Response, Response]) -> tuple[float, float, int, int]:
        x, y = pair
        gap = sum(abs(score(x, o) - score(y, o)) for o in others)
        both = sum(score(x, o) + score(y, o) for o in others)
        return gap, -both, x.sample_index, y.sample_index

    return min(((x, y) for x in passing for y in failing), key=rank)


async def judge(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    responses: Mapping[str, Sequence[Response]],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool = False,
    templates: Templates = SHIPPED,
) -> StageReport:
    """Judge the first two responses of every prompt (one Judgment per prompt), and with checks on, one
    contrast pair per prompt and checkable principle whose samples pass and fail its check.

    Where every principle of a judgment has a check and the two responses' outcomes differ, the checks
    label the pair (`judge.checks`: `exact` asks the LLM nothing, `probe` asks it too and records whether
    it agreed); elsewhere the LLM judges.
    """
    checked = checkable(constitution) if config.checks != "off" else ()

    def items() -> Iterator[JudgeItem]:
        for prompt in prompts:
            yield from _items(prompt, responses.get(prompt.id, []), constitution, config, seed, checked)

    # The bar counts the sampled pair of each prompt; contrast pairs make the count unknown up front.
    unknown = (config.contrast_pairs and checked) or any(
        uses_rubric(p, config) for p in constitution.principles
    )
    total = None if unknown else sum(len(responses.get(p.id, ())) >= 2 for p in prompts)
    return await judge_all(
        backend, items(), constitution=constitution, config=config, seed=seed, stage=stage, quiet=quiet,
        description="judge", total=total, templates=templates,
    )  # fmt: skip


def _items(
    prompt: PromptRecord,
    candidates: Sequence[Response],
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    checked: Sequence[Principle],
) -> Iterator[JudgeItem]:
    """The pairs of one prompt to judge: its first two responses, and contrast pairs under the checks."""
    if len(candidates) < 2:
        return
    outcomes = check_outcomes(prompt, candidates, checked)
    a, b = candidates[0], candidates[1]
    members = draw_principles(constitution, config, seed=seed, key=f"judge:{prompt.id}")
    shown = [p for member in members for p in member]
    sampled = pair_item(
        prompt, Candidate(a.id, judged_text(a.text, a.trace, shown)),
        Candidate(b.id, judged_text(b.text, b.trace, shown)), members, config=config, seed=seed,
        outcomes=outcomes,
    )  # fmt: skip
    if sampled.check_p_a is not None or rubric_principles(members, config) is None:
        yield sampled  # else the rubric stage judges it by checklist (`pipeline.rubric`)
    if not (config.contrast_pairs and checked):
        return
    for principle in checked:
        found = _contrast(principle, [p for p in checked if p is not principle], candidates, outcomes)
        if found is None:
            continue
        x, y = sorted(found, key=lambda r: r.sample_index)  # A is the earlier sample; the check decides
        if {x.id, y.id} == {a.id, b.id} and members == ((principle,),):
            continue  # the sampled pair already is this contrast
        yield JudgeItem(
            prompt_id=prompt.id, conversation=flat_turns(prompt.messages),
            a=Candidate(x.id, judged_text(x.text, x.trace, [principle])),
            b=Candidate(y.id, judged_text(y.text, y.trace, [principle])), members=((principle,),),
            kind="contrast",
            check_p_a=_decision(((principle,),), outcomes, x.id, y.id),
            probe=principle.judges and _probed(config, seed, f"{prompt.id}:{principle.id}"),
            checks=_recorded(outcomes, (x.id, y.id), {principle.id}),
        )  # fmt: skip


def check_outcomes(
    prompt: PromptRecord, candidates: Sequence[Response | Candidate], checked: Sequence[Principle]
) -> dict[str, dict[str, CheckOutcome]]:
    """Response id -> principle id -> the outcome of that principle's check on the response."""

    def trace(response: Response | Candidate) -> tuple[Message, ...]:
        return response.trace if isinstance(response, Response) else ()

    return {
        r.id: {
            p.id: run_check(p, checked_conversation(prompt.messages, trace(r), p), r.text) for p in checked
        }
        for r in candidates
    }


def pair_item(
    prompt: PromptRecord,
    a: Candidate,
    b: Candidate,
    members: tuple[tuple[Principle, ...], ...],
    *,
    config: JudgeConfig,
    seed: int,
    outcomes: dict[str, dict[str, CheckOutcome]],
) -> JudgeItem:
    """Two responses to judge under `members`: where every principle has a check and the two outcomes
    (`check_outcomes`) differ, the checks label the pair (`judge.checks: probe` asks the LLM too)."""
    decided = _decision(members, outcomes, a.id, b.id)
    in_judgment = {p.id for member in members for p in member}
    return JudgeItem(
        prompt_id=prompt.id, conversation=flat_turns(prompt.messages), a=a, b=b, members=members,
        check_p_a=decided,
        probe=decided is not None and _probed(config, seed, f"{prompt.id}:sampled"),
        checks=_recorded(outcomes, (a.id, b.id), in_judgment),
    )  # fmt: skip


def _recorded(
    outcomes: dict[str, dict[str, CheckOutcome]], responses: tuple[str, str], principles: set[str]
) -> dict[str, tuple[CheckOutcome, ...]]:
    """The outcomes worth keeping on a judgment: the two responses under its checkable principles."""
    return {
        r: tuple(o for pid, o in outcomes[r].items() if pid in principles)
        for r in responses
        if any(pid in principles for pid in outcomes[r])
    }


def validates_revisions(config: JudgeConfig) -> bool:
    """Whether revisions are judged against their originals before they make pairs (`validate_revisions`)."""
    if config.validate_revisions == "auto":
        return config.model is not None  # a judge of its own; the policy judging itself adds little
    return config.validate_revisions == "on"


async def validate_revisions(
    backend: Backend,
    prompts: Sequence[PromptRecord],
    revisions: Iterable[Revision],
    *,
    constitution: Constitution,
    config: JudgeConfig,
    seed: int,
    stage: Stage[Judgment],
    quiet: bool = False,
    templates: Templates = SHIPPED,
) -> StageReport:
    """Judge each final revision (A) against its original (B) under the principles it was revised for,
    in both orders (Constitutional AI's check that a revision is better); stored as `kind="revision"`."""
    by_id = {p.id: p for p in prompts}

    def items() -> Iterator[JudgeItem]:
        for revision in revisions:
            prompt = by_id.get(revision.prompt_id)
            if prompt is None or revision.final.strip() == revision.original.strip():
                continue  # no pair would be made
            principles = tuple(dict.fromkeys(r.principle_id for r in revision.rounds))
            member = tuple(constitution.principle(pid) for pid in principles)
            yield JudgeItem(
                prompt_id=prompt.id, conversation=flat_turns(prompt.messages),
                a=Candidate(revision.id, revision.final),
                b=Candidate(revision.response_id, revision.original), members=(member,), kind="revision",
            )  # fmt: skip

    return await judge_all(
        backend, items(), constitution=constitution, config=config, seed=seed, stage=stage, quiet=quiet,
        description="validate revisions", templates=templates,
    )  # fmt: skip
