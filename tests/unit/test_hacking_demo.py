"""examples/hacking_demo.py: its pairs reward length only, and the committed results back the docs' claims.

The demo itself takes ~20 minutes of PPO on CPU, so CI does not rerun it; the ensembles, the conservative
reward, the monitors and the early stop it uses are tested on real models elsewhere (tests/integration).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from datasets import load_from_disk

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "examples" / "results" / "hacking.json"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("hacking_demo", ROOT / "examples" / "hacking_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_sentence_is_the_short_side(demo):
    assert demo._first_sentence("Paris is the capital. It is large and old and busy.") == (
        "Paris is the capital."
    )
    # One long sentence: its first third of words.
    long = " ".join(f"w{i}" for i in range(30))
    assert demo._first_sentence(long) == " ".join(f"w{i}" for i in range(10))


def test_pairs_always_prefer_the_longer_answer(demo, tmp_path):
    answers = [
        "Short one. " + "More words follow here to make it long enough. " * 3,
        "Too short.",  # fewer than 12 words: no pair
        " ".join(f"word{i}" for i in range(20)),
    ]
    made = demo._length_pairs(["q1", "q2", "q3"], answers, tmp_path / "pairs")
    rows = list(load_from_disk(str(tmp_path / "pairs")))
    assert made == len(rows) == 2
    for row in rows:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert len(chosen.split()) > len(rejected.split())
        assert chosen.startswith(rejected.split()[0])


def test_committed_results_show_the_hack_and_the_guards(demo, tmp_path):
    results = json.loads(RESULTS.read_text())
    arms = results["arms"]
    assert set(arms) == set(demo.ARMS)
    threshold = results["length_drift_threshold"]
    base = results["base_length_words"]
    unguarded, conservative, stopped = arms["unguarded"], arms["conservative"], arms["early stop"]
    # Unguarded, the policy games length far past the alert, and the monitor said so.
    assert unguarded["length_last_3"] > base * (1 + 2 * threshold)
    assert unguarded["first_alert_step"] is not None and not unguarded["stopped_by_monitor"]
    # The early stop ends at its first alert, with length (and KL) below the unguarded run's.
    assert stopped["stopped_by_monitor"] and stopped["steps"] == stopped["first_alert_step"]
    assert max(stopped["length_words"]) < unguarded["length_last_3"] / 2
    assert stopped["kl"][-1] < unguarded["kl"][-1]
    # docs/guides/rewards.md says the conservative reward did not hold length down; the results must agree.
    assert conservative["length_last_3"] > base * (1 + 2 * threshold)
    assert all(std is not None and std > 0 for std in conservative["ensemble_std"])
    # The picture is drawn from these results.
    (tmp_path / "hacking.json").write_text(RESULTS.read_text())
    assert demo.main(["--replot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "hacking.png").stat().st_size > 10_000
