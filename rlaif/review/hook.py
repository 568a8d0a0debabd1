"""Python callables as reviewers: `review.hook: module:function` (or `path/to/file.py:function`).

A hook takes a list of `ReviewItem` and returns `ReviewAnswer`s (or dicts of their fields), possibly
from a coroutine: a stronger model, a rules engine, a labelling service. Its answers are stored like
a person's, under its own reviewer id.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.callables import load_callable
from rlaif.errors import ReviewError
from rlaif.records import ReviewAnswer, ReviewItem
from rlaif.review.session import ReviewSession

__all__ = ["Hook", "load_hook", "run_hook"]


Hook = Callable[[list[ReviewItem]], Any]


def load_hook(spec: str, *, base_dir: Path = Path(".")) -> Hook:
    """The callable named `module:function` (importable, or a `path/to/file.py:function`)."""
    try:
        return load_callable(spec, base_dir=base_dir)
    except ImportError as exc:
        hint = (
            ""
            if "not a target" in str(exc)
            else ("; install it, run from its folder, or name a file: path/to/file.py:function")
        )
        raise ReviewError(f"review hook {spec!r}: {exc}{hint}") from None
    except TypeError as exc:
        raise ReviewError(f"review hook {spec!r}: {exc}") from None


def run_hook(session: ReviewSession, hook: Hook, *, batch_size: int = 16) -> int:
    """Hand pending items to `hook` in batches and store its answers; returns how many were stored.

    The hook takes a list of `ReviewItem` and returns `ReviewAnswer`s (or dicts of their fields),
    possibly from a coroutine. An item it does not answer is skipped for this run.
    """
    stored = 0
    while batch := session.pending()[:batch_size]:
        result = hook(list(batch))
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        wanted = {item.pair_id for item in batch}
        answers = [_answer(raw, wanted) for raw in (result or [])]
        for answer in answers:
            session.decide(answer)
            stored += 1
        answered = {a.pair_id for a in answers}
        for pair_id in wanted - answered:
            session.skip(pair_id)
    return stored


async def _await(value: Any) -> Any:
    return await value


def _answer(raw: Any, wanted: set[str]) -> ReviewAnswer:
    try:
        answer = raw if isinstance(raw, ReviewAnswer) else ReviewAnswer.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ReviewError(
            f"review hook answer {raw!r}: {where}: {problem['msg']}; answer ReviewAnswer(pair_id=..., "
            "verdict='first'|'second'|'tie'|'flag', note='')"
        ) from None
    if answer.pair_id not in wanted:
        raise ReviewError(f"review hook answered pair {answer.pair_id!r}, which was not in its batch")
    return answer
