"""Tests in tiers by cost, a pytest plugin loaded by tests/conftest.py.

Every test carries exactly one cost marker:

- `unit`: no real server, no training (fakes and stub HTTP servers); runs in parallel (pytest-xdist).
- `integration`: the test session's one shared vLLM server (`vllm_server`), short training.
- `slow`: its own servers, Ray, kill points, long runs.

A test gets its marker explicitly, or by where it is and what it uses: one that asks for `vllm_server` is
`integration`; one under tests/unit is `unit`; one under tests/integration or tests/e2e is `integration`.
A test with none or with two is failed in every tier (it would otherwise run in none or twice), and so is a
`unit` or `slow` test that asks for the shared server (each tier is its own session: it would start a
second one). `chaos` and `e2e` say what a test is about, beside its cost marker.

Lanes: the slow tier runs on two pytest-xdist workers, `-n 2 --dist loadgroup` (the integration tier can
too, `pytest --tier integration -n 2 --dist loadgroup`; `make test` keeps it on one worker until that
run's whole-tier time and memory are measured), with
this plugin's own scheduler (`pytest_xdist_make_scheduler`: xdist's own `xdist_group` grouping does
nothing under pytest 9, which no longer reads the `_nodeid` xdist rewrites, so every test was its own
unit). The tests of a lane all run on one worker, one after another; a test of no lane is a unit alone:

- `server`: every test that uses the shared vLLM server, so that only that worker starts it and the
  tier has one server (it is started on first use);
- `machine`: in the integration tier, every other test: they train, and side by side they do not fit.
  When two workers trained beside two servers, one worker grew to 8.4 GB and the kernel's OOM killer
  ended it, and PPO's module fixture ran past its 300 s. One training lane beside the server lane
  fits: a training test takes one torch thread (tests/support/threads.py), and a server test mostly
  waits on the server;
- `registry`: a test that mostly waits on a package registry (resolving, downloading, installing) and
  hardly uses the CPU; those run one after another beside the rest of the slow tier, whose tests are
  units alone (each starts and ends its own servers or processes).

The workers write each test's lane to a file the controller's scheduler reads (`LANES_FILE`): the
controller sees node ids only.

`pytest --tier NAME` runs one tier (`-m NAME`) and, at its end, compares the tier's wall time with its
budget in tests/budgets.toml, printing both; passing the budget fails the run. With RLAIF_DURATIONS=FILE
the tier's wall time and each test's seconds (setup + call + teardown) are written into FILE
(tests/durations.json is the committed one).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

COST = ("unit", "integration", "slow")
SHARED_SERVER = "vllm_server"
TESTS = Path(__file__).resolve().parents[1]
BUDGETS = TESTS / "budgets.toml"
FOLDERS = {TESTS / "unit": "unit", TESTS / "integration": "integration", TESTS / "e2e": "integration"}
SERVER_STARTUP_S = 600
"""What the first test to use the shared server may spend starting it (its `startup_timeout`)."""


def budgets(config: pytest.Config) -> tuple[Path, dict[str, float]]:
    """The budgets file and each tier's budget in seconds of wall time."""
    own = config.getini("tier_budgets")
    path = config.rootpath / own if own else BUDGETS
    return path, {name: float(s) for name, s in tomllib.loads(path.read_text())["tiers"].items()}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier", choices=COST, default=None,
        help="run one cost tier (as -m TIER); fail when its wall time passes its budget (tests/budgets.toml)",
    )  # fmt: skip
    parser.addini("tier_budgets", "TOML file of the tiers' budgets (default tests/budgets.toml)", default="")


def pytest_configure(config: pytest.Config) -> None:
    for name, what in (
        ("unit", "no real server and no training; runs in parallel"),
        ("integration", "the session's shared vLLM server (vllm_server) or short training"),
        ("slow", "its own servers, Ray, kill points or long runs"),
    ):
        config.addinivalue_line("markers", f"{name}: cost tier: {what}")
    config.addinivalue_line(
        "markers", "registry: mostly waits on a package registry; runs beside the CPU-bound tests (-n 2)"
    )
    tier = config.getoption("--tier")
    if tier:
        own = config.option.markexpr
        config.option.markexpr = f"({own}) and {tier}" if own else tier
    config.stash[_STARTED] = time.monotonic()


_STARTED = pytest.StashKey[float]()
_PROBLEM = pytest.StashKey[str]()
_SECONDS = pytest.StashKey[dict[str, float]]()


def cost_of(item: pytest.Item) -> tuple[str | None, str | None]:
    """The item's cost marker and, where it has none, two, or one that does not fit, what is wrong."""
    marked = sorted({m.name for m in item.iter_markers() if m.name in COST}, key=COST.index)
    shared = SHARED_SERVER in getattr(item, "fixturenames", ())
    if len(marked) > 1:
        return None, f"marked {' and '.join(marked)}: exactly one cost marker ({', '.join(COST)})"
    if marked:
        if shared and marked[0] != "integration":
            return None, f"marked {marked[0]} but uses the shared server {SHARED_SERVER}: mark it integration"
        return marked[0], None
    if shared:
        return "integration", None
    folders = set(Path(str(item.path)).parents)
    for folder, tier in FOLDERS.items():
        if folder in folders:
            return tier, None
    return None, f"no cost marker: mark it one of {', '.join(COST)} (see tests/support/tiers.py)"


def lane_of(item: pytest.Item) -> str | None:
    """The lane a test runs in under `--dist loadgroup` (see the module's docstring), or None: it is a
    unit of work alone."""
    if item.get_closest_marker("registry"):
        return "registry"
    if SHARED_SERVER in getattr(item, "fixturenames", ()):
        return "server"
    if item.get_closest_marker("integration"):
        return "machine"
    return None


LANES_FILE = "rlaif_lanes"
"""The `workerinput` key of the file where the workers write each test's lane for the scheduler."""


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """The controller hands each worker the file to write the lanes to (all write the same map)."""
    config = node.config
    if _LANES not in config.stash:
        config.stash[_LANES] = Path(tempfile.mkdtemp(prefix="rlaif-lanes-")) / "lanes.json"
    node.workerinput[LANES_FILE] = str(config.stash[_LANES])


_LANES = pytest.StashKey[Path]()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadgroup`: every test of a lane one unit of work, any other test a unit alone."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):  # type: ignore[misc]
        lanes: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.lanes is None:  # read when the workers have collected (scheduling starts after)
                path = config.stash.get(_LANES, None)
                self.lanes = json.loads(path.read_text()) if path and path.exists() else {}
            lane = self.lanes.get(nodeid)
            return f"lane:{lane}" if lane else nodeid

    return LaneScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its cost marker before `-m` selects; one that has no single cost is given all
    three, so that every tier selects it and fails it at setup with what is wrong."""
    for item in items:
        tier, problem = cost_of(item)
        if problem:
            item.stash[_PROBLEM] = problem
            for name in COST:
                item.add_marker(name)
        elif not any(m.name == tier for m in item.iter_markers()):
            item.add_marker(tier)  # type: ignore[arg-type]
    where = getattr(config, "workerinput", {}).get(LANES_FILE)
    if where:  # one map of every collected test's lane; each worker writes the same, whole, atomically
        lanes = {item.nodeid: lane for item in items if (lane := lane_of(item))}
        tmp = Path(f"{where}.{os.getpid()}")
        tmp.write_text(json.dumps(lanes))
        os.replace(tmp, where)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The first selected test to use the shared server also pays its start-up: its timeout grows by
    the server's `startup_timeout` (no other test's timeout needs to cover it)."""
    if not session.config.pluginmanager.hasplugin("timeout"):
        return
    timeout = session.config.getini("timeout")
    for item in session.items:
        if SHARED_SERVER in getattr(item, "fixturenames", ()):
            own = item.get_closest_marker("timeout")
            base = float(own.args[0]) if own and own.args else float(timeout or 0)
            if base:
                item.add_marker(pytest.mark.timeout(base + SERVER_STARTUP_S), append=False)
            break


def pytest_runtest_setup(item: pytest.Item) -> None:
    if problem := item.stash.get(_PROBLEM, None):
        pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum each test's setup, call and teardown (in the controller too, under xdist)."""
    seconds = _seconds_store.setdefault(report.nodeid, 0.0)
    _seconds_store[report.nodeid] = seconds + report.duration


_seconds_store: dict[str, float] = {}


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if lanes := config.stash.get(_LANES, None):
        shutil.rmtree(lanes.parent, ignore_errors=True)
    tier = config.getoption("--tier")
    if not tier or not _controller(config) or config.option.collectonly:
        return
    wall = time.monotonic() - config.stash[_STARTED]
    path, tiers = budgets(config)
    budget = tiers[tier]
    over = wall > budget
    config.stash[_VERDICT] = (
        f"tier {tier}: {wall:.0f} s of wall time, budget {budget:.0f} s ({path.name})"
        + (": OVER BUDGET" if over else "")
    )
    if over and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if path := os.environ.get("RLAIF_DURATIONS"):
        _write_durations(Path(path), tier, wall, budget, session)


_VERDICT = pytest.StashKey[str]()


def _write_durations(path: Path, tier: str, wall: float, budget: float, session: pytest.Session) -> None:
    """Merge this tier's wall time and per-test seconds into `path`, other tiers kept."""
    data = json.loads(path.read_text()) if path.exists() else {}
    seconds = {nodeid: round(s, 2) for nodeid, s in sorted(_seconds_store.items())}
    data.setdefault("tiers", {})[tier] = {
        "wall_s": round(wall, 1),
        "budget_s": budget,
        "tests": len(seconds),
        "failed": session.testsfailed,
        "test_seconds_sum": round(sum(seconds.values()), 1),
        "workers": getattr(session.config.option, "numprocesses", None) or 0,
    }
    data["tiers"] = {name: data["tiers"][name] for name in COST if name in data["tiers"]}
    data.setdefault("tests", {})[tier] = seconds
    data["tests"] = {name: data["tests"][name] for name in COST if name in data["tests"]}
    path.write_text(json.dumps(data, indent=1) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if verdict := config.stash.get(_VERDICT, None):
        terminalreporter.write_sep("=", verdict, red="OVER" in verdict, green="OVER" not in verdict)
