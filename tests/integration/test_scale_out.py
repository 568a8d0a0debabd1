"""Scale-out: one client over two real vLLM servers; both carry load; killing one mid-run loses nothing.

The first replica is the session's shared server; the second, started here under the same served name
(the client sends one model name to every replica), is the one killed."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from rlaif.backends.bundled import cache_dir
from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest, ChatResult, run_batch
from rlaif.backends.vllm_server import VLLMServer


def test_two_replicas_share_load_and_survive_losing_one(
    vllm_server: VLLMServer, model_dir: Path, tmp_path: Path
) -> None:
    first = vllm_server
    replica = VLLMServer(
        model_dir, served_name=first.served_name, log_path=tmp_path / "b.log", cache_dir=cache_dir("vllm")
    )
    with replica as second:
        question = ({"role": "user", "content": "Write one sentence about rivers."},)
        requests = [ChatRequest(messages=question, max_tokens=48, temperature=0.8, seed=i) for i in range(32)]

        async def main() -> tuple[list[ChatResult], list[int], list[int]]:
            backend = OpenAIBackend([first.base_url, second.base_url], first.served_name, max_concurrency=16)
            done: list[int] = []
            killed_at: list[int] = []

            def on_result(index: int, result: ChatResult) -> None:
                done.append(index)
                if len(done) == 8 and second.process is not None:
                    # Kill replica two while half the batch is still in flight on it.
                    os.killpg(second.process.pid, signal.SIGKILL)
                    killed_at.append(len(done))

            try:
                balanced = await run_batch(backend, requests[:16])
                served_before = list(backend.served)
                results = await run_batch(backend, requests[16:], on_result=on_result)
            finally:
                await backend.aclose()
            return balanced + results, served_before, killed_at

        results, served_before, killed_at = asyncio.run(main())
    assert all(served > 0 for served in served_before), f"one replica got no work: {served_before}"
    assert killed_at == [8]
    assert len(results) == 32 and all(r.error is None and r.texts and r.texts[0] for r in results)
