"""The rounds' curves: held-out pass rate per checked principle, KL from the base and answer length."""

from __future__ import annotations

from pathlib import Path

from rlaif.rounds.reports import IterateReport

__all__ = ["plot_rounds"]


def plot_rounds(report: IterateReport, path: Path) -> Path:
    """Three panels over the rounds (round 0: the base): pass rates with 95% intervals, KL, words."""
    from rlaif.train.curves import pyplot, save_png

    plt = pyplot()
    done = [r for r in report.rounds if r.status == "done"]
    xs = [0, *(r.round for r in done)]
    fig, (rates, kl, words) = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    for pid in report.base_rates:
        series = [report.base_rates[pid], *(r.pass_rates.get(pid) for r in done)]
        values = [100 * (s.value or 0.0) if s is not None else float("nan") for s in series]
        low = [100 * s.ci95[0] if s is not None and s.ci95 else float("nan") for s in series]
        high = [100 * s.ci95[1] if s is not None and s.ci95 else float("nan") for s in series]
        every = pid == "every check"
        line = rates.plot(xs, values, marker="o", label=pid, linewidth=2.5 if every else 1.2,
                          color="black" if every else None)  # fmt: skip
        if every:
            rates.fill_between(xs, low, high, color=line[0].get_color(), alpha=0.12)
    rates.set_ylim(0, 105)
    rates.set_ylabel("held-out pass rate (%)")
    rates.set_title(f"pass rate per checked principle (n={report.heldout_prompts} prompts)", fontsize=10)
    rates.legend(fontsize=8, loc="lower right")
    kl.plot(xs, [0.0, *(r.kl_per_token or 0.0 for r in done)], marker="o", color="#c0392b")
    kl.set_ylabel("KL(round ‖ base), nats/token")
    kl.set_ylim(bottom=0)
    kl.set_title("KL from the base", fontsize=10)
    base_words = done[0].base_words_mean if done else None
    words.plot(xs, [base_words or 0.0, *(r.words_mean or 0.0 for r in done)], marker="o", label="policy")
    if base_words is not None:
        words.axhline(base_words, color="#9aa5b1", linestyle="--", label="base")
    words.set_ylim(bottom=0)
    words.legend(fontsize=8)
    words.set_ylabel("words per held-out answer")
    words.set_title("answer length", fontsize=10)
    for axis in (rates, kl, words):
        axis.set_xlabel("round (0: base)")
        axis.set_xticks(xs)
    if report.best_round is not None:
        rates.axvline(report.best_round, color="#2f7ed8", linestyle=":", label="best")
    fig.suptitle(f"rlaif iterate: {report.run_dir} ({report.status})", fontsize=11)
    return save_png(fig, path, dpi=110)
