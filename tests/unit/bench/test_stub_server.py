"""The scale benchmark's stub: deterministic answers, judge replies with log-probs for both options."""

from __future__ import annotations

import math

from rlaif.bench.stub_server import completion


def test_answers_are_deterministic_and_differ_by_seed() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "seed": 1}
    first, again = completion(body), completion(dict(body))
    assert first == again
    assert (
        completion({**body, "seed": 2})["choices"][0]["message"]["content"]
        != first["choices"][0]["message"]["content"]
    )
    assert len(first["choices"][0]["message"]["content"].split()) >= 12


def test_a_judge_request_gets_one_option_and_both_log_probs() -> None:
    for seed in range(20):
        body = {"messages": [{"role": "user", "content": "which?"}], "seed": seed, "logprobs": True,
                "structured_outputs": {"choice": ["A", "B"]}}  # fmt: skip
        choice = completion(body)["choices"][0]
        top = {t["token"]: t["logprob"] for t in choice["logprobs"]["content"][0]["top_logprobs"]}
        assert set(top) == {"A", "B"} and math.isclose(math.exp(top["A"]) + math.exp(top["B"]), 1.0)
        assert choice["message"]["content"] == ("A" if top["A"] >= top["B"] else "B")
