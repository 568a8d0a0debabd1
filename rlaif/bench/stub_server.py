"""A zero-latency OpenAI-compatible server for the scale benchmark: an ASGI app on uvicorn.

It answers at once, so whatever limits requests/s is the client. Plain chat requests get a short
deterministic answer (a hash of the messages and seed); constrained A/B judge requests get `A` or
`B` with log-probs for both. The served names of `rlaif.bench.synthetic` (`trust-policy`, and
`trust-judge:...` for a judge of set accuracy and biases) get that world's answers and verdicts
instead. `GET /stats` says how many chat requests it answered, so a benchmark
counts what a run really sent. Run it as `python -m rlaif.bench.stub_server PORT`; it serves one
model, `stub`, on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from typing import Any

from rlaif.bench import synthetic

__all__ = ["MODEL", "app", "completion"]

MODEL = "stub"
_counts = {"chat": 0}
_WORDS = [
    "plain",
    "short",
    "answers",
    "help",
    "the",
    "reader",
    "see",
    "the",
    "point",
    "quickly",
    "without",
    "extra",
    "words",
    "or",
    "links",
    "so",
    "this",
    "reply",
    "stays",
    "brief",
    "clear",
    "and",
    "direct",
    "for",
    "every",
    "question",
    "asked",
    "here",
    "today",
]


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completion the stub answers to `body`."""
    digest = hashlib.blake2b(
        json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode(), digest_size=8
    ).digest()
    structured = (body.get("structured_outputs") or {}).get("choice")
    model = str(body.get("model", ""))
    if structured:
        judged = synthetic.verdict(body) if model.startswith(synthetic.JUDGE_PREFIX) else None
        if judged is None:
            p_first = 0.2 + 0.6 * digest[0] / 255  # some pairs decided, some close: a judge with an opinion
        else:  # a synthetic judge of known accuracy and biases (rlaif bench-trust)
            p_first = judged[1] if judged[0] == 0 else 1 - judged[1]
        text = structured[0] if p_first >= 0.5 else structured[1]
        top = [
            {"token": structured[0], "logprob": math.log(p_first), "bytes": None},
            {"token": structured[1], "logprob": math.log(1 - p_first), "bytes": None},
        ]
        chosen = top[0] if text == structured[0] else top[1]
        logprobs = {"content": [{**chosen, "top_logprobs": top}]} if body.get("logprobs") else None
    elif model == synthetic.POLICY:  # answers with a hidden quality (rlaif bench-trust)
        text, logprobs = synthetic.answer(body), None
    else:
        start = digest[1] % len(_WORDS)
        words = [_WORDS[(start + i * (digest[2] | 1)) % len(_WORDS)] for i in range(12 + digest[3] % 12)]
        text, logprobs = " ".join(words).capitalize() + ".", None
    return {
        "id": "stub",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop", "logprobs": logprobs}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app: plain ASGI, no framework, so the server's own cost stays small."""
    if scope["type"] != "http":
        return
    path = scope["path"].rstrip("/")
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status: int
    if path == "/v1/chat/completions":
        _counts["chat"] += 1
        status, payload = 200, completion(json.loads(body or b"{}"))
    elif path == "/v1/models":
        model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "rlaif"}
        status, payload = 200, {"object": "list", "data": [model]}
    elif path in ("/stats", "/health"):
        status, payload = 200, {"requests": _counts["chat"]}
    else:
        status, payload = 404, {"detail": "Not Found"}
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main(port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=4096)


if __name__ == "__main__":
    main(int(sys.argv[1]))
