"""The web reviewer (`rlaif review serve RUN_DIR`): a local page on 127.0.0.1 behind a random token.

Every request must carry the token: `?token=` on the first visit (answered with an HttpOnly,
SameSite=Strict cookie and a redirect that takes the token out of the address bar), then the
cookie, or an `X-Review-Token` header. Anything else gets 403, as does a request whose Host is not
the loopback address (DNS rebinding). The page sets model text with `textContent` only, and the
Content-Security-Policy allows no inline script, so an answer containing `<script>` stays text.
The standard library's HTTP server is enough for one person on one machine.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from rlaif.errors import ReviewError
from rlaif.records import ReviewAnswer
from rlaif.review.session import ReviewSession

__all__ = ["ReviewServer"]

COOKIE = "rlaif_review_token"
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 32
IDLE_SECONDS = 30.0
HEADER_SECONDS = 3.0
"""A connection must send a whole request head and pass the token check within this long (a browser on
loopback takes milliseconds); until it has, it may also be closed to make room for a new connection."""
ASSETS = {
    "/": ("review.html", "text/html; charset=utf-8"),
    "/review.js": ("review.js", "text/javascript; charset=utf-8"),
    "/review.css": ("review.css", "text/css; charset=utf-8"),
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class ReviewServer:
    """Serves one `ReviewSession` on loopback until stopped; decisions are stored as they arrive."""

    def __init__(self, session: ReviewSession, *, port: int = 0, token: str | None = None):
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        self.lock = threading.Lock()  # one session, many handler threads
        handler = type("Handler", (_Handler,), {"app": self})
        try:
            self.httpd = _BoundedServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise ReviewError(
                f"cannot serve on 127.0.0.1:{port} ({exc.strerror}); pass --port 0 for a free one"
            ) from None
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open, token included."""
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ReviewServer:
        """Serve in a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="rlaif-review-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        """What the page shows: progress and the next item (the AI's choice only if configured)."""
        item = self.session.next_item()
        return {
            "reviewer": self.session.reviewer,
            "total": self.session.total,
            "done": self.session.done,
            "skipped": len(self.session.skipped),
            "remaining": len(self.session.pending()),
            "item": item.model_dump(mode="json") if item else None,
        }

    def act(self, action: str, body: dict[str, Any]) -> tuple[HTTPStatus, dict[str, Any]]:
        """Apply a page action (`decide`, `skip`, `undo`) and answer with the new state."""
        with self.lock:
            pending = {item.pair_id for item in self.session.pending()}
            if action == "undo":
                back = self.session.undo()
                message = "undone: that pair is shown again" if back else "nothing to undo"
                return HTTPStatus.OK, {"state": self.state(), "message": message}
            pair_id = body.get("pair_id")
            if not isinstance(pair_id, str):
                return HTTPStatus.BAD_REQUEST, {"error": "pair_id must be text", "state": self.state()}
            if pair_id not in pending:
                return HTTPStatus.CONFLICT, {
                    "error": "that pair is not pending any more",
                    "state": self.state(),
                }
            if action == "skip":
                self.session.skip(pair_id)
                return HTTPStatus.OK, {"state": self.state(), "message": "skipped for now"}
            try:
                answer = ReviewAnswer(
                    pair_id=pair_id, verdict=body.get("verdict"), note=str(body.get("note", ""))
                )
            except ValidationError:
                return HTTPStatus.BAD_REQUEST, {"error": "verdict must be first, second, tie or flag"}
            self.session.decide(answer)
            return HTTPStatus.OK, {"state": self.state(), "message": f"saved: {answer.verdict}"}


class _BoundedServer(ThreadingHTTPServer):
    """At most `MAX_CONNECTIONS` connections at once, so a flood cannot hold every thread. A connection
    that has not yet shown the token has `HEADER_SECONDS` to do it, and when every slot is taken the
    oldest such connection is closed to make room: local processes that keep half-sent requests open
    cannot lock the token holder out (an authenticated connection idles out after `IDLE_SECONDS`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.unproven: dict[socket.socket, float] = {}
        """Connections that have not passed the token check yet, with when they were accepted."""
        self.unproven_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._evict_oldest_unproven()
            if not self.slots.acquire(timeout=1.0):  # every slot holds a reviewer's connection
                self.shutdown_request(request)
                return
        with self.unproven_lock:
            self.unproven[request] = time.monotonic()
        super().process_request(request, client_address)

    def _evict_oldest_unproven(self) -> None:
        with self.unproven_lock:
            if not self.unproven:
                return
            oldest = min(self.unproven, key=self.unproven.__getitem__)
            del self.unproven[oldest]
        _cut(oldest)

    def proven(self, connection: socket.socket) -> None:
        with self.unproven_lock:
            self.unproven.pop(connection, None)

    def expire(self, connection: socket.socket) -> None:
        """Close `connection` if it has still not shown the token (its header deadline passed)."""
        with self.unproven_lock:
            if self.unproven.pop(connection, None) is None:
                return
        _cut(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a broken pipe, a reset, a cut connection) is no error of
        ours: nothing on the console. Anything else is one line, never a traceback over the review."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ValueError):  # ValueError: a write to a file closed under it
            return
        print(
            f"review server: {type(exc).__name__}: {exc} (a request from {client_address[0]})",
            file=sys.stderr,
        )

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.proven(request)  # done with: forget it
            self.slots.release()


def _cut(connection: socket.socket) -> None:
    """End a connection from another thread: its handler's read returns at once."""
    with contextlib.suppress(OSError):  # already gone
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    app: ReviewServer
    server_version = "rlaif-review"
    sys_version = ""
    timeout = IDLE_SECONDS  # a connection that sends nothing for this long is closed
    server: _BoundedServer

    def setup(self) -> None:
        super().setup()
        # Until the token is shown: a short deadline for the whole head, not per read (a byte every
        # 29 s would hold a slot for ever under a per-read timeout).
        self.connection.settimeout(HEADER_SECONDS)
        self._deadline = threading.Timer(HEADER_SECONDS, self.server.expire, args=(self.connection,))
        self._deadline.daemon = True
        self._deadline.start()

    def finish(self) -> None:
        self._deadline.cancel()
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the URL and progress, not an access log

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in {**HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: dict[str, Any]) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _refuse(self, why: str) -> None:
        self._json(HTTPStatus.FORBIDDEN, {"error": why})

    def _query_token(self) -> str:
        return (parse_qs(urlsplit(self.path).query).get("token") or [""])[0]

    def _authorized(self) -> bool:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except Exception:  # a malformed cookie header is simply no token
            cookie = SimpleCookie()
        offered = [
            self._query_token(),
            self.headers.get("X-Review-Token", ""),
            cookie[COOKIE].value if COOKIE in cookie else "",
        ]
        return any(t and hmac.compare_digest(t.encode(), self.app.token.encode()) for t in offered)

    def _gate(self) -> bool:
        host = self.headers.get("Host", "")
        if host not in (f"127.0.0.1:{self.app.port}", f"localhost:{self.app.port}"):
            self._refuse("unexpected Host header")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin not in (f"http://{host}",):
            self._refuse("cross-origin request")
            return False
        if not self._authorized():
            self._refuse("missing or wrong token: open the URL printed by `rlaif review serve`")
            return False
        self._deadline.cancel()
        self.server.proven(self.connection)
        self.connection.settimeout(IDLE_SECONDS)
        return True

    def do_GET(self) -> None:
        if not self._gate():
            return
        path = urlsplit(self.path).path
        if path == "/" and self._query_token():
            # Trade the token in the address for a cookie, so it does not linger in history.
            cookie = f"{COOKIE}={self.app.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
            return
        if path == "/api/state":
            with self.app.lock:
                self._json(HTTPStatus.OK, {"state": self.app.state()})
            return
        if path in ASSETS:
            name, content_type = ASSETS[path]
            body = resources.files("rlaif.review").joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, body, content_type)
            return
        self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {path}"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._gate():
            return
        path = urlsplit(self.path).path
        actions = {"/api/decide": "decide", "/api/skip": "skip", "/api/undo": "undo"}
        if path not in actions:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no action {path}"})
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "Content-Length must be a whole number"})
            return
        if length > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deeply to parse
            body = None
        if not isinstance(body, dict):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "send a JSON object"})
            return
        status, payload = self.app.act(actions[path], body)
        self._json(status, payload)
