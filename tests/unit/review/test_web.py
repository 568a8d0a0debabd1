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
