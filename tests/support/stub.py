"""A tiny OpenAI-compatible server on loopback (stdlib only) that can be made to misbehave.

It answers `/v1/models` and `/v1/chat/completions` deterministically (a hash of the request) and can
be switched, while a run is going, to answer 500s, drop connections, hang, or stop listening
altogether and come back later on the same port. The judge's constrained A/B requests get the
answer and log-probs that `judge_reply` gives, so nonsense judge output can be served on purpose.
Used for the fast retry, outage and judge-output tests; the real-server tests use `vllm serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from rlaif.backends.openai_api import OpenAIBackend
from rlaif.backends.protocol import ChatRequest, ChatResult, run_batch
from rlaif.backends.vllm_server import free_port

Mode = Literal[
    "ok",
    "error500",
    "drop",
    "hang",
    "html",
    "empty_choices",
    "null_choices",
    "no_message",
    "not_found",
    "half_closed",
    "garbage_json",
]
"""`html`: a 200 web page on every path; `*_choices` and `no_message` break chat completions only;
`not_found`: 404 everywhere; `half_closed`: the status line and half the body, then the connection
closes; `garbage_json`: a 200 JSON response whose body is not JSON."""


@dataclass
class JudgeReply:
    """What the stub answers to a constrained A/B request."""

    text: str = "A"
    logprobs: dict[str, float] = field(default_factory=lambda: {"A": math.log(0.7), "B": math.log(0.3)})
    finish_reason: str = "stop"
    status: int = 200
    """Another status answers with that HTTP error instead (400: the request was refused)."""


def default_judge(body: dict[str, Any]) -> JudgeReply:
    return JudgeReply()


class _QuietServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, cancelled requests) are part of the tests


class StubServer:
    """`with StubServer() as stub:` serves on `stub.base_url` until the block ends.

    Args:
        served_name: The one model name served.
        judge_reply: Maps a constrained-choice request body to the reply.
        api_key: When set, requests without `Authorization: Bearer <api_key>` get 401.
        answer: Maps a plain (unconstrained) chat request body and choice index to its text.
        tool_caller: For requests that offer tools: the assistant turn that calls one, or None (see
            `tool_turn`).
    """

    def __init__(
        self,
        served_name: str = "stub-model",
        *,
        judge_reply: Callable[[dict[str, Any]], JudgeReply] = default_judge,
        api_key: str | None = None,
        answer: Callable[[dict[str, Any], int], str] | None = None,
        tool_caller: Callable[[dict[str, Any], int], dict[str, Any] | None] | None = None,
    ):
        self.served_name = served_name
        self.judge_reply = judge_reply
        self.answer = answer
        """Maps a plain chat request body and choice index to the text answered (default: a short hash)."""
        self.tool_caller = tool_caller
        """Maps a request offering tools and a choice index to an assistant turn with `tool_calls`, or None
        to answer in text (default: `tool_turn`'s seeded coin)."""
        self.api_key = api_key
        self.port = free_port()
        self.mode: Mode = "ok"
        self.hang_seconds = 3600.0
        self.delay = 0.0
        """Seconds every answer waits (so a test can act while requests are in flight)."""
        self.failures_left = 0
        """While above 0, each request fails the way `failure` says and counts it down."""
        self.failure: Mode = "error500"
        self.script: list[Mode] = []
        """Modes for the next requests, one each, before `failures_left` and `mode` apply."""
        self.requests: list[tuple[float, str, Mode]] = []
        """(time, path, mode) of every request received."""
        self.headers_seen: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def setup(self) -> None:
                super().setup()
                with stub._lock:
                    stub._connections.add(self.connection)

            def do_GET(self) -> None:  # noqa: N802
                stub._serve(self, None)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                stub._serve(self, json.loads(self.rfile.read(length) or b"{}"))

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused, as from a dead server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # kept-alive connections die with the server too
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.mode = "ok"  # let hanging handlers finish
        self.stop()

    def count(self, path: str = "/v1/chat/completions", mode: Mode | None = None) -> int:
        with self._lock:
            return sum(p == path and (mode is None or m == mode) for _, p, m in self.requests)

    def _serve(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        mode = self.mode
        with self._lock:
            if self.script:
                mode = self.script.pop(0)
            elif self.failures_left > 0:
                self.failures_left -= 1
                mode = self.failure
        if self._server is None:
            mode = "drop"  # a request that arrives on an old connection after stop()
        with self._lock:
            self.requests.append((time.monotonic(), handler.path, mode))
            self.headers_seen.append(dict(handler.headers.items()))
        if mode == "drop":
            handler.close_connection = True
            handler.connection.close()  # no status line at all: the client sees a broken connection
            return
        if mode == "hang":
            deadline = time.monotonic() + self.hang_seconds
            while self.mode == "hang" and time.monotonic() < deadline:
                time.sleep(0.05)
        if mode == "html":
            page = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", str(len(page)))
            handler.end_headers()
            handler.wfile.write(page)
            return None
        if mode == "error500":
            return self._send(handler, 500, {"error": {"message": "stub: internal error", "type": "server"}})
        if mode == "not_found":
            return self._send(handler, 404, {"detail": "Not Found"})
        if mode in ("half_closed", "garbage_json"):
            data = b'{"id": "stub", "object": "chat.completion", "choices": [{"index": 0, "mess'
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data) * (2 if mode == "half_closed" else 1)))
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.close()
            return None
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._send(handler, 401, {"error": {"message": "stub: bad key", "type": "auth"}})
        if self.delay:
            time.sleep(self.delay)
        if handler.path.rstrip("/") == "/v1/models":
            model = {"id": self.served_name, "object": "model", "created": 0, "owned_by": "stub"}
            return self._send(handler, 200, {"object": "list", "data": [model]})
        if handler.path.rstrip("/") == "/v1/chat/completions" and body is not None:
            status, completion = self._completion(body)
            if mode in ("empty_choices", "null_choices"):
                completion["choices"] = [] if mode == "empty_choices" else None
            elif mode == "no_message":
                completion["choices"] = [{**c, "message": None} for c in completion["choices"]]
            return self._send(handler, status, completion)
        return self._send(handler, 404, {"error": {"message": f"stub: no route {handler.path}"}})

    def _completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        choices = []
        structured = (body.get("structured_outputs") or {}).get("choice")
        for index in range(int(body.get("n") or 1)):
            if structured:
                reply = self.judge_reply(body)
                if reply.status != 200:
                    return reply.status, {
                        "error": {"message": f"stub: refused ({reply.status})", "type": "stub"}
                    }
                top = [{"token": t, "logprob": lp, "bytes": None} for t, lp in reply.logprobs.items()]
                first = {"token": reply.text[:1], "logprob": top[0]["logprob"] if top else 0.0, "bytes": None}
                logprobs = {"content": [{**first, "top_logprobs": top}]} if body.get("logprobs") else None
                text, finish = reply.text, reply.finish_reason
            elif body.get("tools") and (called := self.tool_turn(body, index)) is not None:
                choice = {"index": index, "message": called, "finish_reason": "tool_calls", "logprobs": None}
                choices.append(choice)
                continue
            elif body.get("tools") and body["messages"][-1].get("role") == "tool":
                text, finish, logprobs = f"The answer is {body['messages'][-1]['content']}.", "stop", None
            elif self.answer is not None:
                text, finish, logprobs = self.answer(body, index), "stop", None
            else:
                digest = hashlib.sha256(
                    json.dumps([body.get("messages"), body.get("seed"), index], sort_keys=True).encode()
                ).hexdigest()
                text, finish, logprobs = f"stub answer {digest[:12]}", "stop", None
            message = {"role": "assistant", "content": text}
            choice = {"index": index, "message": message, "finish_reason": finish, "logprobs": logprobs}
            choices.append(choice)
        return 200, {
            "id": "stub",
            "object": "chat.completion",
            "created": 0,
            "model": self.served_name,
            "choices": choices,
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def tool_turn(self, body: dict[str, Any], index: int) -> dict[str, Any] | None:
        """The assistant turn that calls a tool, for a request offering tools; None answers in text.

        Default (`tool_caller` unset), like a model that uses tools half the time: before any tool result,
        a seeded coin calls the first tool offered (the calculator gets the arithmetic of the last user
        turn); after a result the answer quotes it; otherwise a guess in text."""
        if self.tool_caller is not None:
            return self.tool_caller(body, index)
        messages = body["messages"]
        if any(m.get("role") == "tool" for m in messages):
            return None
        digest = hashlib.sha256(json.dumps([messages, body.get("seed"), index], sort_keys=True).encode())
        if digest.digest()[0] % 2:
            return None
        tool = body["tools"][0]["function"]
        user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
        expression = "".join(re.findall(r"[\d+\-*/(). ]+", user)).strip() or "0"
        arguments = {"expression": expression} if tool["name"] == "calculator" else {}
        call = {"id": f"call_{digest.hexdigest()[:8]}", "type": "function",
                "function": {"name": tool["name"], "arguments": json.dumps(arguments)}}  # fmt: skip
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout) while we hung


class TcpProxy:
    """A loopback TCP forwarder in front of a real server: `stop()` makes the server look dead
    (connections refused, open ones cut) without killing it; `start()` brings it back on the same port."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def base_url(self, path: str = "/v1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self.accepted += 1
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._sockets.discard(sock)


QUESTION = ({"role": "user", "content": "Name one colour of the sky."},)


def chat(backend_args: dict[str, Any], requests: list[ChatRequest]) -> list[ChatResult]:
    """Send `requests` through an `OpenAIBackend(**backend_args)` and close it."""

    async def main() -> list[ChatResult]:
        backend = OpenAIBackend(**backend_args)
        try:
            return await run_batch(backend, requests)
        finally:
            await backend.aclose()

    return asyncio.run(main())
