"""A fake round for the loop's tests: `run_pipeline` writes a model folder and a summary, and
`evaluate_compliance` reports the every-check pass rate (and KL, alerts) a test scripts per round."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rlaif.config import RunConfig, load_config
from rlaif.evaluate.compliance import ALL
from rlaif.evaluate.reports import (
    ComplianceReport,
    KLEstimate,
    LengthComparison,
    LengthStats,
    PassRate,
    PrincipleCompliance,
)
from rlaif.evaluate.stats import newcombe, wilson
from rlaif.train.reports import MonitorReadings

N = 100


def rate(passed: int, n: int = N) -> PassRate:
    return PassRate(passed=passed, n=n, value=passed / n, ci95=wilson(passed, n))


def compliance(
    base: int, candidate: int, *, kl: float = 0.1, alerts: tuple[str, ...] = (), path: str = "m"
) -> ComplianceReport:
    rows = []
    for pid in ("concise", ALL):
        before, after = rate(base), rate(candidate)
        rows.append(
            PrincipleCompliance(
                principle_id=pid, rules=pid, base=before, candidate=after,
                difference=after.value - before.value, difference_ci95=newcombe(after, before),  # type: ignore[operator]
            )
        )  # fmt: skip
    stats = LengthStats(n=N, tokens_mean=30.0, words_mean=20.0)
    return ComplianceReport(
        constitution="concise-plain", base="base", candidate=path, prompts_path="h.jsonl", prompts=N,
        prompts_seen_in_training=0, samples=1, temperature=0.8, max_tokens=32, engine="transformers",
        principles=rows, lengths=LengthComparison(base=stats, candidate=stats, drift_tokens=0.0),
        kl=KLEstimate(per_token=kl, per_answer=1.0, answers=N, tokens=N, temperature=0.8, estimator="test"),
        monitors=MonitorReadings(
            answers=N, length_mean=20.0, length_p95=30.0, refusal_rate=rate(0), repetition_rate=0.0,
            format_rate=rate(0), alerts=list(alerts),
        ),
    )  # fmt: skip


@dataclass
class FakeRounds:
    """Scripted rounds: `every[r]` is round r's held-out every-check passes out of 100 (base: 20)."""

    every: dict[int, int] = field(default_factory=lambda: {1: 40, 2: 60, 3: 70})
    kl: dict[int, float] = field(default_factory=dict)
    alerts: dict[int, tuple[str, ...]] = field(default_factory=dict)
    pipelines: list[RunConfig] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    fail_pipeline: Callable[[RunConfig], None] | None = None
    fail_evaluate: Callable[[int], None] | None = None
    status: str = "done"
    stages: dict[str, Any] = field(default_factory=dict)

    def kill_evaluating(self, number: int) -> None:
        """Ctrl-C (KeyboardInterrupt) while round `number` is being evaluated, as a kill there."""

        def killed(at: int) -> None:
            if at == number:
                raise KeyboardInterrupt

        self.fail_evaluate = killed

    def run_pipeline(self, config: RunConfig, *, quiet: bool = False, force: bool = False) -> Any:
        self.pipelines.append(config)
        if self.fail_pipeline is not None:
            self.fail_pipeline(config)
        root = Path(config.run_dir)
        model = root / "models" / "dpo"
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_text("{}")
        summary = {
            "trained": {"dpo": {"output_dir": str(model), "steps": 2}},
            "counts": {"pairs": 7},
            "stages": self.stages,
        }
        (root / "summary.json").write_text(json.dumps(summary))
        (root / "manifest.json").write_text(json.dumps({"status": self.status}))

        class Summary:
            def model_dump(self, mode: str = "json") -> dict[str, Any]:
                return summary

        return Summary()

    def evaluate_compliance(self, config: RunConfig, **kwargs: Any) -> ComplianceReport:
        number = int(Path(config.run_dir).name)
        self.evaluations.append({"round": number, **kwargs})
        if self.fail_evaluate is not None:
            self.fail_evaluate(number)
        report = compliance(
            20, self.every[number], kl=self.kl.get(number, 0.1), alerts=self.alerts.get(number, ()),
            path=kwargs["candidate"],
        )  # fmt: skip
        kwargs["json_path"].write_text(json.dumps({**report.model_dump(mode="json"), "answers": {}}))
        return report


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRounds:
    from rlaif.rounds import loop

    rounds = FakeRounds()
    monkeypatch.setattr(loop, "run_pipeline", rounds.run_pipeline)
    monkeypatch.setattr(loop, "evaluate_compliance", rounds.evaluate_compliance)
    return rounds


def write_prompts(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    return path


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., RunConfig]:
    """A config file with 10 training and 5 held-out prompts and an `iterate:` section (YAML text)."""
    write_prompts(tmp_path / "train.jsonl", [f"Training question number {i}?" for i in range(10)])
    write_prompts(tmp_path / "heldout.jsonl", [f"Held-out question number {i}?" for i in range(5)])
    (tmp_path / "base").mkdir(exist_ok=True)

    def make(iterate: str = "{rounds: 3, heldout: heldout.jsonl, prompts_per_round: 4}", extra: str = "",
             overrides: dict[str, Any] | None = None) -> RunConfig:  # fmt: skip
        path = tmp_path / "run.yaml"
        path.write_text(
            f"run_dir: {tmp_path / 'run'}\nconstitution: concise-plain\nprompts: {{path: train.jsonl}}\n"
            f"model: {{path: {tmp_path / 'base'}}}\niterate: {iterate}\n{extra}"
        )
        return load_config(path, overrides)

    return make
