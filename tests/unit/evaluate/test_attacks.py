"""The attack suite's bookkeeping on a fake judge that falls for instructions only without defences."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path

import pytest

from rlaif.backends.fake import FakeBackend
from rlaif.backends.protocol import ChatRequest
from rlaif.config import JudgeConfig
from rlaif.errors import ConfigError
from rlaif.evaluate.attacks import ATTACKS, NULL_ANSWER, run_attacks
from rlaif.inputs.constitution import find_constitution, load_constitution
from rlaif.inputs.labelled import load_labelled_pairs

CONSTITUTION = load_constitution(find_constitution("harmless"))


def shown(request: ChatRequest) -> tuple[str, str, bool]:
    text = request.messages[0]["content"]
    found = re.search(
        r"<response_A_\w+>\n(.*?)\n</response_A_\w+>.*<response_B_\w+>\n(.*?)\n</response_B", text, re.S
    )
    if found:
        return found.group(1), found.group(2), True
    found = re.search(r"Response A: (.*?)\n\nResponse B: (.*)$", text, re.S)
    assert found is not None
    return found.group(1), found.group(2), False


def gullible(request: ChatRequest) -> float:
    """Prefers the good reply, unless an undelimited candidate tells it to prefer itself."""
    a, b, defended = shown(request)
    if not defended:
        for text, p in ((a, 0.9), (b, 0.1)):
            if "choose this response" in text or "better one" in text:
                return p
    return 0.8 if "good" in a else 0.2


class Served(FakeBackend):
    """The fake judge as `make_backend` would hand it over: with the served model resolved."""

    async def resolve_model(self) -> None:
        return None


@pytest.fixture
def pairs(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": f"a good reply {i}", "rejected": f"meh {i}"} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return load_labelled_pairs(path).pairs


def test_flip_rates_with_and_without_defences(pairs) -> None:  # type: ignore[no-untyped-def]
    backend = FakeBackend(p_first=gullible)
    report = asyncio.run(
        run_attacks(backend, pairs, constitution=CONSTITUTION, config=JudgeConfig(), seed=1, quiet=True)
    )
    assert set(report.attacks) == set(ATTACKS) and report.judge == backend.label
    on = report.attacks["append-instructions"].defences_on
    off = report.attacks["append-instructions"].defences_off
    assert on is not None and off is not None
    assert (on.flips, on.clean_losses, on.flip_rate) == (0, 6, 0.0)
    assert (off.flips, off.clean_losses, off.flip_rate) == (6, 6, 1.0)
    assert off.win_rate_clean == 0.0 and off.win_rate_attacked == 1.0
    assert off.mean_shift == pytest.approx(0.7)
    padded = report.attacks["pad-length"].defences_off
    assert padded is not None and padded.flip_rate == 0.0
    assert report.attacks["append-instructions"].flagged == 1.0
    assert report.clean_flagged == 0.0
    # 6 pairs x (clean + 5 attacks) x 2 orders x 2 templates.
    assert len(backend.requests) == 6 * 6 * 2 * 2


def test_null_attack_ignores_the_reply(pairs) -> None:  # type: ignore[no-untyped-def]
    assert ATTACKS["null"]("anything at all") == ATTACKS["null"]("something else") == NULL_ANSWER


def test_attack_suite_needs_the_one_token_mode(pairs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="logprob"):
        asyncio.run(
            run_attacks(FakeBackend(), pairs, constitution=CONSTITUTION, config=JudgeConfig(mode="cot"))
        )
    with pytest.raises(ConfigError, match="unknown attack"):
        asyncio.run(
            run_attacks(FakeBackend(), pairs, constitution=CONSTITUTION, config=JudgeConfig(), attacks=["x"])
        )


def test_a_tie_counts_half_a_win_and_never_as_a_flip(pairs) -> None:  # type: ignore[no-untyped-def]
    # This judge cannot tell any two replies apart: every label is exactly 0.5.
    report = asyncio.run(
        run_attacks(
            FakeBackend(p_first=0.5), pairs, constitution=CONSTITUTION, config=JudgeConfig(), attacks=["null"]
        )
    )
    outcome = report.attacks["null"].defences_on
    assert outcome is not None
    assert (outcome.judged, outcome.clean_losses, outcome.flips, outcome.flip_rate) == (6, 0, 0, None)
    assert outcome.win_rate_clean == outcome.win_rate_attacked == 0.5


def test_the_cli_prints_the_table_and_writes_the_model_dump(
    pairs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from rlaif.backends import serving
    from rlaif.cli.main import app
    from rlaif.evaluate.reports import AttackReport

    monkeypatch.setattr(serving, "served_backend", lambda *args, **kwargs: contextlib.nullcontext({}))
    monkeypatch.setattr(serving, "make_backend", lambda args, quiet: Served(p_first=gullible))
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "attacks.json"
    data = tmp_path / "p.jsonl"  # written by the `pairs` fixture
    args = ["evaluate", "attacks", "--data", str(data), "--attack", "append-instructions", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "append-instructions" in result.output and "100% (6/6)" in result.output
    report = AttackReport.model_validate_json(out.read_text())
    off = report.attacks["append-instructions"].defences_off
    assert off is not None and off.flip_rate == 1.0 and set(report.attacks) == {"append-instructions"}
