"""The AI judge: two responses, one or more principles, a one-token A/B verdict read from log-probs.

The soft label is P(A) renormalised over the option tokens. Both presentation orders are judged and
averaged, which cancels position bias in the label and shows it in the consistency rate. An answer
that is not A or B is recorded as `unparsed` with its raw text: never turned into a label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rlaif import __version__
from rlaif.backends.protocol import Backend, ChatRequest, ChatResult, run_batch
from rlaif.config import JudgeConfig
from rlaif.constitution import sample_principles
from rlaif.records import (
    Constitution,
    Judgment,
    Message,
    OrderVerdict,
    Principle,
    PromptRecord,
    Provenance,
    Response,
    derive_seed,
    stable_id,
)
from rlaif.respond import StageReport
from rlaif.store import Stage
from rlaif.templates import Rendered, render

__all__ = [
    "JudgeStats",
    "OPTIONS",
    "combine_orders",
    "judge",
    "judge_prompt",
    "judge_stats",
    "option_probability",
    "order_verdict",
]

OPTIONS = ("A", "B")


def option_probability(logprobs: dict[str, float]) -> float | None:
    """P(A) renormalised over A and B from first-token top log-probs; None if neither appears.

    Tokenizers spell an option several ways ("A", " A", "(A"); their probabilities are summed.
    """
    mass = dict.fromkeys(OPTIONS, 0.0)
    for token, logprob in logprobs.items():
        key = token.strip().strip("()[]*").strip()
        if key in mass and logprob > -math.inf:
            mass[key] += math.exp(logprob)
    total = sum(mass.values())
    return mass["A"] / total if total > 0 else None


def order_verdict(result: ChatResult, first_id: str) -> OrderVerdict:
    """Read one order's answer; anything but a clean A or B is `unparsed` (or `error`)."""
    if result.error:
        return OrderVerdict(first_id=first_id, p_first=None, status="error", raw=result.error)
    raw = result.texts[0] if result.texts else ""
    p_first = option_probability(result.first_token_logprobs)
    if raw.strip() not in OPTIONS or p_first is None:
        return OrderVerdict(
            first_id=first_id, p_first=None, status="unparsed", raw=raw, logprobs=result.first_token_logprobs
        )
    return OrderVerdict(
        first_id=first_id, p_first=p_first, status="ok", raw=raw, logprobs=result.first_token_logprobs
    )


def _side(p: float) -> int:
    return (p > 0.5) - (p < 0.5)


def combine_orders(orders: Sequence[OrderVerdict], a_id: str) -> tuple[float | None, bool | None, str]:
    """(P(a is better) averaged over parsed orders, whether two orders agree, status)."""
    probs = [o.p_first if o.first_id == a_id else 1.0 - o.p_first for o in orders if o.p_first is not None]
    p_a = sum(probs) / len(probs) if probs else None
    consistent = _side(probs[0]) == _side(probs[1]) if len(probs) >= 2 else None
    status = "ok" if len(probs) == len(orders) else ("partial" if probs else "unparsed")
    return p_a, consistent, status


def judge_prompt(
    conversation: Sequence[Message], principles: Sequence[Principle], first: str, second: str, nonce: str
) -> Rendered:
    """The judge's user message for one order (shared part first, candidates, then the question)."""
    return render(
        "judge",
        conversation=conversation,
        principles=principles,
        response_a=first,
        response_b=second,
        nonce=nonce,
    )


@dataclass
class _Pending:
    a: Response
    b: Response
    principles: tuple[Principle, ...]
    template_hash: str
    expected: int
    orders: dict[str, OrderVerdict]


@dataclass
class JudgeStats:
    """Run-level judge metrics."""

    judged: int
    parsed_orders: int
    unparsed_orders: int
    both_orders: int
    """Judgments with two parsed orders."""
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
    stats = JudgeStats(len(judgments), 0, 0, 0, 0, 0)
    for judgment in judgments:
        parsed = [o for o in judgment.orders if o.p_first is not None]
        stats.parsed_orders += len(parsed)
        stats.unparsed_orders += len(judgment.orders) - len(parsed)
        if len(parsed) >= 2:
            stats.both_orders += 1
            stats.consistent += bool(judgment.consistent)
            sides = {_side(o.p_first) for o in parsed[:2] if o.p_first is not None}
            stats.same_position += len(sides) == 1 and 0 not in sides
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
    nonce = f"{derive_seed(seed, 'judge-nonce'):08x}"  # per-run delimiter that answers cannot predict
    report = StageReport()
    pending: dict[str, _Pending] = {}
    requests: list[ChatRequest] = []
    keys: list[tuple[str, str]] = []  # (judgment id, first response id) per request
    for prompt in prompts:
        candidates = responses.get(prompt.id, [])
        if len(candidates) < 2:
            continue
        a, b = candidates[0], candidates[1]
        principles = sample_principles(
            constitution, config.principles_per_judgment, seed=seed, key=f"judge:{prompt.id}"
        )
        orders = [(a, b), (b, a)] if config.both_orders else [(a, b)]
        rendered = [judge_prompt(prompt.messages, principles, x.text, y.text, nonce) for x, y in orders]
        judgment_id = stable_id(
            "judgment",
            prompt_id=prompt.id,
            response_ids=[a.id, b.id],
            principle_ids=[p.id for p in principles],
            model=backend.label,
            template_hash=rendered[0].template_hash,
            constitution_hash=constitution.hash,
            nonce=nonce,
            orders=len(orders),
        )
        if judgment_id in stage:
            report.reused += 1
            continue
        pending[judgment_id] = _Pending(a, b, principles, rendered[0].template_hash, len(orders), {})
        for (first, _), message in zip(orders, rendered, strict=True):
            requests.append(
                ChatRequest(
                    messages=({"role": "user", "content": message.text},),
                    max_tokens=1,
                    temperature=0.0,
                    seed=derive_seed(seed, f"judge:{judgment_id}:{first.id}"),
                    top_logprobs=len(OPTIONS),
                    choices=OPTIONS,
                )
            )
            keys.append((judgment_id, first.id))

    def store(index: int, result: ChatResult) -> None:
        judgment_id, first_id = keys[index]
        entry = pending[judgment_id]
        entry.orders[first_id] = order_verdict(result, first_id)
        if len(entry.orders) < entry.expected:
            return
        a, b = entry.a, entry.b
        orders = tuple(entry.orders[r.id] for r in (a, b) if r.id in entry.orders)
        p_a, consistent, status = combine_orders(orders, a.id)
        if status != "ok":
            report.fail(f"judgment {judgment_id}: {status} ({orders[0].raw[:60]!r})")
        record = Judgment(
            id=judgment_id,
            prompt_id=a.prompt_id,
            response_a_id=a.id,
            response_b_id=b.id,
            principle_ids=tuple(p.id for p in entry.principles),
            orders=orders,
            p_a=p_a,
            consistent=consistent,
            status=status,  # type: ignore[arg-type]
            provenance=Provenance(
                model=backend.label,
                template="judge",
                template_hash=entry.template_hash,
                constitution_hash=constitution.hash,
                seed=seed,
                rlaif_version=__version__,
            ),
        )
        report.made += stage.append([record])

    await run_batch(backend, requests, description="judge", quiet=quiet, on_result=store)
    return report
