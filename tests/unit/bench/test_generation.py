"""The benchmark's replay order and its table (the measurements themselves need a real server)."""

from __future__ import annotations

from rlaif.backends.protocol import ChatRequest
from rlaif.bench.generation import chains, to_markdown


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
    def measurement(name: str, seconds: float, **extra: float) -> dict[str, object]:
        return {
            "name": name, "requests": 48, "seconds": seconds, "prompt_tokens": 100, "completion_tokens": 900,
            "prefix_cache_hit_rate": 0.5, "extra": extra, "tokens_per_second": 900 / seconds,
            "requests_per_second": 48 / seconds,
        }  # fmt: skip

    report = {
        "measurements": [
            measurement("revise (1 round)", 30.0, ratio_to_raw=0.98, ratio_to_raw_all_at_once=0.9),
            measurement("raw: revise (1 round)", 27.0),
            measurement("raw, in chain order: revise (1 round)", 29.4),
        ],
        "judge": {"two_vs_one_order_time": 1.4, "two_vs_one_order_prompt_tokens": 1.5,
                  "pairs_per_hour": 7000.0, "judge_calls_per_second": 3.9},
        "hardware": {"device": "cpu", "cpus": 2, "vllm": "0.32.0"},
        "peak_rss_gib": 5.0, "prompts": 24, "concurrency": 64,
    }  # fmt: skip
    table = to_markdown(report)
    assert "| revise (1 round) | 48 | 30.0 | 30 | 1.6 | 0.98 (0.90 all at once) | 50% |" in table
    assert "| raw, in chain order: revise (1 round) | 48 | 29.4 |" in table
