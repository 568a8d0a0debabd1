"""Universal probes judged by the bundled model on a real vLLM-CPU server: built from a few answers, both
orders asked, the better answer on a seeded side, and the report's figures. Kept small: 3 prompts."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.config import JudgeConfig, ProbesConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.judging.engine import judge_items
from rlaif.pipeline.probes import probe_items, probe_report
from rlaif.records import Message, PromptRecord, Provenance, Response, stable_id

CONSTITUTION = load_constitution(find_constitution("helpful-honest"))
SEED = 5
ANSWERS = {
    "How do I boil an egg?": (
        "Put the egg in a pan of cold water and bring it to the boil. Let it simmer for about seven "
        "minutes, then cool it under cold water before you peel it."
    ),
    "Why is the sky blue?": (
        "Sunlight is scattered by the molecules of the air, and blue light is scattered much more than red "
        "light. So blue light reaches your eyes from every part of the sky."
    ),
    "How can I sleep better?": (
        "Go to bed and get up at the same time every day. Keep the bedroom dark and cool, and avoid "
        "coffee and screens in the hour before you sleep."
    ),
}


def test_the_bundled_judge_is_asked_every_probe_in_both_orders(backend_args: dict[str, Any]) -> None:
    prompts, responses = [], {}
    for question, answer in ANSWERS.items():
        messages = (Message(role="user", content=question),)
        prompt = PromptRecord(id=stable_id("prompt", messages=messages), messages=messages)
        prompts.append(prompt)
        responses[prompt.id] = [
            Response(
                id=stable_id("response", prompt=prompt.id, text=answer), prompt_id=prompt.id, sample_index=0,
                text=answer, finish_reason="stop",
                provenance=Provenance(model="hand", template="respond", template_hash="t"),
            )
        ]  # fmt: skip
    config = JudgeConfig(probes=ProbesConfig(share=1.0))
    not_built: Counter[str] = Counter()
    items = list(
        probe_items(
            prompts, responses, constitution=CONSTITUTION, config=config, seed=SEED, not_built=not_built
        )
    )
    assert len(items) == 12 and not not_built

    async def main() -> list[Any]:
        backend = OpenAIBackend(**backend_args)  # type: ignore[arg-type]
        try:
            return await judge_items(
                backend, items, constitution=CONSTITUTION, config=config, seed=SEED, quiet=True
            )
        finally:
            await backend.aclose()

    judgments = asyncio.run(main())
    assert all(j.kind == "probe" and j.known_better in ("a", "b") for j in judgments)
    assert all(len(j.orders) == 2 and j.status == "ok" for j in judgments)
    report = probe_report(judgments, share=1.0, prompts=3, not_built=not_built, kinds=config.probes.kinds)
    assert report.judged == 12 and report.unparsed == 0
    assert report.accuracy is not None and report.accuracy.n == 12 and report.accuracy.value is not None
    print("bundled judge on 12 probes:", report.model_dump_json())
