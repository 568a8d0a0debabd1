"""The reward-hacking monitors: each measure on hand-made answers, thresholds, probes, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.config import MonitorsConfig, load_config
from rlaif.errors import ConfigError
from rlaif.train.monitors import Monitor, flat, load_probes, readings

QUIET = MonitorsConfig(
    length_drift=None, refusal_rate=None, repetition_rate=None, sycophancy_rate=None, format_rate=None
)


def test_readings_on_hand_made_answers() -> None:
    prompts = ["Say hi.", "List three fruits.", "Name a colour.", "Tell me a story."]
    answers = [
        "I can't help with that.",
        "- apple\n- pear\n- plum",  # asked for a list: not format gaming
        "# Colour\n\n- red",  # a header nobody asked for
        "again and again and again and again and again and again",
    ]
    found = readings(prompts, answers, QUIET, reference_length=4.0)
    assert found.answers == 4
    assert found.length_mean == pytest.approx((5 + 6 + 4 + 11) / 4)
    assert found.length_drift == pytest.approx(found.length_mean / 4.0 - 1)
    assert found.refusal_rate.value == 0.25 and found.refusal_rate.n == 4
    assert found.format_rate.value == pytest.approx(1 / 3) and found.format_rate.n == 3
    assert found.repetition_rate is not None and found.repetition_rate > 0.1
    assert found.sycophancy_rate is None and found.alerts == []


def test_undefined_rates_are_none_never_zero() -> None:
    found = readings(["List them."], ["- a"], QUIET)
    assert found.format_rate.value is None and found.format_rate.n == 0
    assert found.length_drift is None  # no reference
    empty = readings([], [], QUIET)
    assert empty.length_mean is None and empty.refusal_rate.value is None and empty.repetition_rate is None


def test_sycophancy_counts_agreement_with_the_false_claim() -> None:
    probes = ["Yes, that's right!", "No, that is a myth.", "You're absolutely right.", "Actually, it is not."]
    found = readings([], [], QUIET, probe_answers=probes)
    assert found.sycophancy_rate is not None and found.sycophancy_rate.value == 0.5


def test_kl_per_tag_leaves_untagged_prompts_out() -> None:
    found = readings(["a", "b", "c"], ["x", "y", "z"], QUIET.model_copy(update={"kl_domain": 1.5}),
                     kl_rows=[1.0, 3.0, 9.0], tags=["math", "math", None])  # fmt: skip
    assert found.kl_by_tag == {"math": 2.0}
    assert found.alerts == ["kl_domain 2.00 nats on prompts tagged 'math', past 1.5"]
    assert flat(found)["monitor/kl/math"] == 2.0


def test_each_threshold_alerts_once_past_it() -> None:
    config = MonitorsConfig(length_drift=0.5, refusal_rate=0.3, repetition_rate=0.2, format_rate=0.5)
    found = readings(["q"] * 2, ["I cannot do that.", "no no no no no no no no no no"], config,
                     reference_length=2.0)  # fmt: skip
    names = sorted(line.split()[0] for line in found.alerts)
    assert names == ["length_drift", "refusal_rate", "repetition_rate"]
    assert all("\n" not in line for line in found.alerts)


def test_monitor_measures_drift_from_its_first_step_and_stops_when_asked() -> None:
    lines: list[str] = []
    config = QUIET.model_copy(update={"length_drift": 0.5, "stop_on_alert": True})
    monitor = Monitor(config, echo=lines.append)
    assert monitor.observe(1, ["q"], ["two words"])["monitor/length_drift"] is None
    assert monitor.observe(2, ["q"], ["now three words"])["monitor/length_drift"] == pytest.approx(0.5)
    assert not monitor.stop
    # A one-answer start is noisy: said once, at the start, and not an alert (nothing stopped).
    assert len(lines) == 1 and "measured from step 1's 1 answers" in lines[0] and "may be false" in lines[0]
    monitor.observe(3, ["q"], ["and now it has grown to eight words"])
    assert monitor.stop and len(lines) == 2
    assert lines[1].startswith("warning: step 3: monitor length_drift +300%")


def test_a_steady_start_or_no_drift_threshold_gets_no_noise_note() -> None:
    lines: list[str] = []
    Monitor(QUIET.model_copy(update={"length_drift": 0.5}), echo=lines.append).observe(
        1, ["q"] * 16, ["two words"] * 16
    )
    Monitor(QUIET.model_copy(update={"length_drift": None}), echo=lines.append).observe(1, ["q"], ["a b"])
    assert lines == []


def test_monitor_probes_at_the_first_step_and_every_n() -> None:
    asked: list[int] = []

    def answer(prompts: list[str]) -> list[str]:
        asked.append(len(prompts))
        return ["Yes, you're right."] * len(prompts)

    monitor = Monitor(QUIET.model_copy(update={"probe_every": 2}), answer=answer)
    values = [monitor.observe(step, ["q"], ["a"]) for step in (1, 2, 3)]
    assert asked == [20, 20] and values[0]["monitor/sycophancy_rate"] == 1.0
    assert "monitor/sycophancy_rate" not in values[2]
    monitor.resume([{"monitor/length_mean": 7.0}])
    assert monitor.start_length == 7.0


def test_the_shipped_probes_parse() -> None:
    probes = load_probes()
    assert len(probes) == 20 and all(p.strip() for p in probes)


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json\n", ":1: not valid JSON"), ('{"text": "x"}\n', ':1: needs a non-empty "prompt"'),
     ("\n\n", "has no probes")],
)  # fmt: skip
def test_a_bad_probe_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "probes.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as error:
        load_probes(path)
    assert str(error.value).startswith("train.monitors.probes:") and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="train.monitors.probes: .*cannot read"):
        load_probes(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("monitors", "key"),
    [({"refusal_patterns": ["(unclosed"]}, "train.monitors.refusal_patterns"),
     ({"refusal_rate": 1.5}, "train.monitors.refusal_rate"),
     ({"length_drift": 0}, "train.monitors.length_drift"),
     ({"probe_every": -1}, "train.monitors.probe_every"),
     ({"refusal_treshold": 0.2}, "train.monitors.refusal_treshold")],
)  # fmt: skip
def test_bad_monitor_settings_name_the_key(tmp_path: Path, monitors: dict[str, object], key: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"prompts": {"path": "p.jsonl"}, "train": {"monitors": monitors}}))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path)
