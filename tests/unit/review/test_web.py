"""The web reviewer's HTTP surface without a browser: token, cookie, Host check, actions, headers.

The real-browser test (keyboard, rendering, escaping) is tests/integration/test_review_web.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rlaif.records import ReviewDecision
from rlaif.review.session import ReviewSession
from rlaif.review.web import COOKIE, ReviewServer
from rlaif.store import RunDir
from tests.support.review import make_pair, run_with_pairs, settings


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReviewServer, RunDir]]:
    pairs = [make_pair(i) for i in range(3)]
    with run_with_pairs(tmp_path, pairs) as run:
        session = ReviewSession(run, pairs, settings(), via="web")
        with ReviewServer(session) as server:
            yield server, run


def base(server: ReviewServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_every_path_needs_the_token(served: tuple[ReviewServer, RunDir]) -> None:
    server, _ = served
    with httpx.Client(base_url=base(server)) as client:
        for path in ("/", "/review.js", "/review.css", "/api/state", "/nowhere"):
            assert client.get(path).status_code == 403, path
            assert client.get(path, params={"token": "wrong"}).status_code == 403, path
        assert client.post("/api/decide", json={"pair_id": "x", "verdict": "first"}).status_code == 403
        assert client.get("/api/state", headers={"X-Review-Token": server.token}).status_code == 200
        other_host = {"X-Review-Token": server.token, "Host": f"evil.example:{server.port}"}
        assert client.get("/api/state", headers=other_host).status_code == 403


def test_token_in_the_address_becomes_a_cookie(served: tuple[ReviewServer, RunDir]) -> None:
    server, _ = served
    with httpx.Client(base_url=base(server)) as client:
        first = client.get("/", params={"token": server.token})
        assert first.status_code == 303 and first.headers["location"] == "/"
        set_cookie = first.headers["set-cookie"]
        assert (
            f"{COOKIE}={server.token}" in set_cookie
            and "HttpOnly" in set_cookie
            and "SameSite=Strict" in set_cookie
        )
        page = client.get("/")  # the client keeps the cookie
        assert page.status_code == 200 and '<script src="/review.js"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert client.get("/review.js").headers["content-type"].startswith("text/javascript")


def test_actions_store_decisions(served: tuple[ReviewServer, RunDir]) -> None:
    server, run = served
    headers = {"X-Review-Token": server.token}
    with httpx.Client(base_url=base(server), headers=headers) as client:
        state = client.get("/api/state").json()["state"]
        assert (state["total"], state["done"], state["item"]["ai_preferred"]) == (3, 0, None)
        pair_id = state["item"]["pair_id"]
        decided = client.post("/api/decide", json={"pair_id": pair_id, "verdict": "second", "note": "meh"})
        assert decided.status_code == 200 and decided.json()["state"]["done"] == 1
        assert client.post("/api/decide", json={"pair_id": pair_id, "verdict": "first"}).status_code == 409
        nxt = decided.json()["state"]["item"]["pair_id"]
        assert client.post("/api/decide", json={"pair_id": nxt, "verdict": "maybe"}).status_code == 400
        assert client.post("/api/skip", json={"pair_id": nxt}).json()["state"]["skipped"] == 1
        undone = client.post("/api/undo", json={}).json()
        assert undone["state"]["item"]["pair_id"] == pair_id and undone["state"]["done"] == 0
        form = client.post("/api/decide", content=b"pair_id=x", headers={"Content-Type": "text/plain"})
        assert form.status_code == 415
        cross = client.post("/api/undo", json={}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
    records = list(run.stage("reviews", ReviewDecision))
    assert [(r.note, r.withdrawn, r.via) for r in records] == [("meh", False, "web"), ("", True, "web")]


def _raw(server: ReviewServer, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def test_a_malformed_content_length_is_a_400_and_the_server_goes_on(
    served: tuple[ReviewServer, RunDir],
) -> None:
    server, _ = served
    for length in (b"abc", b"-5"):
        answer = _raw(server, b"POST /api/skip HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Review-Token: %s\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %s\r\n\r\n{}"
                      % (server.port, server.token.encode(), length))  # fmt: skip
        assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer[:40]
    with httpx.Client(base_url=base(server)) as client:
        assert client.get("/api/state", headers={"X-Review-Token": server.token}).status_code == 200


def test_idle_connections_are_closed_and_capped(
    served: tuple[ReviewServer, RunDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections that send nothing cannot hold the server: past the cap they are closed at once."""
    import socket

    from rlaif.review import web

    server, _ = served
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(web.MAX_CONNECTIONS + 5)]
    try:
        extra = idle[-1]
        extra.settimeout(web.HEADER_SECONDS + 5)
        assert extra.recv(1) == b""  # closed by the server, not left hanging
    finally:
        for sock in idle:
            sock.close()
    assert web._Handler.timeout == web.IDLE_SECONDS


def test_a_busy_port_is_one_line(served: tuple[ReviewServer, RunDir], tmp_path: Path) -> None:
    from rlaif.errors import ReviewError

    server, run = served
    session = ReviewSession(run, [make_pair(9)], settings(), via="web")
    with pytest.raises(ReviewError, match="cannot serve on 127.0.0.1:.*--port 0"):
        ReviewServer(session, port=server.port)


def test_a_flood_of_half_sent_requests_does_not_lock_the_reviewer_out(
    served: tuple[ReviewServer, RunDir],
) -> None:
    """Issue 31: 32 local connections holding half-sent requests took every slot; the token holder got
    closed connections. Now an unproven connection makes room for a new one, and has HEADER_SECONDS."""
    import socket
    import time

    from rlaif.review import web

    server, run = served
    flood = []
    for _ in range(web.MAX_CONNECTIONS * 2):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"POST /api/decide HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        flood.append(sock)
    try:
        started = time.monotonic()
        with httpx.Client(base_url=base(server), headers={"X-Review-Token": server.token}) as client:
            pair_id = client.get("/api/state").json()["state"]["item"]["pair_id"]
            decided = client.post("/api/decide", json={"pair_id": pair_id, "verdict": "first"})
        assert decided.status_code == 200 and time.monotonic() - started < web.HEADER_SECONDS
        assert [r.pair_id for r in run.stage("reviews", ReviewDecision)] == [pair_id]
        flood[-1].settimeout(web.HEADER_SECONDS + 5)
        assert flood[-1].recv(1) == b""  # the half-sent request's deadline passed: closed
    finally:
        for sock in flood:
            sock.close()


def test_a_deeply_nested_body_and_a_bad_pair_id_are_400_without_a_traceback(
    served: tuple[ReviewServer, RunDir], capfd: pytest.CaptureFixture[str]
) -> None:
    server, _ = served
    headers = {"X-Review-Token": server.token, "Content-Type": "application/json"}
    with httpx.Client(base_url=base(server), headers=headers) as client:
        deep = client.post("/api/decide", content=b"[" * 30_000 + b"]" * 30_000)
        assert deep.status_code == 400
        for body in (b'{"pair_id": ["x"], "verdict": "first"}', b'{"pair_id": {"a": 1}}', b"\xff\xfe"):
            assert client.post("/api/skip", content=body).status_code == 400, body
        assert client.get("/api/state").status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_hangs_up_mid_answer_leaves_no_traceback(
    served: tuple[ReviewServer, RunDir], capfd: pytest.CaptureFixture[str]
) -> None:
    """A broken pipe: the request is sent and the socket closed (reset) before the answer is written."""
    import socket
    import struct
    import time

    server, _ = served
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        sock.sendall(b"GET /review.js HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Review-Token: %s\r\n\r\n"
                     % (server.port, server.token.encode()))  # fmt: skip
        sock.close()
    time.sleep(0.5)
    with httpx.Client(base_url=base(server)) as client:
        assert client.get("/api/state", headers={"X-Review-Token": server.token}).status_code == 200
    assert "Traceback" not in capfd.readouterr().err
