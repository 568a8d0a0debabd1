"""Training curves as one PNG: the panels whose keys a run's log history holds, against the step.

Every trainer logs different keys (TRL's DPO `rewards/margins`, the reward model's `accuracy`, RLOO's
`reward` and `kl`, our PPO's `response_length`, the hacking monitors' `monitor/*`), so the figure is
built from `PANELS` by what is present: a run draws only its own curves, and a key no panel names is
left out rather than guessed at. matplotlib is imported only when a plot is drawn (Agg: no display).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PANELS", "curve_series", "plot_curves", "pyplot", "save_png"]

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss", "eval_loss")),
    ("rewards (chosen, rejected)", ("rewards/chosen", "rewards/rejected", "eval_rewards/chosen",
                                    "eval_rewards/rejected")),
    ("reward margin", ("rewards/margins", "eval_rewards/margins", "margin", "eval_margin")),
    ("pairwise accuracy", ("rewards/accuracies", "eval_rewards/accuracies", "accuracy", "eval_accuracy")),
    ("reward", ("reward",)),
    ("KL to the reference", ("kl",)),
    ("completion length (tokens)", ("completions/mean_length", "response_length")),
    ("PPO losses", ("policy_loss", "value_loss")),
    ("reward-model ensemble spread", ("reward/ensemble_std",)),
)  # fmt: skip
"""(panel title, the keys it draws); the reward heads (`reward/head/*`, one panel) and the monitors'
`monitor/*` keys (a panel each) come after these."""


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path, *, dpi: int) -> Path:
    """Write `fig` to `path` (making its folder) and close it: an open figure is memory kept until exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def _step(entry: Mapping[str, Any], index: int) -> float:
    step = entry.get("step")
    return float(step) if isinstance(step, int | float) else float(index + 1)


def curve_series(
    history: Sequence[Mapping[str, Any]],
) -> list[tuple[str, dict[str, list[tuple[float, float]]]]]:
    """The panels to draw: (title, key -> [(step, value)]) for each panel with at least one finite value.

    The x value is the entry's `step` (TRL's and our PPO's), else its position from 1.
    """
    monitors = sorted({k for h in history for k in h if k.startswith("monitor/") and k != "monitor/alerts"})
    heads = tuple(sorted({k for h in history for k in h if k.startswith("reward/head/")}))
    panels = [*PANELS, *([("reward heads", heads)] if heads else []),
              *((key.removeprefix("monitor/"), (key,)) for key in monitors)]  # fmt: skip
    found = []
    for title, keys in panels:
        series = {}
        for key in keys:
            points = [
                (_step(h, i), float(h[key]))
                for i, h in enumerate(history)
                if isinstance(h.get(key), int | float) and math.isfinite(h[key])
            ]
            if points:
                series[key] = points
        if series:
            found.append((title, series))
    return found


def plot_curves(history: Sequence[Mapping[str, Any]], path: Path, *, title: str = "") -> Path | None:
    """Draw `curve_series(history)` to `path` (PNG), three panels a row; None (nothing written) if empty."""
    panels = curve_series(history)
    if not panels:
        return None
    plt = pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for axis, (name, series) in zip(axes.flat, panels, strict=False):
        for key, points in series.items():
            # One point is no line: mark every point so a two-step run still shows its values.
            axis.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=key)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
        if len(series) > 1 or next(iter(series)) != name:
            axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path, dpi=90)
