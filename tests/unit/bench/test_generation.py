"""The benchmark's replay order and its table (the measurements themselves need a real server)."""

from __future__ import annotations

import json

from rlaif.backends.protocol import ChatRequest
from rlaif.bench.generation import chains
from rlaif.bench.reports import BenchMeasurement, GenerationBench, Hardware, JudgeThroughput
from rlaif.cli.tables.bench import generation_markdown


def _request(*turns: str) -> ChatRequest:
    roles = ("system", "user", "assistant", "user", "assistant", "user")
    return ChatRequest(messages=tuple({"role": roles[i], "content": t} for i, t in enumerate(turns)))


def test_a_revision_is_chained_after_its_critique_and_other_requests_stand_alone() -> None:
    critique_1 = _request("sys", "q1", "a1", "critique it")
    critique_2 = _request("sys", "q2", "a2", "critique it")
    revision_2 = _request("sys", "q2", "a2", "critique it", "c2", "revise it")
    revision_1 = _request("sys", "q1", "a1", "critique it", "c1", "revise it")
    lone = _request("sys", "q3")
    assert chains([critique_1, critique_2, revision_2, lone, revision_1]) == [
        [critique_1, revision_1],
        [critique_2, revision_2],
        [lone],
    ]
    # A request that only shares a prefix but is not "answer + next turn" stays on its own.
    other = _request("sys", "q1", "a1", "critique it", "c1")
    assert chains([critique_1, other]) == [[critique_1], [other]]


def test_the_table_shows_both_ceilings_of_a_chained_stage() -> None:
    def measurement(name: str, seconds: float, **ratios: float) -> BenchMeasurement:
        return BenchMeasurement(
            name=name, requests=48, seconds=seconds, prompt_tokens=100, completion_tokens=900,
            prefix_cache_hit_rate=0.5, **ratios,
        )  # fmt: skip

    pipeline = BenchMeasurement(
        name="pipeline (server start included)", requests=192, seconds=96.0, prompt_tokens=0,
        completion_tokens=0, prefix_cache_hit_rate=None, pairs_per_hour=1391.0, generation_seconds=80.0,
    )  # fmt: skip
    report = GenerationBench(
        measurements=[
            measurement("revise (1 round)", 30.0, ratio_to_raw=0.98, ratio_to_raw_all_at_once=0.9),
            measurement("raw: revise (1 round)", 27.0),
            measurement("raw, in chain order: revise (1 round)", 29.4),
            pipeline,
        ],
        judge=JudgeThroughput(two_vs_one_order_time=1.4, two_vs_one_order_prompt_tokens=1.5,
                              pairs_per_hour=7000.0, judge_calls_per_second=3.9),
        hardware=Hardware(machine="x86_64", cpus=2, python="3.11", device="cpu", vllm="0.32.0"),
        peak_rss_gib=5.0, prompts=24, concurrency=64,
    )  # fmt: skip
    table = generation_markdown(report)
    assert "| revise (1 round) | 48 | 30.0 | 30 | 1.6 | 0.98 (0.90 all at once) | 50% |" in table
    assert "| raw, in chain order: revise (1 round) | 48 | 29.4 |" in table
    assert "| pipeline (server start included) | 192 | 96.0 | - | 2.0 |  | n/a |" in table
    assert "pipeline 1391 pairs/hour" in table and "cpu, 2 CPUs, vLLM 0.32.0" in table
    # --json is the model's dump, with the derived rates in it, and reads back as the same report.
    dumped = json.loads(report.model_dump_json())
    assert dumped["measurements"][0]["tokens_per_second"] == 30.0
    assert dumped["measurements"][0]["ratio_to_raw"] == 0.98
