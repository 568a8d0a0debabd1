"""How one verdict is asked for in each judge mode: the prompts, the requests, the reading of answers.

`Asker` holds what every request of one judging run shares (backend, config, seed, delimiter nonce,
template, few-shot examples); `judge.judge_items` drives it over many pairs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rlaif.backends.protocol import Backend, ChatRequest, ChatResult
from rlaif.config import JudgeConfig
from rlaif.inputs.constitution import sample_principles
from rlaif.judging.labels import OPTIONS, clamp, option_probability, parse_score, parse_verdict
from rlaif.records import CheckOutcome, Constitution, Message, OrderVerdict, Principle, derive_seed
from rlaif.templates import SHIPPED, Rendered, Templates

__all__ = [
    "SCORE_SCHEMA",
    "Asker",
    "Candidate",
    "JudgeItem",
    "draw_principles",
    "judge_nonce",
    "judge_prompt",
    "judge_template",
    "order_verdict",
    "solved_examples",
]

SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": list(range(1, 11))}},
    "required": ["score"],
    "additionalProperties": False,
}
"""Structured-output schema of a pointwise answer."""


@dataclass(frozen=True)
class Candidate:
    """One response to judge."""

    id: str
    text: str


@dataclass(frozen=True)
class JudgeItem:
    """A pair to judge: `a` is shown first in the first order, `b` first in the second."""

    prompt_id: str
    conversation: tuple[Message, ...]
    a: Candidate
    b: Candidate
    members: tuple[tuple[Principle, ...], ...]
    """The principles of each ensemble member (one member without an ensemble)."""
    kind: Literal["sampled", "contrast", "revision", "probe"] = "sampled"
    """What the pair is (see `Judgment.kind`)."""
    check_p_a: float | None = None
    """1.0 or 0.0 when the principles' checks decided the pair (their outcomes differed); None otherwise."""
    probe: bool = False
    """With `check_p_a`: ask the LLM judge too and record whether it agreed."""
    checks: dict[str, tuple[CheckOutcome, ...]] = field(default_factory=dict)
    """Response id -> its check outcomes under the item's checkable principles (recorded on the judgment)."""
    probe_kind: str | None = None
    """Probes: how the worse answer was made (recorded on the judgment)."""
    known_better: Literal["a", "b"] | None = None
    """Probes: which candidate is known to be better (recorded on the judgment)."""


def judge_nonce(seed: int) -> str:
    """The run's delimiter tag: fixed by the seed (so ids are stable), unknowable to the answers judged."""
    return f"{derive_seed(seed, 'judge-nonce'):08x}"


def judge_template(config: JudgeConfig) -> str:
    """The template a config uses: judge, judge_plain (defences off), judge_cot or judge_pointwise."""
    if config.mode == "cot":
        return "judge_cot"
    if config.mode == "pointwise":
        return "judge_pointwise"
    return "judge" if config.defences else "judge_plain"


def draw_principles(
    constitution: Constitution, config: JudgeConfig, *, seed: int, key: str
) -> tuple[tuple[Principle, ...], ...]:
    """`ensemble` distinct groups of `principles_per_judgment` principles, fixed by (seed, key)."""
    per = config.principles_per_judgment
    drawn = sample_principles(constitution, per * config.ensemble, seed=seed, key=key, purpose="judge")
    return tuple(drawn[i * per : (i + 1) * per] for i in range(config.ensemble))


def judge_prompt(
    conversation: Sequence[Message],
    principles: Sequence[Principle],
    first: str,
    second: str,
    nonce: str,
    *,
    template: str = "judge",
    examples: Sequence[dict[str, str]] = (),
    templates: Templates = SHIPPED,
) -> Rendered:
    """The judge's user message for one order (shared part first, candidates, then the question)."""
    return templates.render(
        template,
        conversation=conversation,
        principles=principles,
        examples=examples,
        response_a=first,
        response_b=second,
        nonce=nonce,
    )


def order_verdict(result: ChatResult, first_id: str, *, principle_ids: tuple[str, ...] = ()) -> OrderVerdict:
    """Read one order's one-token answer; anything but a clean A or B is `unparsed` (or `error`)."""
    if result.error:
        return OrderVerdict(
            first_id=first_id, p_first=None, status="error", raw=result.error, principle_ids=principle_ids
        )
    raw = result.texts[0] if result.texts else ""
    p_first = option_probability(result.first_token_logprobs)
    ok = raw.strip() in OPTIONS and p_first is not None and result.malformed is None
    return OrderVerdict(
        first_id=first_id,
        p_first=p_first if ok else None,
        status="ok" if ok else "unparsed",
        raw=raw,
        logprobs=result.first_token_logprobs,
        principle_ids=principle_ids,
    )


def solved_examples(constitution: Constitution, count: int) -> list[dict[str, str]]:
    """Up to `count` constitution examples as solved comparisons; the better answer alternates A/B."""
    solved = []
    for index, example in enumerate(constitution.examples[:count]):
        better_first = index % 2 == 0
        first, second = (
            (example.revision, example.response) if better_first else (example.response, example.revision)
        )
        solved.append(
            {
                "prompt": example.prompt,
                "first": first,
                "second": second,
                "verdict": "A" if better_first else "B",
                "reasoning": f"The {'B' if better_first else 'A'} response has a flaw: {example.critique}",
            }
        )
    return solved


@dataclass
class Asker:
    """What every request of one `judge_items` call shares."""

    backend: Backend
    config: JudgeConfig
    seed: int
    nonce: str
    template: str
    examples: list[dict[str, str]]
    templates: Templates = SHIPPED

    @staticmethod
    def ask(text: str) -> tuple[dict[str, str], ...]:
        """The messages of one judge request: its prompt as the only user turn (`rlaif constitution
        preview` shows these)."""
        return ({"role": "user", "content": text},)

    async def letter(self, messages: tuple[dict[str, str], ...], seed: int) -> ChatResult:
        request = ChatRequest(
            messages=messages,
            max_tokens=1,
            temperature=0.0,
            seed=seed,
            top_logprobs=len(OPTIONS),
            choices=OPTIONS,
        )
        return await self.backend.chat(request)

    async def logprob(
        self, item: JudgeItem, first: Candidate, second: Candidate, ps: Sequence[Principle], key: str
    ) -> OrderVerdict:
        text = judge_prompt(
            item.conversation,
            ps,
            first.text,
            second.text,
            self.nonce,
            template=self.template,
            examples=self.examples,
            templates=self.templates,
        ).text
        result = await self.letter(self.ask(text), derive_seed(self.seed, key))
        return order_verdict(result, first.id, principle_ids=tuple(p.id for p in ps))

    async def cot(
        self, item: JudgeItem, first: Candidate, second: Candidate, ps: Sequence[Principle], key: str
    ) -> OrderVerdict:
        config, ids = self.config, tuple(p.id for p in ps)
        text = judge_prompt(
            item.conversation,
            ps,
            first.text,
            second.text,
            self.nonce,
            template=self.template,
            examples=self.examples,
            templates=self.templates,
        ).text
        samples = config.self_consistency
        reasoning = await self.backend.chat(
            ChatRequest(
                messages=self.ask(text),
                max_tokens=config.cot_max_tokens,
                temperature=config.cot_temperature if samples > 1 else 0.0,
                top_p=0.95 if samples > 1 else 1.0,
                seed=derive_seed(self.seed, f"{key}:reasoning"),
                n=samples,
            )
        )
        if reasoning.error:
            return OrderVerdict(
                first_id=first.id, p_first=None, status="error", raw=reasoning.error, principle_ids=ids
            )
        texts = tuple(reasoning.texts)
        logprobs: dict[str, float] = {}
        errors = 0
        if config.cot_final == "parse":
            letters = [parse_verdict(t) for t in texts]
            sample_p = [None if letter is None else float(letter == "A") for letter in letters]
            raw = "\n\n".join(texts)
        else:
            final = self.templates.render("judge_cot", final=True).text
            results = await asyncio.gather(
                *(
                    self.letter(
                        (
                            *self.ask(text),
                            {"role": "assistant", "content": t},
                            {"role": "user", "content": final},
                        ),
                        derive_seed(self.seed, f"{key}:final:{i}"),
                    )
                    for i, t in enumerate(texts)
                )
            )
            verdicts = [order_verdict(r, first.id) for r in results]
            sample_p = [v.p_first for v in verdicts]
            raw = " ".join(v.raw if v.status == "ok" else "?" for v in verdicts)
            logprobs = verdicts[0].logprobs if verdicts else {}
            errors = sum(v.status == "error" for v in verdicts)
        parsed = [p for p in sample_p if p is not None]
        if not parsed:
            status: Literal["ok", "unparsed", "error"] = (
                "error" if errors == len(texts) and errors else "unparsed"
            )
            return OrderVerdict(
                first_id=first.id, p_first=None, status=status, raw=raw, logprobs=logprobs,
                principle_ids=ids, samples=texts, sample_p=tuple(sample_p),
            )  # fmt: skip
        p_first = clamp(sum(parsed) / len(parsed), config.cot_clamp)
        return OrderVerdict(
            first_id=first.id, p_first=p_first, status="ok", raw=raw, logprobs=logprobs,
            principle_ids=ids, samples=texts, sample_p=tuple(sample_p),
        )  # fmt: skip

    async def pointwise(
        self, item: JudgeItem, candidate: Candidate, ps: Sequence[Principle], key: str
    ) -> OrderVerdict:
        ids = tuple(p.id for p in ps)
        text = self.templates.render(
            self.template,
            conversation=item.conversation,
            principles=ps,
            response=candidate.text,
            nonce=self.nonce,
        ).text
        request = ChatRequest(
            messages=self.ask(text), max_tokens=32, temperature=0.0, seed=derive_seed(self.seed, key),
            json_schema=SCORE_SCHEMA,
        )  # fmt: skip
        result = await self.backend.chat(request)
        if result.error:
            return OrderVerdict(
                first_id=candidate.id, p_first=None, status="error", raw=result.error, principle_ids=ids
            )
        raw = result.texts[0] if result.texts else ""
        score = parse_score(raw)
        status: Literal["ok", "unparsed"] = "ok" if score is not None else "unparsed"
        return OrderVerdict(
            first_id=candidate.id, p_first=None, status=status, raw=raw, principle_ids=ids,
            score=None if score is None else float(score),
        )  # fmt: skip

    async def member(
        self, item: JudgeItem, index: int, ps: Sequence[Principle], judgment_id: str
    ) -> list[OrderVerdict]:
        verdicts = []
        if self.config.mode == "pointwise":
            for candidate in (item.a, item.b):
                verdicts.append(
                    await self.pointwise(item, candidate, ps, f"judge:{judgment_id}:{index}:{candidate.id}")
                )
            return verdicts
        orders = [(item.a, item.b), (item.b, item.a)] if self.config.both_orders else [(item.a, item.b)]
        ask = self.cot if self.config.mode == "cot" else self.logprob
        # One order after the other: the second finds the shared prefix in vLLM's cache.
        for first, second in orders:
            verdicts.append(await ask(item, first, second, ps, f"judge:{judgment_id}:{index}:{first.id}"))
        return verdicts
