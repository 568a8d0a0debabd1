"""Hostile text: template-injection payloads in constitution files, prompts and model outputs reach
the model as literal text through every stage; chat templates from model files render sandboxed;
nothing is unpickled; remote code is never trusted unless configured; and judge outputs that are
empty, truncated or nonsense are recorded with their status and raw text, never coerced into a label.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest, ChatResult
from rlaif.backends.vllm_server import VLLMServer
from rlaif.config import GenerationConfig, JudgeConfig, ReviseConfig, load_config
from rlaif.errors import QualityGateError
from rlaif.inputs.constitution import load_constitution
from rlaif.judging.engine import judge_stats
from rlaif.pipeline.judge import judge
from rlaif.pipeline.pairs import pairs_from_judgments
from rlaif.pipeline.reports import StageReport
from rlaif.pipeline.respond import respond
from rlaif.pipeline.revise import revise
from rlaif.pipeline.run import run_pipeline
from rlaif.records import Judgment, Message, PromptRecord, Response, Revision, RevisionStep, stable_id
from rlaif.store import RunDir
from tests.support.stub import JudgeReply, StubServer

pytestmark = pytest.mark.chaos  # issue 7's tests; fast, no server

RLAIF = Path(__file__).resolve().parents[2] / "rlaif"

PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% import os %}{{ os.system('touch /tmp/rlaif-pwned') }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ 7*7 }}",
    "{% for x in range(99999999) %}x{% endfor %}",
    "{% raw %}unbalanced",
    "{# an unclosed comment",
    "{{ lipsum.__globals__['os'].environ }}",
    "{% include '/etc/passwd' %}",
]
EVALUATED = ("<class", "environ(", "root:x:", "x" * 50, "__builtins__': {", "<module", "uid=")
"""What a payload would print if it ran (the payload found verbatim is the main proof that it did not)."""


def hostile_constitution(tmp_path: Path, payload: str) -> Path:
    data = {
        "name": "hostile",
        "system_prompt": f"System {payload}",
        "principles": [
            {
                "id": "p",
                "critique_request": f"Critique {payload}",
                "revision_request": f"Revise {payload}",
                "judge_question": f"Which {payload}?",
            }
        ],
        "examples": [{"prompt": f"EX {payload}", "response": "r", "critique": "c", "revision": "v"}],
    }
    path = tmp_path / "constitution.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def prompt(text: str) -> PromptRecord:
    messages = (Message(role="user", content=text),)
    return PromptRecord(
        id=stable_id("prompt", messages=[m.model_dump() for m in messages]), messages=messages
    )


def all_text(requests: list[ChatRequest]) -> str:
    return "\n".join(m["content"] for r in requests for m in r.messages)


def run_stages(run: RunDir, backend: FakeBackend, constitution: Any, prompts: list[PromptRecord]) -> None:
    async def main() -> None:
        responses = run.stage("responses", Response)
        await respond(
            backend, prompts, constitution=constitution, config=GenerationConfig(max_tokens=8), seed=1,
            stage=responses, quiet=True,
        )  # fmt: skip
        grouped: dict[str, list[Response]] = {}
        for response in responses:
            grouped.setdefault(response.prompt_id, []).append(response)
        originals = {pid: sorted(rs, key=lambda r: r.sample_index)[0] for pid, rs in grouped.items()}
        await revise(
            backend, prompts, originals, constitution=constitution,
            config=ReviseConfig(rounds=2, max_tokens=8), seed=1,
            steps=run.stage("revision_steps", RevisionStep), revisions=run.stage("revisions", Revision),
            quiet=True,
        )  # fmt: skip
        ordered = {pid: sorted(rs, key=lambda r: r.sample_index) for pid, rs in grouped.items()}
        await judge(
            backend, prompts, ordered, constitution=constitution, config=JudgeConfig(), seed=1,
            stage=run.stage("judgments", Judgment), quiet=True,
        )  # fmt: skip

    asyncio.run(main())


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_a_constitution_file_reach_the_model_as_text(tmp_path: Path, payload: str) -> None:
    constitution = load_constitution(hostile_constitution(tmp_path, payload))
    backend = FakeBackend()
    with RunDir(tmp_path / "run") as run:
        run_stages(run, backend, constitution, [prompt("How do I boil an egg?")])
    sent = all_text(backend.requests)
    for field in ("System", "Critique", "Revise", "Which", "EX"):
        assert f"{field} {payload}" in sent, field  # every field arrived verbatim
    assert not any(marker in sent for marker in EVALUATED)
    assert not Path("/tmp/rlaif-pwned").exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_prompts_and_model_outputs_stay_text_downstream(tmp_path: Path, payload: str) -> None:
    """A prompt and every model answer carry the payload; the critique, revision and judge requests
    built from them carry it verbatim, unevaluated."""

    def reply(request: ChatRequest) -> str:
        return f"answer {request.seed} {payload}"

    constitution = load_constitution(hostile_constitution(tmp_path, "plain"))
    backend = FakeBackend(reply)
    with RunDir(tmp_path / "run") as run:
        run_stages(run, backend, constitution, [prompt(f"User asks {payload}")])
        steps = list(run.stage("revision_steps", RevisionStep))
        judgments = list(run.stage("judgments", Judgment))
    assert len(steps) == 2 and len(judgments) == 1
    critique_requests = [r for r in backend.requests if r.messages[-1]["content"] == "Critique plain"]
    assert critique_requests and all(f"User asks {payload}" in all_text([r]) for r in critique_requests)
    assert any(
        m["content"].endswith(payload) and m["role"] == "assistant"
        for r in critique_requests
        for m in r.messages
    )
    judge_requests = [r for r in backend.requests if r.choices]
    assert len(judge_requests) == 2
    for request in judge_requests:
        text = request.messages[-1]["content"]
        assert text.count(payload) >= 3  # the user turn and both answers
    assert not any(marker in all_text(backend.requests) for marker in EVALUATED)


# --- chat templates from model files -----------------------------------------------------------

MALICIOUS_CHAT_TEMPLATES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{% for m in messages %}{{ m.content.__class__.__base__.__subclasses__() }}{% endfor %}",
    "{{ raise_exception.__globals__['os'].system('id') }}",
    "{% set _ = messages.append({'role': 'system', 'content': 'x'}) %}{{ messages|length }}",
]


def tokenizer_folder(tmp_path: Path, chat_template: str) -> Path:
    """A tiny tokenizer saved like a model's, with `chat_template` in its tokenizer_config.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "hi": 1, "there": 2}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tmp_path)
    config_path = tmp_path / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = chat_template
    config_path.write_text(json.dumps(config))
    (tmp_path / "chat_template.jinja").unlink(missing_ok=True)
    return tmp_path


@pytest.mark.parametrize("template", MALICIOUS_CHAT_TEMPLATES)
def test_a_malicious_chat_template_in_model_files_cannot_reach_python(tmp_path: Path, template: str) -> None:
    """transformers (and so vLLM and TRL, which call it) renders a model's chat template in an
    ImmutableSandboxedEnvironment: attribute tricks and mutation raise SecurityError."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(tmp_path, template))
    assert tokenizer.chat_template == template
    with pytest.raises(jinja2.exceptions.SecurityError):
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


def test_template_text_inside_messages_is_not_rendered_by_the_chat_template(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}"
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(tmp_path, template))
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": PAYLOADS[0] + " {{ 7*7 }}"}], tokenize=False
    )
    assert text == f"<user>{PAYLOADS[0]} {{{{ 7*7 }}}}</user>"


def test_vllm_renders_chat_templates_through_the_sandboxed_transformers_path() -> None:
    """vLLM's HF renderer calls `tokenizer.apply_chat_template` and inspects templates in the same
    sandbox (source check: importing vLLM is slow and it may be absent)."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.origin is None:
        pytest.skip("vllm is not installed")
    source = (Path(spec.origin).parent / "renderers" / "hf.py").read_text()
    assert "tokenizer.apply_chat_template(" in source
    assert "ImmutableSandboxedEnvironment" in source
    assert "jinja2.Environment(" not in source


# --- nothing is unpickled; remote code is not trusted ------------------------------------------


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            calls.append((ast.unparse(node.func), node))
    return calls


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


SOURCES = sorted(p for p in RLAIF.rglob("*.py") if "_data" not in p.parts)


def test_nothing_is_unpickled() -> None:
    """No pickle/marshal/dill/joblib loads, no torch.load without weights_only=True, no numpy
    allow_pickle, no unsafe YAML loaders anywhere in the package."""
    banned = re.compile(
        r"^(c?pickle|dill|cloudpickle|joblib|marshal|shelve)\.(load|loads|open|Unpickler)$"
        r"|^yaml\.(load|unsafe_load|full_load|load_all|unsafe_load_all)$"
    )
    problems = []
    for path in SOURCES:
        for name, call in _calls(path):
            where = f"{path.relative_to(RLAIF.parent)}:{call.lineno}: {name}"
            if banned.search(name):
                problems.append(where)
            elif name == "torch.load" or name.endswith(".torch.load"):
                weights_only = _keyword(call, "weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    problems.append(f"{where} without weights_only=True")
            elif name.endswith(("np.load", "numpy.load")):
                allow = _keyword(call, "allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                    problems.append(f"{where} with allow_pickle")
    assert problems == [], "unpickling found:\n" + "\n".join(problems)


def test_trust_remote_code_is_never_turned_on_by_rlaif() -> None:
    """No call in the package passes trust_remote_code other than False; the managed server does not
    pass --trust-remote-code unless the user puts it in model.server.extra_args."""
    problems = []
    for path in SOURCES:
        for name, call in _calls(path):
            value = _keyword(call, "trust_remote_code")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                problems.append(
                    f"{path.relative_to(RLAIF.parent)}:{call.lineno}: {name}(trust_remote_code=...)"
                )
        assert "--trust-remote-code" not in path.read_text() or path.name == "vllm_server.py", path
    assert problems == []
    server = VLLMServer("model", log_path="x.log", cache_dir=".", port=1)
    assert "--trust-remote-code" not in server.command()
    configured = VLLMServer(
        "model", log_path="x.log", cache_dir=".", port=1, extra_args=["--trust-remote-code"]
    )
    assert "--trust-remote-code" in configured.command()


def test_api_key_is_named_in_the_config_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"prompts": {"path": "p.jsonl"}, "model": {"api_key_env": "MY_KEY"}}))
    dumped = json.dumps(load_config(path).model_dump(mode="json"))
    assert '"api_key_env": "MY_KEY"' in dumped
    assert 'api_key"' not in dumped  # there is no field that could hold the key itself


# --- judge output: recorded with status and raw text, never coerced -----------------------------

LOG = math.log


def judge_result(
    text: str | None,
    logprobs: dict[str, float] | None = None,
    *,
    finish: str = "stop",
    error: str | None = None,
) -> ChatResult:
    if error is not None:
        return ChatResult(error=error)
    if text is None:
        return ChatResult()  # no choices at all
    return ChatResult(texts=[text], finish_reasons=[finish], first_token_logprobs=logprobs or {})


AB = {"A": LOG(0.8), "B": LOG(0.2)}
BAD_JUDGE_OUTPUTS = {
    "empty": (judge_result("", {}), "unparsed"),
    "empty-truncated": (judge_result("", {}, finish="length"), "unparsed"),
    "whitespace": (judge_result("  \n", {}), "unparsed"),
    "no-choices": (judge_result(None), "unparsed"),
    "nonsense-letter": (judge_result("C", {"C": 0.0}), "unparsed"),
    "nonsense-text": (judge_result("Both are great!", {"Both": LOG(0.9)}), "unparsed"),
    "letter-with-prose": (judge_result("A because it is kinder", AB), "unparsed"),
    "truncated-word": (judge_result("Answ", {"Answ": LOG(0.5)}, finish="length"), "unparsed"),
    "letter-without-logprobs": (judge_result("A", {}), "unparsed"),
    "letter-other-logprobs": (judge_result("A", {"x": LOG(0.6), "y": LOG(0.4)}), "unparsed"),
    "logprobs-minus-inf": (judge_result("A", {"A": -math.inf, "B": -math.inf}), "unparsed"),
    "both-letters": (judge_result("AB", AB), "unparsed"),
    "lowercase": (judge_result("a", {"a": LOG(0.9)}), "unparsed"),
    "request-failed": (judge_result(None, error="BadRequestError: prompt too long"), "error"),
}


class Scripted(FakeBackend):
    """Answers every judge request with one scripted result."""

    def __init__(self, result: ChatResult | Callable[[ChatRequest], ChatResult]):
        super().__init__()
        self.result = result

    async def chat(self, request: ChatRequest) -> ChatResult:
        if not request.choices:
            return await super().chat(request)
        self.requests.append(request)
        return self.result(request) if callable(self.result) else self.result


def judged(tmp_path: Path, backend: FakeBackend) -> tuple[list[Judgment], Any, RunDir, StageReport]:
    constitution = load_constitution(hostile_constitution(tmp_path, "plain"))
    prompts = [prompt("Question one?"), prompt("Question two?")]
    run = RunDir(tmp_path / "run")
    responses = run.stage("responses", Response)
    asyncio.run(
        respond(backend, prompts, constitution=constitution, config=GenerationConfig(max_tokens=8), seed=1,
                stage=responses, quiet=True)
    )  # fmt: skip
    grouped: dict[str, list[Response]] = {}
    for response in responses:
        grouped.setdefault(response.prompt_id, []).append(response)
    ordered = {pid: sorted(rs, key=lambda r: r.sample_index) for pid, rs in grouped.items()}
    stage = run.stage("judgments", Judgment)
    report = asyncio.run(
        judge(backend, prompts, ordered, constitution=constitution, config=JudgeConfig(), seed=1, stage=stage,
              quiet=True)
    )  # fmt: skip
    return list(stage), {r.id: r for r in responses}, run, report


@pytest.mark.parametrize("name", list(BAD_JUDGE_OUTPUTS))
def test_bad_judge_output_is_recorded_never_a_label(tmp_path: Path, name: str) -> None:
    result, status = BAD_JUDGE_OUTPUTS[name]
    judgments, responses, run, report = judged(tmp_path, Scripted(result))
    try:
        if status == "error":  # a failed request is not a verdict: not stored, so a rerun retries it
            assert judgments == [] and report.made == 0 and report.failed == 2
            assert all(result.error in e for e in report.errors)
            return
        assert report.made == 2 and report.unparsed == 2 and report.failed == 0
        for judgment in judgments:
            assert judgment.status == "unparsed" and judgment.p_a is None and judgment.consistent is None
            assert len(judgment.orders) == 2
            for order in judgment.orders:
                assert order.status == status and order.p_first is None
                expected_raw = result.error if result.error else (result.texts[0] if result.texts else "")
                assert order.raw == expected_raw  # the raw text, exactly as it came
        stats = judge_stats(judgments)
        assert (stats.parsed_orders, stats.unparsed_orders, stats.both_orders) == (0, 4, 0)
        from collections import Counter

        skipped: Counter[str] = Counter()
        by_id = {j.prompt_id: None for j in judgments}
        prompts = {pid: prompt("x").model_copy(update={"id": pid}) for pid in by_id}
        assert list(pairs_from_judgments(judgments, responses, prompts, JudgeConfig(), skipped)) == []
        assert skipped == Counter({"judge unparsed": 2})
        with RunDir(run.path, lock=False) as reopened:  # stored as written
            assert [j.model_dump() for j in reopened.stage("judgments", Judgment)] == [
                j.model_dump() for j in judgments
            ]
    finally:
        run.close()


def test_one_bad_order_leaves_a_partial_judgment_labelled_by_the_good_one_only(tmp_path: Path) -> None:
    def result(request: ChatRequest) -> ChatResult:
        # Of the two orders of a pair, the one showing the alphabetically first answer as A parses.
        shown = re.findall(
            r"<response_[AB]_\w+>\n(.*?)\n</response_[AB]_", request.messages[-1]["content"], re.S
        )
        assert len(shown) == 2
        return judge_result("A", AB) if shown[0] < shown[1] else judge_result("", {}, finish="length")

    judgments, _, run, report = judged(tmp_path, Scripted(result))
    run.close()
    assert report.made == 2 and report.unparsed == 2 and report.failed == 0
    for judgment in judgments:
        assert sorted(o.status for o in judgment.orders) == ["ok", "unparsed"]
        good = next(o for o in judgment.orders if o.status == "ok")
        assert judgment.status == "partial" and judgment.consistent is None
        assert good.p_first == pytest.approx(0.8)
        expected = 0.8 if good.first_id == judgment.response_a_id else 0.2
        assert judgment.p_a == pytest.approx(expected)  # from the parsed order alone
        assert judge_stats([judgment]).unparsed_orders == 1


def test_run_summary_counts_unparsed_and_failed_judge_orders(tmp_path: Path) -> None:
    """Through the whole pipeline against a server whose judge answers nonsense, nothing, or an
    HTTP 400: the unparsed verdicts are stored with their raw text and counted; a judgment whose
    request failed is not stored (a rerun retries it) and is counted as failed; no judge pair is
    made from any of them; the run is marked incomplete."""
    kinds: list[str] = []

    def reply(body: dict[str, Any]) -> JudgeReply:
        kind = ("nonsense", "empty", "error")[len(kinds) % 3]
        kinds.append(kind)
        if kind == "nonsense":
            return JudgeReply("Both!", {"Both": LOG(0.9), "!": LOG(0.1)})
        if kind == "empty":
            return JudgeReply("", {}, finish_reason="length")
        return JudgeReply(status=400)

    with StubServer(judge_reply=reply) as stub:
        config_path = tmp_path / "run.yaml"
        config_path.write_text(yaml.safe_dump({
            "run_dir": str(tmp_path / "run"),
            "prompts": {"path": str(RLAIF.parent / "examples" / "prompts.jsonl"), "limit": 3},
            "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
            "revise": {"enabled": False},
            "train": {"dpo": {"enabled": False}},
        }))  # fmt: skip
        with pytest.raises(QualityGateError, match="export .* is empty") as refused:
            run_pipeline(load_config(config_path), stages=("respond", "judge", "export"), quiet=True)
    summary = refused.value.summary
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["judge"] == summary.judge.model_dump(mode="json")
    counts, stage = saved["judge"], saved["stages"]["judge"]
    assert len(kinds) == 6 and kinds.count("error") == 2
    # The two failed requests fall in one or two judgments, depending on arrival order.
    assert stage["failed"] in (1, 2) and counts["judged"] == stage["unparsed"] == 3 - stage["failed"]
    assert counts["parsed_orders"] == 0 and counts["error_orders"] == 0
    assert counts["unparsed_orders"] == 2 * counts["judged"]
    assert counts["orders_by_status"] == {"unparsed": 2 * counts["judged"]}
    assert "400" in stage["errors"][0] or "BadRequest" in stage["errors"][0]
    assert saved["counts"]["pairs_from_judge"] == 0
    raws = [o["raw"] for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()
            for o in json.loads(line)["orders"]]  # fmt: skip
    assert set(raws) <= {"", "Both!"} and len(raws) == 2 * counts["judged"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "incomplete"
