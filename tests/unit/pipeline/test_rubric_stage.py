"""The rubric stage on the stub server: an oracle item writer and scorer give pairs of known accuracy
through the export; items, scores and judgments are resumed, unparsed lists recorded, never guessed."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.config import load_config
from rlaif.pipeline.run import run_pipeline
from tests.support.stub import JudgeReply, StubServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ITEMS = ["The answer says GOOD.", "The answer is written in English.", "The answer says good."]
"""The oracle's checklist: one informative item, one every answer passes, one repeat of the first."""


class Oracle:
    """Answers GOOD or BAD (a hash of the request, so about half the pairs differ); writes `ITEMS` (or
    prose, for the prompts in `prose`); scores "says GOOD" by reading the answer, 0.9 or 0.1."""

    def __init__(self, prose: frozenset[str] = frozenset()) -> None:
        self.prose = prose
        self.item_requests = self.score_requests = self.pairwise = 0

    def answer(self, body: dict[str, Any], index: int) -> str:
        text = body["messages"][-1]["content"]
        if "Answer with a JSON list" in text:
            self.item_requests += 1
            if any(p in text for p in self.prose):
                return "Be good."
            return json.dumps(ITEMS)
        digest = hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")]).encode()).digest()
        return f"{'GOOD' if digest[0] % 2 else 'BAD'} answer {digest[:4].hex()}"

    def reply(self, body: dict[str, Any]) -> JudgeReply:
        text = body["messages"][-1]["content"]
        found = re.search(r"<answer_\w+>\n(.*?)\n</answer_\w+>.*Requirement: (.*?)\n", text, re.S)
        if found is None:  # the universal probes still ask the pairwise question
            self.pairwise += 1
            return JudgeReply()
        self.score_requests += 1
        answer, item = found.groups()
        yes = ("GOOD" in answer) if "GOOD" in item else True
        p = 0.9 if yes else 0.1
        return JudgeReply(text="Yes" if yes else "No", logprobs={"Yes": math.log(p), "No": math.log(1 - p)})


def _config(tmp_path: Path, stub: StubServer) -> Path:
    settings = {
        "run_dir": str(tmp_path / "run"),
        "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 12},
        "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
        "revise": {"enabled": False},
        "judge": {"rubric": "per_prompt", "rubric_items": 3},
        "quality": {"min_pairs": 1, "min_probe_accuracy": None},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open()] if path.exists() else []


def test_an_oracle_rubric_makes_only_right_pairs_through_the_export_and_resumes(tmp_path: Path) -> None:
    oracle = Oracle()
    with StubServer(judge_reply=oracle.reply, answer=oracle.answer) as stub:
        config = load_config(_config(tmp_path, stub))
        summary = run_pipeline(config, stages=("respond", "judge", "export"), quiet=True)
        run = tmp_path / "run"
        judgments = _rows(run / "judgments.jsonl")
        assert len(judgments) == 12 and all(j["mode"] == "rubric" for j in judgments)  # no pairwise question
        assert stub.count() == 12 * 2 + oracle.item_requests + oracle.score_requests + oracle.pairwise
        assert oracle.item_requests == 12
        items = _rows(run / "rubric_items.jsonl")
        assert len(items) == 12 and all(r["status"] == "ok" and r["duplicates"] == 1 for r in items)
        assert all(r["items"] == ITEMS[:2] for r in items)  # the repeat is gone
        assert len(_rows(run / "rubric_scores.jsonl")) == 12 * 2 * 2 == oracle.score_requests
        dropped = _rows(run / "rubric_dropped.jsonl")
        # The item every answer meets is dropped on every prompt; "says GOOD" where both samples agree.
        assert sum(d["item"] == ITEMS[1] for d in dropped) == 12
        # Where the two samples differ, the pair is right every time; where they agree, no item is left.
        texts = {r["id"]: r["text"] for r in _rows(run / "responses.jsonl")}
        differ = [
            j
            for j in judgments
            if ("GOOD" in texts[j["response_a_id"]]) != ("GOOD" in texts[j["response_b_id"]])
        ]
        assert differ and all(round(j["p_a"], 9) in (0.9, 0.1) for j in differ)
        assert all(j["p_a"] == 0.5 for j in judgments if j not in differ)
        pairs = [r for r in _rows(run / "export" / "pairs.jsonl") if r["source"] == "judge"]
        assert len(pairs) == len(differ)
        assert all(
            "GOOD" in r["chosen"][-1]["content"] and "BAD" in r["rejected"][-1]["content"] for r in pairs
        )
        candidates = _rows(run / "pairs.jsonl")
        # Each pair names the item that decided it, as "principle: item".
        decided = [c["rubric_items"] for c in candidates if c["source"] == "judge"]
        assert decided and all(len(d) == 1 and d[0].endswith(": The answer says GOOD.") for d in decided)
        assert summary.counts.pairs_from_judge == len(differ)

        # A rerun asks nothing: items, scores and judgments are all stored.
        before = stub.count()
        run_pipeline(config, stages=("respond", "judge", "export"), quiet=True)
        assert stub.count() == before


def test_an_item_answer_that_is_not_a_list_is_recorded_unparsed(tmp_path: Path) -> None:
    first = json.loads((EXAMPLES / "prompts.jsonl").open().readline())
    text = first.get("prompt") or first["messages"][-1]["content"]
    oracle = Oracle(prose=frozenset({text}))
    with StubServer(judge_reply=oracle.reply, answer=oracle.answer) as stub:
        run_pipeline(load_config(_config(tmp_path, stub)), stages=("respond", "judge"), quiet=True)
    items = _rows(tmp_path / "run" / "rubric_items.jsonl")
    bad = [r for r in items if r["status"] == "unparsed"]
    assert [r["raw"] for r in bad] == ["Be good."] and bad[0]["items"] == []
    judged = {j["prompt_id"]: j for j in _rows(tmp_path / "run" / "judgments.jsonl")}
    assert judged[bad[0]["prompt_id"]]["status"] == "unparsed" and judged[bad[0]["prompt_id"]]["p_a"] is None


def test_the_summary_prints_the_rubric_stage_in_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from rlaif.cli.tables import pipeline as render
    from rlaif.pipeline.reports import JudgeSummary, RubricReport, RunCounts, RunSummary

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=400, color_system=None))
    counts = RunCounts(prompts=3, responses=6, revision_steps=0, revisions=0, judgments=3)
    report = RubricReport(prompts=3, items_written=9, items_unparsed=1, items_kept=4, judgments=3,
                          items_dropped={"every sampled answer passes": 5}, requests=22, prompt_tokens=4000,
                          completion_tokens=300)  # fmt: skip
    summary = RunSummary(run_dir="r", constitution="c", model="m", judge_model=None, counts=counts,
                         judge=JudgeSummary(), stages={"rubric": report})  # fmt: skip
    render.print_summary(summary)
    shown = out.getvalue()
    assert (
        "3 prompts; 9 items written (1 lists unparsed, 0 repeats); 4 kept, dropped: 5 every sampled" in shown
    )
    assert "22 requests, 4000 prompt + 300 completion tokens" in shown
    assert (
        json.loads(summary.model_dump_json())["stages"]["rubric"]["items_kept"] == 4
    )  # kept in summary.json


class ScriptedJudge:
    """In process: writes `items`, answers an item "says X" Yes when the answer contains X."""

    model = label = "scripted"

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.requests = 0

    async def chat(self, request: Any) -> Any:
        from rlaif.backends.protocol import ChatResult

        self.requests += 1
        text = request.messages[-1]["content"]
        if request.json_schema is not None:
            return ChatResult(texts=[json.dumps(self.items)], prompt_tokens=100, completion_tokens=20)
        found = re.search(
            r"<answer_\w+>\n(.*?)\n</answer_\w+>.*Requirement: The answer says (\w+)\.", text, re.S
        )
        assert found is not None
        yes = found.group(2) in found.group(1)
        p = 0.9 if yes else 0.1
        return ChatResult(
            texts=["Yes" if yes else "No"], first_token_logprobs={"Yes": math.log(p), "No": math.log(1 - p)},
            prompt_tokens=80, completion_tokens=1,
        )  # fmt: skip

    async def aclose(self) -> None:
        pass


def test_an_item_that_ranks_check_labelled_samples_backwards_is_dropped_with_its_reason(
    tmp_path: Path,
) -> None:
    import asyncio

    from rlaif.config import JudgeConfig
    from rlaif.pipeline.rubric import rubric
    from rlaif.records import (
        Check,
        Constitution,
        Judgment,
        Message,
        Principle,
        PromptRecord,
        Provenance,
        Response,
        RubricItems,
        RubricScore,
    )  # fmt: skip
    from rlaif.store import RunDir

    # The check says GOOD answers are better; the judge's second item rewards BAD ones.
    principle = Principle(
        id="good", judge_question="Which is good?", rubric=True, check=Check(must_match="GOOD")
    )
    constitution = Constitution(name="c", principles=(principle,))
    prompt = PromptRecord(id="p", messages=(Message(role="user", content="Say something."),))
    provenance = Provenance(model="m", template="respond", template_hash="h")
    texts = [
        "GOOD one FINE",
        "GOOD two",
        "BAD three FINE",
        "BAD four",
    ]  # the sampled pair: both pass the check
    responses = [Response(id=f"r{i}", prompt_id="p", sample_index=i, text=t, provenance=provenance)
                 for i, t in enumerate(texts)]  # fmt: skip
    judge = ScriptedJudge(["The answer says BAD.", "The answer says FINE.", "The answer says GOOD."])
    with RunDir(tmp_path / "run") as run:
        report = asyncio.run(rubric(
            judge, [prompt], {"p": responses}, constitution=constitution, config=JudgeConfig(rubric_items=3),
            seed=0, items=run.stage("rubric_items", RubricItems),
            scores=run.stage("rubric_scores", RubricScore), judgments=run.stage("judgments", Judgment),
            dropped=tmp_path / "dropped.jsonl", quiet=True,
        ))  # fmt: skip
        (judgment,) = run.stage("judgments", Judgment)
    dropped = {row["item"]: row["reason"] for row in _rows(tmp_path / "dropped.jsonl")}
    assert dropped == {"The answer says BAD.": "ranks 4 of 4 labelled pairs the wrong way"}
    assert report.items_kept == 2 and report.items_dropped == {"ranks 4 of 4 labelled pairs the wrong way": 1}
    # FINE separates the sampled pair (r0 has it, r1 not); GOOD, kept, is met by both.
    assert round(judgment.p_a, 6) == round(0.5 + (0.9 - 0.5) / 2, 6)  # type: ignore[arg-type]  # r0 0.9, r1 0.5
    assert judgment.rubric_items == ("good: The answer says FINE.",)
    assert report.requests == judge.requests == 1 + 3 * 4 and report.prompt_tokens == 100 + 12 * 80


def test_two_workers_write_the_dropped_items_one_process_does(tmp_path: Path) -> None:
    """Each `--workers` worker filters its own prompts' items; their parts are joined into one
    `rubric_dropped.jsonl`, the same file one process writes (it used to be the last worker's alone)."""
    oracle = Oracle()
    with StubServer(judge_reply=oracle.reply, answer=oracle.answer) as stub:
        files, reports = [], []
        for workers in (1, 2):
            folder = tmp_path / f"w{workers}"
            folder.mkdir()
            config = load_config(_config(folder, stub)).model_copy(deep=True)
            config.model.workers = workers
            summary = run_pipeline(config, stages=("respond", "judge"), quiet=True)
            reports.append(summary.stages["rubric"].model_dump())
            files.append((folder / "run" / "rubric_dropped.jsonl").read_text())
            assert not list((folder / "run").glob("rubric_dropped.jsonl.worker-*"))
    assert files[0] == files[1] and files[0].count("\n") >= 12
    assert reports[0] == reports[1] and reports[0]["items_dropped"]  # the rubric's own counts, summed
