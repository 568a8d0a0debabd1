"""The web reviewer in a real headless Chromium (Debian's, driven by selenium): keys, storage, escaping;
two reviewers at once, each with their own `rlaif review serve` and browser.

Needs /usr/bin/chromium and /usr/bin/chromedriver, which `make test` installs; the test downloads
nothing. A screenshot goes to the test's tmp folder and to /tmp/review_screenshot.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rlaif.records import Message, PreferencePair, ReviewDecision
from rlaif.review.session import ReviewSession, current_decisions
from rlaif.review.web import ReviewServer
from rlaif.store import RunDir
from tests.support.cli import run_cli
from tests.support.review import make_pair, run_with_pairs, settings

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1100",
]
SCRIPT = "<script>alert(1)</script> the script answer"
IMAGE = '<img src=x onerror="document.body.dataset.pwned=1;alert(2)"> the image answer'

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def chromium(profile: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium with its own profile folder, quit on the way out."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver: `make test` installs them")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must never fetch a driver or browser
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile", monkeypatch) as driver:
        yield driver


def review_pairs() -> list[PreferencePair]:
    hostile = make_pair(0, chosen=SCRIPT, rejected=IMAGE, principle="harm").model_copy(
        update={"prompt": (Message(role="user", content="Say <b>hello</b> & show me <script>x()</script>"),)}
    )
    return [hostile] + [make_pair(i, principle="honest") for i in range(1, 4)]


def test_review_in_a_real_browser(tmp_path: Path, browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    pairs = review_pairs()
    run_dir = tmp_path / "run"
    with run_with_pairs(run_dir, pairs) as run:
        session = ReviewSession(run, pairs, settings("browser"), via="web")
        with ReviewServer(session) as server:
            wait = WebDriverWait(browser, 10)

            def text(element_id: str) -> str:
                return str(browser.find_element(By.ID, element_id).text)

            def press(keys: str) -> None:
                ActionChains(browser).send_keys(keys).perform()

            def reviewed(count: int) -> None:
                wait.until(lambda d: text("progress-text").startswith(f"{count} of 4 reviewed"))

            browser.get(server.url)
            wait.until(lambda d: text("first") != "")
            assert browser.current_url.rstrip("/") == f"http://127.0.0.1:{server.port}"  # token left the URL

            # Model text is shown as text: the literal markup is visible and nothing was injected.
            answers = {text("first"), text("second")}
            assert answers == {SCRIPT, IMAGE}
            assert "Say <b>hello</b> & show me <script>x()</script>" in text("prompt")
            injected = browser.execute_script(
                "return document.querySelectorAll('#item script, #item img, #item b').length"
            )
            assert injected == 0
            assert browser.execute_script("return document.body.dataset.pwned === undefined")
            with pytest.raises(NoAlertPresentException):
                browser.switch_to.alert  # noqa: B018
            assert text("principles") == "Principle harm"
            assert not browser.find_element(By.ID, "ai").is_displayed()  # the AI's choice stays hidden
            shots = tmp_path / "review.png"
            browser.save_screenshot(str(shots))
            shutil.copyfile(shots, "/tmp/review_screenshot.png")

            first_shown = text("first")
            press("1")  # pair 0: the first answer is better
            reviewed(1)
            press("n")  # pair 1: a note, leave the box with Esc, then "second is better"
            press("looks fine, 2 is clearer")
            press(Keys.ESCAPE)
            press("2")
            reviewed(2)
            press("t")  # pair 2: tie ... then undo it and flag it instead
            reviewed(3)
            press("u")
            reviewed(2)
            press("f")
            reviewed(3)
            assert text("first") != "" and browser.find_element(By.ID, "item").is_displayed()

            # Without the token the server refuses.
            anonymous = httpx.get(f"http://127.0.0.1:{server.port}/api/state")
            assert anonymous.status_code == 403
            assert httpx.get(f"http://127.0.0.1:{server.port}/").status_code == 403

    records = [json.loads(line) for line in (run_dir / "reviews.jsonl").read_text().splitlines()]
    assert [(r["pair_id"], r["verdict"], r["withdrawn"]) for r in records][2:] == [
        (pairs[2].id, "tie", False),
        (pairs[2].id, "tie", True),
        (pairs[2].id, "flag", False),
    ]
    first = records[0]
    assert first["pair_id"] == pairs[0].id and first["reviewer"] == "browser" and first["via"] == "web"
    assert first["verdict"] == ("chosen" if first_shown == SCRIPT else "rejected")
    second = records[1]
    assert second["note"] == "looks fine, 2 is clearer"
    assert second["verdict"] == ("rejected" if second["shown_first"] == "chosen" else "chosen")
    with RunDir(run_dir) as reopened:  # resumable: a new session asks only for the last pair
        again = ReviewSession(reopened, pairs, settings("browser"), via="web")
        assert [i.pair_id for i in again.pending()] == [pairs[3].id]
    assert os.path.getsize("/tmp/review_screenshot.png") > 10_000


def serve(run_dir: Path, reviewer: str) -> subprocess.Popen[str]:
    """`rlaif review serve RUN_DIR --reviewer NAME` in its own process (`address` reads its URL)."""
    return subprocess.Popen(
        [sys.executable, "-m", "rlaif.cli", "review", "serve", str(run_dir), "--reviewer", reviewer],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def address(process: subprocess.Popen[str]) -> str:
    """The URL a review server printed (it holds the access token)."""
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith("http://127.0.0.1:"):
            return line.strip()
    raise AssertionError(f"review serve printed no address: {''.join(printed)}")


def test_two_reviewers_at_once_in_two_browsers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alice and Bob each run `rlaif review serve` on the same run and review in their own browser, turn
    about (their decisions land in one file from two processes). Each sees the pairs in an order of their
    own. While both servers still run, `rlaif review report` (run in this process) shows both and their
    agreement, and the run directory's own lock, which `rlaif run` and `rlaif export` take, is free."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    pairs = [make_pair(i, principle="honest") for i in range(4)]
    run_dir = tmp_path / "run"
    with run_with_pairs(run_dir, pairs) as run:
        run.save_manifest(config={"seed": 3, "review": {"sample": {"size": 4}}})
    servers = {name: serve(run_dir, name) for name in ("alice", "bob")}  # both start at once
    try:
        with contextlib.ExitStack() as stack:
            browsers = {
                name: stack.enter_context(chromium(tmp_path / f"profile-{name}", monkeypatch))
                for name in servers
            }
            for name, driver in browsers.items():
                driver.get(address(servers[name]))
            seen: dict[str, list[str]] = {name: [] for name in servers}

            def decide(name: str, count: int) -> None:
                driver = browsers[name]

                def text(element_id: str) -> str:
                    return str(driver.find_element(By.ID, element_id).text)

                WebDriverWait(driver, 10).until(lambda d: text("progress-text").startswith(f"{count} of 4"))
                assert text("reviewer") == f"reviewer: {name}"
                prompt = text("prompt")
                seen[name].append(prompt)
                # Both pick the good answer, except that Bob calls question 2 a tie.
                key = (
                    "t"
                    if name == "bob" and "question 2?" in prompt
                    else "1"
                    if "good" in text("first")
                    else "2"
                )
                ActionChains(driver).send_keys(key).perform()
                WebDriverWait(driver, 10).until(
                    lambda d: text("progress-text").startswith(f"{count + 1} of 4")
                )

            for count in range(4):
                decide("alice", count)
                decide("bob", count)
            assert sorted(seen["alice"]) == sorted(seen["bob"]) and seen["alice"] != seen["bob"]

            with RunDir(run_dir):  # what `rlaif run` / `rlaif export` take: nobody holds it
                pass
            monkeypatch.setenv("COLUMNS", "200")
            report = run_cli(capsys, monkeypatch)("review", "report", str(run_dir))
            assert report.returncode == 0, report.stdout + report.stderr
            assert "Cohen: alice | bob" in report.stdout
            assert "alice (4)" in report.stdout and "bob (4)" in report.stdout
            assert all(process.poll() is None for process in servers.values())  # still serving
    finally:
        for process in servers.values():
            process.send_signal(signal.SIGINT)
        outputs = {name: process.communicate(timeout=30)[0] for name, process in servers.items()}
    for name, process in servers.items():
        assert process.returncode == 0, outputs[name]
        assert f"stopped: 4 of 4 reviewed by {name}" in outputs[name]
    written = json.loads((run_dir / "review_report.json").read_text())
    cohen = written["between_reviewers"]["cohen"]["alice | bob"]
    assert (cohen["pairs"], cohen["agree"], cohen["decisive"], cohen["decisive_agree"], cohen["ties"]) == (
        4,
        3,
        3,
        3,
        1,
    )
    assert cohen["raw_agreement"] == 0.75 and cohen["decisive_agreement"] == 1.0
    assert written["ai_vs_human"]["by_reviewer"]["alice"]["accuracy"] == 1.0
    with RunDir(run_dir, lock=False) as reopened:
        standing = current_decisions(reopened.stage("reviews", ReviewDecision))
    assert {pid: set(by) for pid, by in standing.items()} == {p.id: {"alice", "bob"} for p in pairs}
