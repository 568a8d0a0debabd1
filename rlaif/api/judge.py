"""`Judge`: the pipeline's AI judge on pairs given in code, with no run directory.

Each pair is judged by `judge_items`, the engine the judge stage and the evaluations use, in both
presentation orders (unless `both_orders: false`), under a principle chosen per pair or drawn with the
judge's seed; principles with a check label the pair where their outcomes differ, as in a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.api.server import Client
from rlaif.config import JudgeConfig
from rlaif.errors import ConstitutionError, PromptSetError
from rlaif.inputs.prompts import prompt_record
from rlaif.judging.checks import checkable
from rlaif.judging.engine import judge_items
from rlaif.judging.labels import side
from rlaif.judging.modes import Candidate, JudgeItem, draw_principles
from rlaif.pipeline.judge import check_outcomes, pair_item
from rlaif.records import Judgment, Pair, PairJudgment, Principle, stable_id
from rlaif.yamlfile import NO_VALUE, format_error

__all__ = ["Judge", "as_pair", "verdict"]

PairLike = Pair | Sequence[Any] | Mapping[str, Any]
"""A `Pair`, a `(prompt, response_a, response_b[, principle])` tuple, or a dict of a Pair's fields."""


class Judge(Client[JudgeConfig]):
    """The AI judge of a run, called from Python.

    ```python
    judge = rlaif.Judge("http://127.0.0.1:8000/v1", constitution="harmless")
    for found in judge.judge([("How do I pick a lock?", "I can't help with that.", "Sure: ...")]):
        print(found.verdict, found.p_a, found.consistent, found.status)
    ```

    Args:
        server: A base URL (or a list of them), an `rlaif.Server`, or any `Backend`. `Judge.managed()`
            starts a vLLM server for a model instead, and stops it on `close()` or at the end of a `with`.
        model: With a base URL: the served model name (None asks the server).
        api_key: With a base URL: the server's API key.
        constitution: A `Constitution`, a constitution file, or a shipped name (`harmless`, ...).
        config: The judge's settings (`JudgeConfig` or a dict of its fields: mode, both_orders, ensemble...).
        seed: Fixes the per-request seeds and the principles drawn for pairs that name none.
    """

    section = JudgeConfig
    purpose = "judge"

    def judge(self, pairs: Iterable[PairLike], *, principle: str | None = None) -> list[PairJudgment]:
        """Judge every pair; one result per pair, in order. See `ajudge`."""
        return self._sync(self.ajudge(pairs, principle=principle))

    async def ajudge(self, pairs: Iterable[PairLike], *, principle: str | None = None) -> list[PairJudgment]:
        """Judge every pair (all at once, a window at a time); one result per pair, in order.

        Args:
            pairs: `Pair`s, `(prompt, response_a, response_b)` tuples (a principle id may come fourth), or
                dicts of a Pair's fields. Every pair is checked before any request is sent.
            principle: The principle id for pairs that name none; None draws one per pair.

        Raises:
            PromptSetError: a pair is malformed (an empty response, a conversation not ending with the user).
            ConstitutionError: a principle id is unknown or has no judge question (the message lists them).
            ServerUnreachable, ServerRefused, BackendError: the server cannot be used.
        """
        given = [as_pair(pair, index) for index, pair in enumerate(pairs)]
        if principle is not None:
            given = [
                p if p.principle is not None else p.model_copy(update={"principle": principle}) for p in given
            ]
        checked = checkable(self.constitution) if self.config.checks != "off" else ()
        items = [self._item(pair, index, checked) for index, pair in enumerate(given)]
        if not items:
            return []
        async with self._backend() as backend:
            judgments = await judge_items(
                backend, items, constitution=self.constitution, config=self.config, seed=self.seed, quiet=True
            )
        return [result(pair, judgment) for pair, judgment in zip(given, judgments, strict=True)]

    def _item(self, pair: Pair, index: int, checked: Sequence[Principle]) -> JudgeItem:
        try:
            prompt = prompt_record(pair.prompt, source=f"pairs[{index}]")
        except ValueError as exc:
            raise PromptSetError(f"pairs[{index}].prompt: {exc}") from None
        # The two answers' ids name their side too, so a pair of identical answers is still two candidates.
        a, b = (
            Candidate(stable_id("pair-response", prompt_id=prompt.id, side=position, text=text), text)
            for position, text in (("a", pair.response_a), ("b", pair.response_b))
        )
        if pair.principle is None:
            members = draw_principles(
                self.constitution, self.config, seed=self.seed, key=f"pair:{prompt.id}:{a.id}:{b.id}"
            )
        else:
            members = ((self._principle(pair.principle, index),),)
        outcomes = check_outcomes(prompt, (a, b), checked)
        return pair_item(prompt, a, b, members, config=self.config, seed=self.seed, outcomes=outcomes)

    def _principle(self, principle_id: str, index: int) -> Principle:
        try:
            found = self.constitution.principle(principle_id)
        except ConstitutionError as exc:
            raise ConstitutionError(f"pairs[{index}].principle: {exc}") from None
        if not found.judges:
            judging = ", ".join(p.id for p in self.constitution.for_judging())
            raise ConstitutionError(
                f"pairs[{index}].principle: principle {principle_id!r} of constitution "
                f"{self.constitution.name!r} has no judge_question, so the judge cannot ask about it; "
                f"principles the judge can use: {judging}"
            )
        return found


def as_pair(value: PairLike, index: int = 0) -> Pair:
    """`value` as a `Pair`; a malformed one is a `PromptSetError` naming `pairs[index]` and the field."""
    where, fix = Path(f"pairs[{index}]"), "a pair is (prompt, response_a, response_b), each non-empty"
    if isinstance(value, Pair):
        return value
    if isinstance(value, Mapping):
        fields = dict(value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (3, 4):
        fields = dict(zip(("prompt", "response_a", "response_b", "principle"), value, strict=False))
    else:
        problem = "not a pair"
        raise PromptSetError(
            format_error(
                where,
                problem,
                f"{fix}, a principle id optionally fourth; or a dict or rlaif.Pair",
                value=value,
            )
        )
    try:
        return Pair.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        problems = {
            "blank_text": "is empty",
            "string_too_short": "is empty",
            "missing": "is missing",
            "extra_forbidden": "is not a field of a pair (prompt, response_a, response_b, principle)",
        }
        problem = problems.get(error["type"], error["msg"])
        if name == "prompt":  # text or a conversation: pydantic's message would list both attempts
            problem = "is neither text nor a list of {role, content} turns"
        value = error.get("input", NO_VALUE) if error["type"] != "missing" else NO_VALUE
        raise PromptSetError(format_error(where, problem, fix, field=name, value=value)) from None


def verdict(judgment: Judgment) -> str | None:
    """`A`, `B`, `tie` (exactly 0.5, or an LLM judge whose two orders disagree: a check's label is exact),
    or None when nothing parsed."""
    if judgment.p_a is None:
        return None
    if side(judgment.p_a) == 0 or (judgment.source == "llm" and judgment.consistent is False):
        return "tie"
    return "A" if side(judgment.p_a) > 0 else "B"


def result(pair: Pair, judgment: Judgment) -> PairJudgment:
    """The user's view of one judgment."""
    failed = next((o.raw for o in judgment.orders if o.status == "error"), None)
    return PairJudgment(
        pair=pair,
        p_a=judgment.p_a,
        verdict=verdict(judgment),  # type: ignore[arg-type]
        consistent=judgment.consistent,
        principle_ids=judgment.principle_ids,
        status=judgment.status,
        source=judgment.source,
        error=failed,
        judgment=judgment,
    )
