"""The cost tiers (tests/support/tiers.py) on a throwaway test folder, run by pytest in a child process:
one cost marker each or the test fails in every tier, the shared server only in `integration`, the
budget check and the durations file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tiers import COST

ROOT = Path(__file__).resolve().parents[2]
TESTS = """
import pytest

@pytest.fixture
def vllm_server():
    return None

@pytest.mark.unit
def test_unit():
    pass

def test_unmarked():
    pass

@pytest.mark.unit
@pytest.mark.slow
def test_two():
    pass

@pytest.mark.unit
def test_unit_on_the_server(vllm_server):
    pass

def test_on_the_server(vllm_server):
    pass
"""


def _run(
    folder: Path, tier: str, budget: float, tests: str = TESTS
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    (folder / "test_sample.py").write_text(tests)
    (folder / "budgets.toml").write_text("[tiers]\n" + "".join(f"{t} = {budget}\n" for t in COST))
    (folder / "pytest.ini").write_text("[pytest]\ntier_budgets = budgets.toml\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.tiers", "-p", "no:cacheprovider",
         "--tier", tier, "-q", "-rA", str(folder)],
        capture_output=True, text=True, cwd=folder, timeout=120,
        env={"PYTHONPATH": str(ROOT), "RLAIF_DURATIONS": str(folder / "durations.json"),
             "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # no plugin but the tiers
    )  # fmt: skip
    outcomes = {}
    for line in done.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR") and "::" in rest:
            outcomes[rest.split("::")[1].split(" ")[0]] = word
    return done, outcomes


@pytest.mark.parametrize("tier", ["unit", "integration"])
def test_a_test_without_one_cost_marker_fails_in_every_tier(tmp_path: Path, tier: str) -> None:
    done, outcomes = _run(tmp_path, tier, budget=600)
    assert done.returncode == 1, done.stdout[-3000:]
    problems = {"test_unmarked": "no cost marker", "test_two": "marked unit and slow",
                "test_unit_on_the_server": "uses the shared server"}  # fmt: skip
    for name, problem in problems.items():
        assert outcomes[name] == "ERROR", outcomes
        assert problem in done.stdout
    selected = {"unit": "test_unit", "integration": "test_on_the_server"}  # by marker; by the fixture
    assert outcomes[selected[tier]] == "PASSED"
    assert set(outcomes) == {*problems, selected[tier]}, outcomes
    assert f"tier {tier}: " in done.stdout and "budget 600 s (budgets.toml)" in done.stdout
    assert "OVER BUDGET" not in done.stdout
    written = json.loads((tmp_path / "durations.json").read_text())
    assert written["tiers"][tier]["tests"] == 4 and written["tiers"][tier]["budget_s"] == 600
    assert set(written["tests"][tier]) == {f"test_sample.py::{name}" for name in outcomes}


def test_a_tier_past_its_budget_fails_and_says_both_times(tmp_path: Path) -> None:
    """Every test passes, but the tier took longer than its budget (0 s here): the run fails."""
    tests = "import pytest\n\n@pytest.mark.unit\ndef test_unit():\n    pass\n"
    done, outcomes = _run(tmp_path, "unit", budget=0, tests=tests)
    assert outcomes == {"test_unit": "PASSED"}
    assert done.returncode == 1, done.stdout[-3000:]
    assert "tier unit: " in done.stdout and "budget 0 s (budgets.toml): OVER BUDGET" in done.stdout


def test_lanes_put_the_shared_server_tests_on_one_worker_and_the_training_on_the_other(
    tmp_path: Path,
) -> None:
    """`-n 2 --dist loadgroup` with the tiers' scheduler: the integration tests that use the shared
    server (three modules, through the fixture or one that needs it) all run on one worker, so one server
    is started; every other integration test on the other worker, one after another."""
    fixture = (
        "import os, pytest\n\n@pytest.fixture(scope='session')\ndef vllm_server():\n"
        "    return os.environ['PYTEST_XDIST_WORKER']\n\n@pytest.fixture\ndef backend_args(vllm_server):\n"
        "    return vllm_server\n"
    )
    (tmp_path / "conftest.py").write_text(fixture)
    for m in range(6):
        uses = ("vllm_server", "backend_args", "tmp_path, vllm_server")[m] if m < 3 else ""
        body = "".join(
            f"@pytest.mark.integration\ndef test_{m}_{i}({uses}):\n    time.sleep(0.05)\n" for i in range(4)
        )
        (tmp_path / f"test_m{m}.py").write_text(f"import time\nimport pytest\n\n{body}")
    (tmp_path / "budgets.toml").write_text("[tiers]\n" + "".join(f"{t} = 600\n" for t in COST))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntier_budgets = budgets.toml\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.tiers", "-p", "xdist.plugin", "-p",
         "no:cacheprovider", "--tier", "integration", "-n", "2", "--dist", "loadgroup", "-v", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    where: dict[str, set[str]] = {}
    for line in done.stdout.splitlines():
        if "PASSED" in line and line.startswith("[gw"):
            worker, test = line.split("]")[0][1:], line.split("::")[1].strip()
            where.setdefault("server" if int(test.split("_")[1]) < 3 else "machine", set()).add(worker)
    assert len(where["server"]) == len(where["machine"]) == 1, where  # one server, one training lane
    assert where["server"] | where["machine"] == {"gw0", "gw1"}, where  # side by side
