"""`rlaif.Judge`: pairs given in code, judged by the pipeline's engine in both orders; one-line errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import rlaif
from rlaif.backends.protocol import ChatRequest
from rlaif.backends.vllm_server import free_port
from tests.support.stub import StubServer

PROMPT = "How do I get back at a coworker?"
GOOD = "GOOD: talk to them about it."
BAD = "BAD: put salt in their coffee."


def prefers_good(request: ChatRequest) -> float:
    """P(first shown is better): high when the GOOD answer is shown first, whatever the order."""
    text = request.messages[-1]["content"]
    return 0.9 if text.index("GOOD:") < text.index("BAD:") else 0.1


def test_a_tuple_is_judged_in_both_orders_and_the_verdict_follows_the_better_answer() -> None:
    backend = rlaif.FakeBackend(p_first=prefers_good)
    found = rlaif.Judge(backend).judge([(PROMPT, GOOD, BAD), (PROMPT, BAD, GOOD)])
    assert [f.verdict for f in found] == ["A", "B"]
    assert found[0].p_a == pytest.approx(0.9) and found[1].p_a == pytest.approx(0.1)
    assert all(f.consistent and f.status == "ok" and f.source == "llm" and f.error is None for f in found)
    first = found[0].judgment
    assert len(first.orders) == 2 and first.orders[0].first_id != first.orders[1].first_id
    assert isinstance(found[0], rlaif.PairJudgment) and isinstance(first, rlaif.Judgment)
    assert found[0].pair == rlaif.Pair(prompt=PROMPT, response_a=GOOD, response_b=BAD)
    assert len(backend.requests) == 4


def test_position_bias_is_a_tie_flagged_inconsistent_never_a_preference() -> None:
    found = rlaif.Judge(rlaif.FakeBackend(p_first=0.8)).judge([(PROMPT, GOOD, BAD)])[0]
    assert found.consistent is False and found.verdict == "tie" and found.p_a == pytest.approx(0.5)


def test_the_principle_is_chosen_per_pair_by_default_or_drawn_with_the_seed() -> None:
    judge = rlaif.Judge(rlaif.FakeBackend(p_first=prefers_good), constitution="harmless", seed=3)
    pairs = [
        rlaif.Pair(prompt=PROMPT, response_a=GOOD, response_b=BAD, principle="privacy"),
        (PROMPT, GOOD, BAD, "toxicity"),
        {"prompt": PROMPT, "response_a": GOOD, "response_b": BAD},
        (PROMPT, BAD, GOOD),
    ]
    found = judge.judge(pairs, principle="harassment")
    assert [f.principle_ids for f in found] == [("privacy",), ("toxicity",), ("harassment",), ("harassment",)]
    drawn = judge.judge([(PROMPT, GOOD, BAD)])[0].principle_ids
    assert drawn == judge.judge([(PROMPT, GOOD, BAD)])[0].principle_ids  # seeded: the same draw
    judging = {p.id for p in judge.constitution.for_judging()}
    assert len(drawn) == 1 and drawn[0] in judging


def test_a_principles_check_labels_the_pair_where_the_outcomes_differ_as_in_a_run() -> None:
    judge = rlaif.Judge(rlaif.FakeBackend(p_first=0.9), constitution="concise-plain")
    short, long = "Boil it for eight minutes, then cool it in cold water.", "Boil it. " * 80
    found = judge.judge([(PROMPT, long, short, "concise")], principle="concise")[0]
    assert found.source == "check" and found.verdict == "B" and found.p_a == 0.0  # the check, not the 0.9
    assert found.judgment.llm_p_a is not None  # `checks: probe` (the default) asked the LLM judge too
    off = rlaif.Judge(rlaif.FakeBackend(p_first=0.9), constitution="concise-plain", config={"checks": "off"})
    assert off.judge([(PROMPT, long, short, "concise")])[0].source == "llm"


def test_no_pairs_is_no_results_and_no_request() -> None:
    backend = rlaif.FakeBackend()
    assert rlaif.Judge(backend).judge([]) == [] and backend.requests == []


def test_a_conversation_prompt_and_the_judge_config_are_used() -> None:
    backend = rlaif.FakeBackend(p_first=prefers_good)
    judge = rlaif.Judge(backend, config={"both_orders": False})
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": PROMPT}]  # fmt: skip
    found = judge.judge([(conversation, GOOD, BAD)])[0]
    assert len(found.judgment.orders) == 1 and found.consistent is None and found.verdict == "A"
    assert "Hello" in backend.requests[0].messages[-1]["content"]


def test_an_unreadable_answer_is_recorded_unparsed_with_its_raw_text() -> None:
    def reply(body: dict[str, Any]) -> Any:
        from tests.support.stub import JudgeReply

        return JudgeReply(text="C", logprobs={"C": 0.0})

    with StubServer(judge_reply=reply) as stub:
        found = rlaif.Judge(stub.base_url).judge([(PROMPT, GOOD, BAD)])[0]
    assert found.status == "unparsed" and found.verdict is None and found.p_a is None
    assert [o.raw for o in found.judgment.orders] == ["C", "C"] and found.error is None


def test_the_async_twin_and_a_call_from_inside_a_running_loop() -> None:
    judge = rlaif.Judge(rlaif.FakeBackend(p_first=prefers_good))

    async def both() -> tuple[list[rlaif.PairJudgment], list[rlaif.PairJudgment]]:
        # judge() inside a running loop (Jupyter, say) runs in a thread of its own instead of failing
        return await judge.ajudge([(PROMPT, GOOD, BAD)]), judge.judge([(PROMPT, GOOD, BAD)])

    awaited, called = asyncio.run(both())
    assert awaited[0].verdict == called[0].verdict == "A"


def test_a_base_url_goes_through_the_pipelines_client(tmp_path: Path) -> None:
    with StubServer() as stub:
        judge = rlaif.Judge(stub.base_url, model=stub.served_name)
        found = judge.judge([(PROMPT, GOOD, BAD)])[0]
        assert judge.server.base_urls == [stub.base_url] and judge.server.model == stub.served_name
    assert found.judgment.provenance.model == stub.served_name and found.status == "ok"


def test_managed_starts_a_server_and_stops_it_at_the_end_of_the_block(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[Any] = []

    class Managed:  # a "vLLM server" that is the stub server, to see it started and stopped
        def __init__(self, model_path: Any, *, log_path: Path, **settings: Any):
            self.stub, self.model_path, self.log_path = StubServer(), str(model_path), log_path
            self.served_name, self.base_url = self.stub.served_name, self.stub.base_url
            self.running = False
            started.append(self)

        def alive(self) -> bool:
            return self.running

        def __enter__(self) -> Any:
            self.stub.start()
            self.running = True
            return self

        def __exit__(self, *exc: object) -> None:
            self.stub.stop()
            self.running = False

    monkeypatch.setattr("rlaif.backends.serving.VLLMServer", Managed)
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path))  # where the server's log folder goes
    with rlaif.Judge.managed("my-model-folder", constitution="harmless") as judge:
        assert started[0].running and started[0].model_path == "my-model-folder"
        found = judge.judge([(PROMPT, GOOD, BAD)])[0]
    assert not started[0].running and started[0].log_path.parent.parent == tmp_path / "logs"
    assert found.judgment.provenance.model == "my-model-folder"  # the folder, not the random served name


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ((PROMPT, GOOD, ""), "pairs[0], response_b: is empty"),
        ((PROMPT, "   ", BAD), "pairs[0], response_a: is empty"),
        ((PROMPT, GOOD), "pairs[0]: not a pair"),
        ({"prompt": PROMPT, "response_a": GOOD}, "pairs[0], response_b: is missing"),
        (("", GOOD, BAD), "pairs[0].prompt: the last user turn is empty"),
        (([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], GOOD, BAD),
         "pairs[0].prompt: the conversation must end with a user turn"),
        ((PROMPT, GOOD, BAD, "no-such-principle"), "unknown principle id 'no-such-principle'"),
    ],
)  # fmt: skip
def test_a_bad_pair_is_one_line_naming_it(pair: Any, message: str) -> None:
    backend = rlaif.FakeBackend()
    with pytest.raises(rlaif.RlaifError) as raised:
        rlaif.Judge(backend).judge([pair])
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert backend.requests == []  # refused before any request


def test_an_unknown_principle_lists_the_ids() -> None:
    with pytest.raises(rlaif.ConstitutionError, match=r"pairs\[1\].principle: .*known ids: harm-general, "):
        rlaif.Judge(rlaif.FakeBackend()).judge([(PROMPT, GOOD, BAD), (PROMPT, GOOD, BAD, "privcy")])


def test_a_principle_without_a_judge_question_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: c\nprinciples:\n"
        "  - id: judged\n    judge_question: Which is kinder?\n"
        "  - id: revised\n    critique_request: Critique it.\n    revision_request: Rewrite it.\n"
    )
    with pytest.raises(rlaif.ConstitutionError, match="has no judge_question.*can use: judged"):
        rlaif.Judge(rlaif.FakeBackend(), constitution=path).judge([(PROMPT, GOOD, BAD)], principle="revised")


def test_an_unreachable_base_url_is_one_line_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(rlaif.ServerUnreachable, match=f"cannot reach {url}.*is the server running"):
        rlaif.Judge(url, model="m").judge([(PROMPT, GOOD, BAD)])


def test_bad_settings_are_one_line() -> None:
    with pytest.raises(rlaif.ConfigError, match="judge config, mode"):
        rlaif.Judge(rlaif.FakeBackend(), config={"mode": "vibes"})
    with pytest.raises(rlaif.ConfigError, match="not an http"):
        rlaif.Judge("localhost:8000")
    with pytest.raises(rlaif.ConstitutionError, match="shipped names"):
        rlaif.Judge(rlaif.FakeBackend(), constitution="no-such-constitution")
    with pytest.raises(rlaif.ConfigError, match="cannot send requests to a int"):
        rlaif.Judge(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("constitution", [5, None, ["harmless"], 2.5])
def test_a_constitution_of_the_wrong_type_is_rlaifs_own_one_line(constitution: Any) -> None:
    """Issue 31: `rlaif.Judge(url, constitution=5)` raised a bare TypeError."""
    with pytest.raises(rlaif.ConstitutionError) as info:
        rlaif.Judge(rlaif.FakeBackend(), constitution=constitution)
    assert f"constitution={constitution!r} is a {type(constitution).__name__}" in str(info.value)
    with pytest.raises(rlaif.ConstitutionError):
        rlaif.Reviser(rlaif.FakeBackend(), constitution=constitution)


@pytest.mark.parametrize(
    ("url", "said"), [("http://127.0.0.1:99999/v1", "1 to 65535"), ("http:///v1", "no host")]
)
def test_a_base_url_that_does_not_parse_is_refused_before_any_request(url: str, said: str) -> None:
    with pytest.raises(rlaif.ConfigError, match=said):
        rlaif.Judge(url, model="m").judge([(PROMPT, GOOD, BAD)])


def test_a_seed_that_is_not_a_whole_number_is_one_line() -> None:
    for seed in (True, "1", 1.5):
        with pytest.raises(rlaif.ConfigError, match="give a whole number"):
            rlaif.Judge(rlaif.FakeBackend(), seed=seed)  # type: ignore[arg-type]
