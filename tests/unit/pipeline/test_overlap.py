"""Critique/revise and the judge run at the same time, sharing one progress display."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from rlaif import progress
from rlaif.config import load_config
from rlaif.pipeline.run import _together, run_pipeline
from tests.support.stub import JudgeReply, StubServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_the_judge_starts_before_the_revisions_are_done(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    steps_at_judge: list[int] = []

    def reply(body: dict[str, Any]) -> JudgeReply:
        steps = run_dir / "revision_steps.jsonl"
        steps_at_judge.append(len(steps.read_text().splitlines()) if steps.exists() else 0)
        return JudgeReply()

    with StubServer(judge_reply=reply) as stub:
        stub.delay = 0.2  # each critique and revision takes a while, so the two stages overlap in time
        config_path = tmp_path / "run.yaml"
        config_path.write_text(yaml.safe_dump({
            "run_dir": str(run_dir),
            "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 4},
            "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
            "revise": {"rounds": 2},
            "train": {"dpo": {"enabled": False}},
        }))  # fmt: skip
        summary = run_pipeline(load_config(config_path), stages=("respond", "revise", "judge"), quiet=True)
    assert summary.counts.revision_steps == 8
    assert summary.counts.judgments == 4
    assert len(steps_at_judge) == 8  # both orders of 4 pairs
    assert min(steps_at_judge) < 8, "the judge waited for every revision"


def test_together_cancels_the_rest_and_raises_the_error_itself() -> None:
    cancelled: list[str] = []

    async def slow() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise
        return 1

    async def failing() -> int:
        await asyncio.sleep(0.01)
        raise ConnectionError("server gone")

    with pytest.raises(ConnectionError, match="server gone"):
        asyncio.run(_together([slow(), failing()]))
    assert cancelled == ["slow"]

    async def fine(value: int) -> int:
        await asyncio.sleep(0.01 * value)
        return value

    assert asyncio.run(_together([fine(2), fine(1)])) == [2, 1]


def test_stages_at_once_share_one_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich raises LiveError for a second live display; two bars at once must share the first."""
    out = io.StringIO()
    real = progress.Progress

    def to_buffer(*args: Any, **kwargs: Any) -> Any:
        return real(*args, console=Console(file=out, width=100), **kwargs)

    monkeypatch.setattr(progress, "Progress", to_buffer)

    async def stage(name: str, steps: int) -> None:
        with progress.stage_progress(name, steps) as advance:
            for _ in range(steps):
                await asyncio.sleep(0.001)
                advance()

    async def both() -> None:
        await asyncio.gather(stage("revise", 5), stage("judge", 3))

    asyncio.run(both())
    assert progress._display is None and progress._users == 0  # stopped when the last stage ended
    text = out.getvalue()
    assert "revise" in text and "5/5" in text
    assert "judge" in text and "3/3" in text
    asyncio.run(stage("export", 2))  # a later stage starts a fresh display
    assert "2/2" in out.getvalue()
