"""The judge evaluation in rubric mode (`--set judge.rubric=per_prompt` on `rlaif evaluate judge` and
`rlaif constitution test`): each labelled row's checklists written and both answers scored, against the
human label; stored judgments reused, so rubric and plain judging compare on the same rows."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path

from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.config import JudgeConfig
from rlaif.evaluate.judge import judge_rows, summarize
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.labelled import LabelledPair
from rlaif.records import Judgment, Message
from rlaif.store import RunDir

CONSTITUTION = load_constitution(find_constitution("harmless"))


class Checklist:
    """Writes one item, "The answer is kind."; answers Yes when the answer says "kind"."""

    model = label = "checklist"

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        text = request.messages[-1]["content"]
        if request.json_schema is not None:
            return ChatResult(texts=[json.dumps(["The answer is kind."])])
        found = re.search(r"<answer_\w+>\n(.*?)\n</answer_\w+>", text, re.S)
        assert found is not None and request.choices == ("Yes", "No")
        p = 0.9 if "kind" in found.group(1) else 0.2
        return ChatResult(
            texts=["Yes" if p > 0.5 else "No"],
            first_token_logprobs={"Yes": math.log(p), "No": math.log(1 - p)},
        )

    async def aclose(self) -> None:
        pass


def _pair(line: int, chosen: str, rejected: str) -> LabelledPair:
    return LabelledPair(
        line=line, conversation=(Message(role="user", content=f"question {line}"),), chosen=chosen,
        rejected=rejected, chosen_reply=chosen, rejected_reply=rejected,
    )  # fmt: skip


def test_rubric_rows_are_scored_against_the_labels_and_reused(tmp_path: Path) -> None:
    pairs = [
        _pair(1, "a kind reply", "a rude reply"),  # the rubric agrees with the label
        _pair(2, "a rude reply", "a kind reply"),  # the label prefers rude: the rubric disagrees
        _pair(3, "kind, and long", "kind"),  # both meet the one item: dropped, a tie
    ]
    backend = Checklist()
    config = JudgeConfig(rubric="per_prompt", rubric_items=1)
    with RunDir(tmp_path / "eval") as run:
        store = run.stage("judgments", Judgment)
        rows, judgments = asyncio.run(
            judge_rows(
                backend, pairs, constitution=CONSTITUTION, config=config, seed=0, quiet=True, store=store
            )
        )
        assert all(j.mode == "rubric" for j in judgments) and len(store) == 3
        assert [round(r.p_chosen or 0, 9) for r in rows] == [0.85, 0.15, 0.5]
        summary = summarize(rows)
        assert (summary.decided, summary.ties) == (2, 1) and summary.agreement == 0.5  # a tie counts half
        sent = len(backend.requests)
        assert sent == 3 * (1 + 2)  # one item list and two scores per row
        again, _ = asyncio.run(
            judge_rows(
                backend, pairs, constitution=CONSTITUTION, config=config, seed=0, quiet=True, store=store
            )
        )
        assert len(backend.requests) == sent and [r.p_chosen for r in again] == [r.p_chosen for r in rows]
