"""Universal probes: the spoiled answers, what cannot be built, and whole runs on stub judges of known
behaviour (a competent oracle, one that answers "A" in every order, one that prefers the longer answer)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.config import load_config
from rlaif.errors import ConfigError, QualityGateError
from rlaif.pipeline.pairs import pairs_from_judgments
from rlaif.pipeline.probes import (
    MIN_TRUNCATE_WORDS,
    build_probes,
    fillers,
    outcome,
    padded,
    probe_report,
    repeated,
    truncated,
)
from rlaif.pipeline.reports import RunSummary
from rlaif.pipeline.run import run_pipeline
from rlaif.records import (
    Judgment,
    Message,
    OrderVerdict,
    ProbeResponse,
    PromptRecord,
    Provenance,
    Response,
    stable_id,
)
from rlaif.store import RunDir
from tests.support.stub import JudgeReply, StubServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ANSWER = (
    "Drink water first, and keep the amount small. A doctor can say what is safe for you, because it "
    "depends on your weight and your health. If you feel unwell, stop and ask for help."
)


# --- the spoiled answers -------------------------------------------------------------------------------


def test_padding_appends_shipped_filler_deterministically() -> None:
    one = padded(ANSWER, seed=3, key="res-1")
    assert one == padded(ANSWER, seed=3, key="res-1")
    assert one.startswith(ANSWER) and len(one.split()) >= 1.5 * len(ANSWER.split())
    added = one[len(ANSWER) :].strip()
    assert all(sentence in fillers() for sentence in re.split(r"(?<=\.) ", added))
    assert {padded(ANSWER, seed=s, key="res-1") for s in range(8)} != {one}  # the seed picks the filler
    assert len(fillers()) >= 10 and all(not f.startswith("#") for f in fillers())


def test_truncation_cuts_mid_sentence_and_needs_a_long_enough_answer() -> None:
    cut = truncated(ANSWER)
    assert cut is not None and ANSWER.startswith(cut) and len(cut) < len(ANSWER)
    assert not re.search(r"[.!?,;:]$", cut), cut  # it ends inside a sentence
    assert 0.3 < len(cut.split()) / len(ANSWER.split()) < 0.7
    assert truncated(" ".join(["word"] * (MIN_TRUNCATE_WORDS - 1)) + ".") is None


def test_repetition_repeats_the_first_sentence_to_the_answers_length() -> None:
    loop = repeated(ANSWER)
    first = "Drink water first, and keep the amount small."
    assert loop is not None and loop.count(first) >= 3 and loop.replace(first, "").strip() == ""
    assert len(loop.split()) >= len(ANSWER.split())
    assert repeated("Yes.") is None
    # Without a sentence end, the first 8 words are the unit.
    assert repeated("no punctuation at all in this long answer here") == " ".join(
        ["no punctuation at all in this long answer"] * 3
    )


def _prompt(text: str) -> PromptRecord:
    messages = (Message(role="user", content=text),)
    return PromptRecord(id=stable_id("prompt", messages=messages), messages=messages)


def _response(prompt: PromptRecord, text: str, *, index: int = 0, finish: str = "stop") -> Response:
    return Response(
        id=stable_id("response", prompt=prompt.id, index=index, text=text), prompt_id=prompt.id,
        sample_index=index, text=text, finish_reason=finish,
        provenance=Provenance(model="m", template="respond", template_hash="t"),
    )  # fmt: skip


def test_probes_that_cannot_be_built_are_counted_by_reason_never_guessed() -> None:
    from rlaif.config import ProbesConfig

    good, empty, short, cut, unanswered = (_prompt(f"question {i}?") for i in range(5))
    responses = {
        good.id: [_response(good, ANSWER), _response(good, "another answer", index=1)],
        empty.id: [_response(empty, "   ")],
        short.id: [_response(short, "Too short.")],
        cut.id: [_response(cut, ANSWER + " and then the", finish="length")],
    }
    not_built: Counter[str] = Counter()
    built = list(
        build_probes([good, empty, short, cut, unanswered], responses, config=ProbesConfig(share=1.0), seed=0,
                     not_built=not_built)
    )  # fmt: skip
    kinds = Counter(probe.probe_kind for _, _, probe in built)
    assert kinds == {"padded": 3, "off_topic": 3, "repetition": 2, "truncated": 1}
    assert not_built == {
        **{f"{k}: no answer": 1 for k in ("padded", "off_topic", "truncated", "repetition")},
        **{f"{k}: empty answer": 1 for k in ("padded", "off_topic", "truncated", "repetition")},
        "truncated: answer too short to cut mid-sentence": 1,
        "truncated: answer already cut off by max_tokens": 1,
        "repetition: first sentence too short to repeat": 1,
    }
    for prompt, answer, probe in built:  # every probe starts from the prompt's first answer
        assert answer.sample_index == 0 and answer.prompt_id == prompt.id == probe.prompt_id
        if probe.probe_kind == "off_topic":
            assert probe.response_id != answer.id and probe.text != answer.text
    # The same inputs give the same probes, ids included: a rerun judges none twice.
    prompts = [good, empty, short, cut, unanswered]
    again = list(
        build_probes(prompts, responses, config=ProbesConfig(share=1.0), seed=0, not_built=Counter())
    )
    assert [p.id for _, _, p in again] == [p.id for _, _, p in built]
    lonely: Counter[str] = Counter()
    assert [p.probe_kind for *_, p in build_probes([good], responses, config=ProbesConfig(share=1.0,
            kinds=["off_topic"]), seed=0, not_built=lonely)] == []  # fmt: skip
    assert lonely == {"off_topic: no other prompt answered": 1}


def _probe_judgment(p_a: float | None, *, consistent: bool | None, better: str = "a", kind: str = "padded"
                    ) -> Judgment:  # fmt: skip
    status = "unparsed" if p_a is None else "ok"
    return Judgment(
        id=stable_id("judgment", p=p_a, c=consistent, b=better, k=kind), prompt_id="p", response_a_id="ra",
        response_b_id="rb", principle_ids=("x",),
        orders=(OrderVerdict(first_id="ra", p_first=p_a, raw="A", status=status),) if p_a is not None else (),
        p_a=p_a, consistent=consistent, status=status, kind="probe", probe_kind=kind,
        known_better=better,  # type: ignore[arg-type]
        provenance=Provenance(model="m", template="judge", template_hash="t"),
    )  # fmt: skip


def test_accuracy_counts_ties_half_and_leaves_unparsed_out() -> None:
    judgments = [
        _probe_judgment(0.9, consistent=True),  # right
        _probe_judgment(0.2, consistent=True, better="b"),  # right
        _probe_judgment(0.8, consistent=True, better="b"),  # wrong
        _probe_judgment(0.5, consistent=False),  # orders disagree: a tie
        _probe_judgment(None, consistent=None),  # unparsed
    ]
    assert [outcome(j) for j in judgments] == ["right", "right", "wrong", "tie", "unparsed"]
    report = probe_report(judgments, share=0.2, prompts=1, not_built={"truncated: empty answer": 2},
                          kinds=["padded", "truncated"])  # fmt: skip
    assert (report.right, report.wrong, report.ties, report.unparsed, report.judged) == (2, 1, 1, 1, 5)
    assert report.accuracy is not None and report.accuracy.n == 4 and report.accuracy.value == 2.5 / 4
    assert report.accuracy.ci95 is not None and report.accuracy.ci95[0] < 0.625 < report.accuracy.ci95[1]
    assert report.by_kind["truncated"].accuracy is not None
    assert report.by_kind["truncated"].accuracy.value is None  # n/a, never 0
    assert report.by_kind["truncated"].not_built == {"empty answer": 2}
    # Decided: the verdicts whose orders agree, as a judge pair needs: 2 right of 3, the tie left out.
    assert report.decided is not None and report.decided.n == 3 and report.decided.value == 2 / 3
    assert report.per_kind() == "padded 66.7% of 3 decided (1 ties), truncated n/a of 0 decided"


def test_a_probe_judgment_never_becomes_a_pair() -> None:
    from rlaif.config import JudgeConfig

    skipped: Counter[str] = Counter()
    probe = _probe_judgment(0.9, consistent=True)
    assert list(pairs_from_judgments([probe], {}, {}, JudgeConfig(), skipped)) == []
    assert skipped == {"probe (never exported)": 1}


# --- bad input -----------------------------------------------------------------------------------------


def _write(tmp_path: Path, extra: dict[str, Any]) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"prompts": {"path": str(EXAMPLES / "prompts.jsonl")}, **extra}))
    return path


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"judge": {"probes": {"share": 1.5}}}, "judge.probes.share"),
        ({"judge": {"probes": {"share": -0.1}}}, "judge.probes.share"),
        (
            {"judge": {"probes": {"share": 0}}},
            "judge.probes.share is 0, but the gate quality.min_probe_accuracy",
        ),
        ({"judge": {"probes": {"kinds": []}}}, "judge.probes.kinds is empty, but the gate"),
        ({"judge": {"probes": {"kinds": ["shouty"]}}}, "judge.probes.kinds"),
        ({"quality": {"min_probe_accuracy": 1.2}}, "quality.min_probe_accuracy"),
    ],
)
def test_bad_probe_settings_are_one_line_at_load(tmp_path: Path, extra: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, extra))
    message = str(raised.value)
    assert says in message and "Traceback" not in message
    assert len(message.strip().splitlines()) <= 2, message


def test_no_probes_with_the_gate_off_is_fine(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, {"judge": {"probes": {"share": 0}}, "quality": {"min_probe_accuracy": None}})
    )
    assert config.judge.probes.share == 0


# --- whole runs on stub judges -------------------------------------------------------------------------


class Answers:
    """The policy: three-sentence answers keyed by the request; remembers which prompt each answers."""

    def __init__(self) -> None:
        self.by_prompt: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any], index: int) -> str:
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        tag = hashlib.sha256(json.dumps([user, body.get("seed"), index]).encode()).hexdigest()[:8]
        words = ["plainly", "briefly", "carefully", "simply"][int(tag, 16) % 4]
        text = (
            f"Here is an answer {tag} put {words} for you. It gives one clear reason and one example of "
            f"it{'' if int(tag[0], 16) % 2 else ' in more words than the others'}. It ends with a summary."
        )
        with self._lock:
            self.by_prompt.setdefault(user, set()).add(text)
        return text


_CANDIDATE = re.compile(r"<response_([AB])_(\w+)>\n(.*?)\n</response_\1_\2>", re.DOTALL)


def _candidates(body: dict[str, Any]) -> tuple[str, str, str]:
    text = body["messages"][-1]["content"]
    found = {letter: answer for letter, _, answer in _CANDIDATE.findall(text)}
    return text, found["A"], found["B"]


def _reply(p_a: float) -> JudgeReply:
    return JudgeReply(text="A" if p_a >= 0.5 else "B", logprobs={"A": math.log(p_a), "B": math.log(1 - p_a)})


def oracle(answers: Answers) -> Any:
    """Knows the truth: a genuine answer to this conversation beats anything else; between two genuine
    ones it prefers the same one in both orders (by a hash)."""

    def judge(body: dict[str, Any]) -> JudgeReply:
        text, a, b = _candidates(body)
        genuine = next(s for user, s in answers.by_prompt.items() if f"Human: {user}\n" in text)
        if (a in genuine) != (b in genuine):
            return _reply(0.95 if a in genuine else 0.05)
        first = hashlib.sha256(a.encode()).hexdigest() < hashlib.sha256(b.encode()).hexdigest()
        return _reply(0.9 if first else 0.1)

    return judge


def longer(body: dict[str, Any]) -> JudgeReply:
    """Length bias in both orders, P = 0.9: the longer candidate wins whatever it says."""
    _, a, b = _candidates(body)
    return _reply(0.9 if len(a) >= len(b) else 0.1)


def _run(tmp_path: Path, judge: Any, answers: Answers, **extra: Any) -> tuple[RunSummary, StubServer]:
    with StubServer(judge_reply=judge, answer=answers) as stub:
        config = _write(tmp_path, {
            "run_dir": str(tmp_path / "run"),
            "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 10},
            "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
            "revise": {"enabled": False},
            "judge": {"probes": {"share": 1.0}},
            **extra,
        })  # fmt: skip
        try:
            summary = run_pipeline(load_config(config), stages=("respond", "judge", "export"), quiet=True)
        except QualityGateError as refused:  # an empty export: the summary says why
            assert isinstance(refused.summary, RunSummary)
            summary = refused.summary
    return summary, stub


def _gate(summary: RunSummary) -> Any:
    assert summary.quality is not None
    return next(g for g in summary.quality.gates if g.name == "judge probe accuracy")


def test_a_competent_judge_scores_one_on_every_kind_passes_and_a_rerun_judges_none_again(
    tmp_path: Path,
) -> None:
    answers = Answers()
    summary, _ = _run(tmp_path, oracle(answers), answers)
    probes = summary.probes
    assert probes is not None and probes.prompts == 10
    assert set(probes.by_kind) == {"padded", "off_topic", "truncated", "repetition"}
    assert probes.accuracy is not None and probes.accuracy.n == 40 and probes.accuracy.value == 1.0
    assert probes.accuracy.ci95 is not None and probes.accuracy.ci95[0] > 0.9
    assert all(t.accuracy is not None and t.accuracy.value == 1.0 for t in probes.by_kind.values())
    gate = _gate(summary)
    assert gate.applies and gate.passed is True and gate.value == 1.0
    assert summary.quality is not None and summary.quality.passed
    # Probes are judged like any pair, both orders, with the better answer on either side.
    run = RunDir(tmp_path / "run", lock=False)
    stored = list(run.stage(run.layout.PROBES, Judgment))
    assert len(stored) == 40 and all(len(j.orders) == 2 and j.kind == "probe" for j in stored)
    assert {j.known_better for j in stored} == {"a", "b"}
    texts = run.stage(run.layout.PROBE_RESPONSES, ProbeResponse)
    assert all(j.response_a_id in texts or j.response_b_id in texts for j in stored)
    # ... never exported: no exported row holds a spoiled answer.
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "export" / "pairs.jsonl").read_text().splitlines()
    ]
    spoiled = {t.text for t in texts if t.probe_kind != "off_topic"}  # off-topic ones are real answers
    said = {r[side][-1]["content"] for r in rows for side in ("chosen", "rejected")}
    assert rows and not said & spoiled
    assert {r["source"] for r in rows} == {"judge"}
    # The summary's JSON, the card and the table carry the figures.
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["probes"]["accuracy"]["value"] == 1.0 and saved["probes"]["by_kind"]["padded"]["right"] == 10
    card = (tmp_path / "run" / "export" / "README.md").read_text()
    assert "universal probes" in card and "100.0% of 40" in card and "  - padded: 100.0% of 10" in card
    # A rerun (as after a kill) builds the same probes and judges none of them again.
    lines = (tmp_path / "run" / "probes.jsonl").read_text().splitlines()
    spoiled_lines = (tmp_path / "run" / "probe_responses.jsonl").read_text().splitlines()
    again, stub = _run(tmp_path, oracle(answers), answers)
    assert summary.stages["probes"].made == 40 and again.stages["probes"].made == 0
    assert again.stages["probes"].reused == 40
    assert stub.count() == 0  # not one chat request: every answer, judgment and probe was stored
    assert (tmp_path / "run" / "probes.jsonl").read_text().splitlines() == lines
    assert (tmp_path / "run" / "probe_responses.jsonl").read_text().splitlines() == spoiled_lines
    assert again.probes == summary.probes


def test_a_judge_that_answers_a_in_every_order_ties_every_probe_and_is_said_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, _ = _run(tmp_path, lambda body: JudgeReply(), Answers())
    probes = summary.probes
    assert probes is not None and probes.accuracy is not None
    assert probes.ties == probes.accuracy.n == 40 and probes.right == probes.wrong == 0
    assert probes.accuracy.value == 0.5  # chance: ties count half, never as right or wrong
    gate = _gate(summary)
    assert probes.decided is not None and probes.decided.value is None and probes.decided.n == 0
    # Its judge pairs are all dropped (orders disagree), so no gate applies: the warning says it instead,
    # with no figure (none was decided) but the reason.
    assert gate.applies is False and gate.value is None
    assert summary.quality is not None
    warning = next(w for w in summary.quality.warnings if w.startswith("judge probe accuracy"))
    assert "judge probe accuracy is n/a (the judge decided none of its 40 probes" in warning
    assert "(least allowed 80.0%)" in warning
    assert "per kind: padded n/a of 0 decided (10 ties), off_topic n/a of 0 decided (10 ties)" in warning
    # The run's table shows the figure and each kind.
    import io

    from rich.console import Console

    from rlaif.cli.tables import pipeline as render

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=400, color_system=None))
    render.print_summary(summary)
    table = out.getvalue()
    assert "judge probe accuracy (decided)" in table and "n/a" in table
    assert "judge probe accuracy, ties half" in table and "50.0% of 40" in table
    assert "probes: padded" in table and "10 ties" in table


def test_a_length_biased_judge_fails_padding_and_repetition_and_is_refused(tmp_path: Path) -> None:
    summary, _ = _run(tmp_path, longer, Answers())
    probes = summary.probes
    assert probes is not None
    accuracy = {kind: t.accuracy.value for kind, t in probes.by_kind.items() if t.accuracy}
    assert accuracy["padded"] == 0.0 and accuracy["repetition"] == 0.0 and accuracy["truncated"] == 1.0
    gate = _gate(summary)
    assert gate.applies and gate.passed is False  # its judge pairs are consistent, so they would train
    assert summary.quality is not None and not summary.quality.passed
    line = next(f for f in summary.quality.failures() if f.startswith("judge probe accuracy"))
    assert "is below the least allowed (80.0%)" in line
    assert "per kind: padded 0.0% of 10 decided, off_topic" in line
    assert "truncated 100.0% of 10 decided" in line
    assert "repetition 0.0% of 10 decided" in line


def test_the_probe_gate_holds_every_kind_to_the_bar_and_reads_decided_verdicts_only() -> None:
    """A judge right on 89% of its decided probes but on 77% of the padded ones (the length-controlled
    kind) is refused, naming that kind; its ties (orders that disagree) do not count against it."""
    from rlaif.config import RunConfig
    from rlaif.pipeline.quality import _probe_gate

    def judged(kind: str, right: int, wrong: int, ties: int) -> list[Judgment]:
        made = [_probe_judgment(0.9, consistent=True, kind=kind) for _ in range(right)]
        made += [_probe_judgment(0.8, consistent=True, better="b", kind=kind) for _ in range(wrong)]
        made += [_probe_judgment(0.5, consistent=False, kind=kind) for _ in range(ties)]
        return made

    judgments = judged("padded", 33, 10, 30) + judged("off_topic", 60, 2, 30) + judged("truncated", 67, 0, 0)
    report = probe_report(judgments, share=1.0, prompts=232, not_built={},
                          kinds=["padded", "off_topic", "truncated"])  # fmt: skip
    assert report.decided is not None and report.decided.n == 172
    assert report.decided.value == pytest.approx(160 / 172)  # 93%: passes on its own
    config = RunConfig.model_validate({"prompts": {"path": "p.jsonl"}})
    gate = _probe_gate(report, config, applies=True, note="", fix="a stronger judge")
    assert gate.passed is False and gate.value == pytest.approx(33 / 43)
    assert "lowest kind: padded 76.7% of 43 decided; all kinds 93.0% of 172" in gate.message()
    # Ties alone never fail it: a judge that ties half its probes and is right on the rest passes.
    sound = probe_report(judged("padded", 40, 0, 40), share=1.0, prompts=80, not_built={}, kinds=["padded"])
    assert sound.accuracy is not None and sound.accuracy.value == 0.75  # ties counted half
    passed = _probe_gate(sound, config, applies=True, note="", fix="")
    assert passed.passed is True and passed.value == 1.0
