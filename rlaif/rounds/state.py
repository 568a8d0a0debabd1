"""What a run directory of `rlaif iterate` remembers: the config it was started with
(`iterate.json`, its fingerprint at the top) and each finished round (`rounds/R/round.json`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.config import RunConfig
from rlaif.errors import ConfigError
from rlaif.rounds.reports import RoundReport
from rlaif.store import write_atomic

__all__ = ["check_fingerprint", "finished_round", "fingerprint", "round_folder", "save_round"]

STATE = "iterate.json"
ROUND = "round.json"
_MAY_CHANGE = ("iterate.rounds",)
"""Settings a rerun may change: more rounds continue the loop where it stopped."""


def _dump(config: RunConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def fingerprint(config: RunConfig) -> str:
    """Hash of the whole config (its canonical JSON), less the settings a rerun may change."""
    flat = {k: v for k, v in _flatten(_dump(config)).items() if k not in _MAY_CHANGE}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def check_fingerprint(config: RunConfig, root: Path) -> None:
    """Record the config at the first run; on a rerun, refuse a changed one in one line naming what
    changed and how to start a new run."""
    path = root / STATE
    mine = {"fingerprint": fingerprint(config), "config": _dump(config)}
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(mine, indent=2) + "\n")
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        before, fp = stored["config"], stored["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{path} is not a file `rlaif iterate` wrote; delete it or set run_dir to a new folder"
        ) from None
    if fp == mine["fingerprint"]:
        write_atomic(path, json.dumps(mine, indent=2) + "\n")  # `iterate.rounds` may have changed
        return
    old, new = _flatten(before), _flatten(mine["config"])
    changed = [
        k for k in sorted(old.keys() | new.keys()) if k not in _MAY_CHANGE and old.get(k) != new.get(k)
    ]
    shown = ", ".join(f"{k} ({_short(old.get(k))} -> {_short(new.get(k))})" for k in changed[:4])
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    raise ConfigError(
        f"{root} holds rounds of another config: {shown or 'the fingerprint'}{more} changed since its first "
        f"round; rerun with the config it started with, or start a new run with another run_dir "
        f"(e.g. --set run_dir={root}-2)"
    )


def round_folder(root: Path, number: int) -> Path:
    return root / "rounds" / str(number)


def finished_round(root: Path, number: int) -> RoundReport | None:
    """The round's report when it finished (`round.json`), else None (it runs, or resumes)."""
    path = round_folder(root, number) / ROUND
    try:
        return RoundReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, ValueError):
        return None  # torn or from an older rlaif: the round is redone from its (resumable) stage files


def save_round(root: Path, report: RoundReport) -> None:
    """Mark the round finished, atomically: a kill before this line leaves it to resume."""
    write_atomic(round_folder(root, report.round) / ROUND, report.model_dump_json(indent=2) + "\n")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
