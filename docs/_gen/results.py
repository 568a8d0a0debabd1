"""Result tables of the docs, written from the committed JSON in `examples/results/` at build time.

A page asks for a table with a marker on a line of its own, `<!-- results:NAME -->`; `fill` replaces it with
the table `TABLES[NAME]` makes from the files, so a figure on the site is the figure in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from statistics import fmean
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "examples" / "results"
MARKER = re.compile(r"^<!-- results:([a-z0-9-]+) -->$", re.MULTILINE)


def load(name: str) -> Any:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def ci(bounds: list[float] | None, digits: int = 1) -> str:
    return "" if bounds is None else f" [{100 * bounds[0]:.{digits}f}, {100 * bounds[1]:.{digits}f}]"


def signed_pct(value: float) -> str:
    return f"{100 * value:+.1f}%".replace("-", "−")


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def source(*names: str) -> str:
    files = ", ".join(f"`examples/results/{name}`" for name in names)
    return f"\n\n<small>Generated from {files} when the site is built.</small>"


def compliance() -> str:
    data = load("compliance-quickstart.json")
    rows = []
    for p in data["principles"]:
        name = p["principle_id"]
        bold = name == "every check"
        cells = [
            name if not bold else "**every check**",
            f"`{p['rules']}`" if not bold else "",
            pct(p["base"]["value"]) + ci(p["base"]["ci95"]),
            pct(p["candidate"]["value"]) + ci(p["candidate"]["ci95"]),
            signed_pct(p["difference"]) + ci(p["difference_ci95"]).replace("-", "−"),
        ]
        rows.append(cells)
    lengths, kl = data["lengths"], data["kl"]
    note = (
        f"\n\n{data['prompts']} held-out prompts ({data['prompts_seen_in_training']} seen in training), "
        f"{data['samples']} sample each at temperature {data['temperature']}, "
        f"at most {data['max_tokens']} tokens. "
        f"KL(trained ‖ base) {kl['per_token']:.2f} nats/token; mean answer length "
        f"{lengths['base']['words_mean']:.1f} → {lengths['candidate']['words_mean']:.1f} words; "
        "cut off at the "
        f"token limit: {pct(lengths['base']['cut_off'], 0)} of the base's answers, "
        f"{pct(lengths['candidate']['cut_off'], 0)} of the trained model's."
    )
    header = ["principle", "check", "base [95% CI]", "trained [95% CI]", "difference [95% CI]"]
    return table(header, rows, "llrrr") + note + source("compliance-quickstart.json")


def _ratio(m: dict[str, Any], key: str) -> float | None:
    return m.get(key) if key in m else (m.get("extra") or {}).get(key)


def generation() -> str:
    data = load("bench-cpu-5.json")
    rows = []
    for m in data["measurements"]:
        ratio, at_once = _ratio(m, "ratio_to_raw"), _ratio(m, "ratio_to_raw_all_at_once")
        vs = (
            ""
            if ratio is None
            else f"{ratio:.2f}" + ("" if at_once is None else f" ({at_once:.2f} all at once)")
        )
        hits = m.get("prefix_cache_hit_rate")
        pipeline = m["name"].startswith("pipeline")
        rows.append(
            [
                m["name"],
                str(m["requests"]),
                f"{m['seconds']:.1f}",
                "-" if pipeline else f"{m['tokens_per_second']:.0f}",
                f"{m['requests_per_second']:.1f}",
                vs,
                "n/a" if hits is None else pct(hits, 0),
            ]
        )
    judge, hw = data["judge"], data["hardware"]
    pipeline = next(m for m in data["measurements"] if m["name"].startswith("pipeline"))
    note = (
        f"\n\nTwo-order / one-order judge time: {judge['two_vs_one_order_time']:.2f} (prompt-token ratio "
        f"{judge['two_vs_one_order_prompt_tokens']:.2f}); {judge['pairs_per_hour']:.0f} judged pairs/hour "
        f"({judge['judge_calls_per_second']:.1f} judge calls/s); pipeline "
        f"{_ratio(pipeline, 'pairs_per_hour'):.0f} pairs/hour; peak RSS {data['peak_rss_gib']:.2f} GiB; "
        f"{data['prompts']} prompts, concurrency {data['concurrency']}; {hw['device']}, {hw['cpus']} CPUs, "
        f"vLLM {hw['vllm']}."
    )
    header = ["measurement", "requests", "seconds", "gen tok/s", "req/s", "vs raw", "prefix-cache hits"]
    return table(header, rows, "lrrrrrr") + note + source("bench-cpu-5.json")


def generation_runs() -> str:
    runs = [
        ("bench-cpu.json", ""),
        ("bench-cpu-2.json", ""),
        ("bench-cpu-3.json", ""),
        ("bench-cpu-4.json", ""),
        ("bench-cpu-5.json", ", windowed stages, 48 prompts"),
    ]
    rows = []
    for index, (name, what) in enumerate(runs, start=1):
        by = {m["name"]: m for m in load(name)["measurements"]}
        revise = by["revise (1 round)"]
        ratio, at_once = _ratio(revise, "ratio_to_raw"), _ratio(revise, "ratio_to_raw_all_at_once")
        chained = "raw, in chain order: revise (1 round)" in by
        revise_cell = (
            f"{ratio:.2f} in chain order, {at_once:.2f} all at once"
            if chained and at_once
            else f"{ratio:.2f} (all at once)"
        )
        rows.append(
            [
                f"run {index} (`{name}`{what})",
                f"{_ratio(by['respond'], 'ratio_to_raw'):.2f}",
                revise_cell,
                f"{_ratio(by['judge (one order)'], 'ratio_to_raw'):.2f}",
                f"{_ratio(by['judge (both orders)'], 'ratio_to_raw'):.2f}",
            ]
        )
    header = ["vs raw", "respond", "revise (1 round)", "judge, one order", "judge, both orders"]
    return table(header, rows, "lrrrr") + source(*(name for name, _ in runs))


def _agreement_row(label: str, data: dict[str, Any]) -> list[str]:
    one = data["agreement_one_order"]
    decided = data["agreement_decisive"]
    detail = (
        ""
        if not data["ties"]
        else f"; {pct(decided['value'])} of the {decided['n']:,} decided, {data['ties']} ties"
    )
    return [label, pct(one["value"]) + ci(one["ci95"]) + detail, f"{data['n']:,}"]


def judge_baselines() -> str:
    rows = []
    for name in ("shorter", "random", "first", "longer"):
        data = load(f"judge-baseline-{name}.json")
        what = {
            "shorter": "shorter reply",
            "random": "random",
            "first": "always first",
            "longer": "longer reply",
        }[name]
        rows.append(_agreement_row(f"baseline: {what}", data))
    header = ["judge", "agreement with the human label (a tie counts half) [95% CI]", "rows"]
    return table(header, rows, "lrr") + source(
        *(f"judge-baseline-{n}.json" for n in ("shorter", "random", "first", "longer"))
    )


def judge_bundled() -> str:
    from rlaif.evaluate.stats import wilson

    data = load("judge-bundled-hh500.json")
    n, ties = data["n"], data["ties"]
    agreeing = round(data["agreement_two_orders"]["value"] * n)  # written before ties counted half
    half = agreeing + ties / 2
    decided = n - ties
    low, high = wilson(half, n)
    one = data["agreement_one_order"]
    rows = [
        [
            f"bundled 135M model, {data['mode']}, two orders averaged (first {n} rows)",
            f"{pct(half / n)} [{100 * low:.1f}, {100 * high:.1f}]; "
            f"{pct(agreeing / decided)} of the {decided} decided, "
            f"{ties} ties",
            pct(data["order_consistency"]["value"]),
            pct(data["same_position_rate"]["value"], 0),
        ],
        ["the same, one order", pct(one["value"]) + ci(one["ci95"]), "", ""],
    ]
    header = ["judge", "agreement (a tie counts half) [95% CI]", "order-consistency", "same-position rate"]
    note = (
        f"\n\nRecomputed from the counts in the file ({agreeing} agreeing, {ties} tied, "
        f"{n - agreeing - ties} "
        "disagreeing rows): it was written before ties counted half, and its `agreement` field "
        f"({pct(data['agreement'])}) counts ties as disagreement."
    )
    return table(header, rows, "lrrr") + note + source("judge-bundled-hh500.json")


def attacks() -> str:
    data = load("attacks-bundled-hh24.json")
    names = {
        "append-instructions": "appended instructions to the judge",
        "claims-better": "claims to be the better answer",
        "fake-verdict": "fake verdict line",
        "pad-length": "length padding",
        "null": 'constant "null" answer',
    }

    def flip(cell: dict[str, Any]) -> str:
        return f"{pct(cell['flip_rate'], 0)} ({cell['flips']}/{cell['clean_losses']})"

    rows = [
        [names.get(name, name), flip(a["defences on"]), flip(a["defences off"]), pct(a["flagged"], 0)]
        for name, a in data["attacks"].items()
    ]
    header = ["attack", "flip rate, defences on", "flip rate, defences off", "candidate flagged"]
    flagged = pct(data["clean_flagged"], 0)
    note = f"\n\n{data['pairs']} pairs, judge {data['judge']}; clean replies flagged: {flagged}."
    return table(header, rows, "lrrr") + note + source("attacks-bundled-hh24.json")


def judge_cost() -> str:
    data = load("judge-cost-cpu.json")
    tokens, seconds, hits = data["tokens"], data["mean_seconds"], data["prefix_cache_hit_rate"]
    rows = [
        [name, f"{seconds[name]:.1f}", pct(hits[name], 0)]
        for name in ("one-order", "two-order", "cot-one-order")
    ]
    note = (
        f"\n\n{tokens['pairs']} pairs; one-order prompts {tokens['one_order_tokens']:,} tokens, S = "
        f"{tokens['shared_tokens_S']:,} shared by both orders, R = {tokens['rest_tokens_R']:,} the rest: "
        "expected "
        f"two-order / one-order {tokens['token_ratio']:.2f} ({tokens['block_ratio']:.2f} in whole "
        f"{tokens['block']}-token cache blocks); measured wall ratio {data['wall_ratio']:.2f}, "
        f"{data['wall_over_token_ratio']:.2f} of the token ratio; chain of thought / two-order one-token "
        f"{data['cot_one_order_over_two_order']:.2f}."
    )
    return (
        table(["measurement", "seconds", "prefix-cache hits"], rows, "lrr")
        + note
        + source("judge-cost-cpu.json")
    )


def training() -> str:
    data = load("train-bench-cpu.json")
    names = {
        "sft": "SFT (SFTTrainer)",
        "reward": "reward model (RewardTrainer)",
        "dpo": "DPO (DPOTrainer)",
        "kto": "KTO (KTOTrainer)",
        "online": "online RLOO, reward model as reward",
        "ppo": "PPO (ours), reward model as reward",
    }
    # The batches are the quickstart's settings, which the file does not repeat.
    batches = {
        "sft": "2 rows, length ≤ 512",
        "reward": "2 pairs, length ≤ 512",
        "dpo": "2 × 2 accumulated, length 512",
        "kto": "4 rows",
        "online": "4 completions (2 prompts × 2), ≤ 64 tokens",
        "ppo": "4 rollouts, 2 minibatches, 2 epochs, 32 new tokens",
    }
    rows = []
    for name, runs in data["trainers"].items():
        run = runs[0]
        batch = batches.get(name, "")
        rows.append(
            [names.get(name, name), batch, f"{run['seconds_per_step']:.2f}", f"{run['peak_rss_gib']:.2f}"]
        )
        plain = (data.get("plain_trl") or {}).get(name)
        if plain:
            rows.append(
                [
                    f"plain TRL {names.get(name, name).split('(')[-1].rstrip(')')}, same settings",
                    batch,
                    f"{plain[0]['seconds_per_step']:.2f}",
                    f"{plain[0]['peak_rss_gib']:.2f}",
                ]
            )
    header = ["trainer", "batch (pairs or rows a step)", "s/step", "peak RSS (GiB)"]
    note = f"\n\n{data['steps']} steps each on `{data['export']}`, every trainer in its own process."
    return table(header, rows, "llrr") + note + source("train-bench-cpu.json")


def training_compare() -> str:
    data = load("train-bench-compare-cpu.json")
    rows = [
        [
            name,
            f"{c['rlaif_seconds_per_step']:.2f}",
            f"{c['plain_trl_seconds_per_step']:.2f}",
            f"{c['ratio']:.3f}",
            "yes" if c["within_5_percent"] else "no",
        ]
        for name, c in data["comparison"].items()
    ]
    header = ["trainer", "rlaif s/step", "plain TRL s/step", "ratio", "within 5%"]
    note = f"\n\n{data['repeats']} runs each of {data['steps']} steps, alternating; medians compared."
    return table(header, rows, "lrrrl") + note + source("train-bench-compare-cpu.json")


def scale() -> str:
    data = load("scale.json")
    rows = [
        [
            f"{p['prompts']:,}",
            f"{p['raw_requests_per_second']:.0f}",
            f"{p['pipeline_requests_per_second']:.0f}",
            f"{p['ratio_to_raw']:.2f}",
            f"{p['raw_cpu_ms_per_request']:.2f}, {p['pipeline_cpu_ms_per_request']:.2f}",
            f"{p['peak_rss_mib']:.0f} MiB",
            f"{p['resume_seconds']:.1f} s ({pct(p['resume_share'], 0)}), {p['resume_requests']} requests",
        ]
        for p in data["points"]
    ]
    header = [
        "prompts",
        "raw client req/s",
        "`rlaif run` req/s",
        "ratio",
        "CPU ms/request (raw, rlaif)",
        "peak RSS",
        "resume (share of generating)",
    ]
    note = (
        f"\n\nConcurrency {data['concurrency']}, {data['cpus']} CPUs; peak RSS grows by "
        f"{data['rss_bytes_per_prompt'] / 1000:.1f} KB a prompt "
        f"({data['rss_bytes_per_record']:.0f} bytes a stored record)."
    )
    return table(header, rows, "rrrrrrr") + note + source("scale.json")


def scale_servers() -> str:
    data = load("scale.json")
    rows = [
        [
            str(s["servers"]),
            f"{s['requests_per_second']:.0f}",
            f"{s['cpu_ms_per_request']:.2f}",
            f"{s['client_cores']:.2f}",
        ]
        for s in data["servers"]
    ]
    prompts = data["servers"][0]["prompts"]
    header = ["servers", "requests/s", "client CPU ms/request", "client cores busy"]
    return table(header, rows, "rrrr") + f"\n\n{prompts:,} prompts each." + source("scale.json")


def scale_workers() -> str:
    data = load("scale-workers.json")
    base = data["workers"][0]

    def change(w: dict[str, Any]) -> str:
        return signed_pct(w["cpu_ms_per_request"] / base["cpu_ms_per_request"] - 1)

    rows = [
        [
            str(w["workers"]),
            f"{w['requests_per_second']:.0f}",
            f"{w['cpu_ms_per_request']:.2f} ({change(w)})",
            f"{w['client_cores']:.2f}",
            f"{w['stub_cores']:.2f}",
            f"{w['machine_busy_cores']:.2f}",
            ", ".join(f"{m:.0f}" for m in w["worker_peak_rss_mib"]) or f"{w['peak_rss_mib']:.0f}",
        ]
        for w in data["workers"]
    ]
    header = [
        "workers",
        "requests/s",
        "client CPU ms/request",
        "client cores",
        "stub cores",
        "machine cores busy",
        "peak RSS MiB (per worker)",
    ]
    note = (
        f"\n\n{base['prompts']:,} prompts each (the `bench-scale` mix), concurrency "
        f"{data['concurrency']} per worker, {data['cpus']} CPUs."
    )
    return table(header, rows, "rrrrrrr") + note + source("scale-workers.json")


def million() -> str:
    rows = []
    for name in sorted(RESULTS.glob("million-*.json")):
        m = json.loads(name.read_text(encoding="utf-8"))
        rows.append(
            [
                f"{m['prompts']:,}",
                str(m["workers"]),
                f"{m['generation_seconds']:,.0f} s",
                f"{m['requests_per_second']:.0f}",
                f"{m['client_cpu_ms_per_request']:.2f}",
                f"{m['machine_busy_cores']:.2f}",
                f"{m['parent_peak_rss_mib']:,.0f}; "
                + ", ".join(f"{w:,.0f}" for w in m["worker_peak_rss_mib"]),
                f"{m['resume_seconds']:.0f} s ({m['resume_requests']} requests)",
                f"{m['responses_bytes'] / 2**20:,.0f} MiB",
            ]
        )
    header = [
        "prompts",
        "workers",
        "generating",
        "requests/s",
        "client CPU ms/request",
        "machine cores busy",
        "peak RSS MiB (parent; workers)",
        "resume",
        "responses.jsonl",
    ]
    names = [f"million-*.json ({len(rows)} files)"]
    return table(header, rows, "rrrrrrrrr") + source(*names)


def hacking() -> str:
    data = load("hacking.json")
    what = {
        "unguarded": "unguarded: the members' mean",
        "conservative": "conservative: mean − 1.0·std (`uncertainty_penalty: 1.0`)",
        "early stop": "early stop: the mean, `stop_on_alert: true`",
    }
    rows = []
    for name, arm in data["arms"].items():
        lengths = arm["length_words"]
        end = f"{lengths[-1]:.1f} at the stop" if arm["stopped_by_monitor"] else f"{arm['length_last_3']:.1f}"
        alert = arm["first_alert_step"]
        drift = (lengths[alert - 1] / lengths[0] - 1) if alert else None
        rows.append(
            [
                what.get(name, name),
                f"{lengths[0]:.1f} → {end}",
                f"{max(lengths):.1f}",
                "none" if alert is None else f"step {alert} ({signed_pct(drift)})",
                str(arm["steps"]),
                f"{fmean(arm['kl'][-3:]):.1f}",
                f"{arm['seconds_per_step']:.1f}",
            ]
        )
    header = [
        "arm",
        "answer length (words): step 1 → mean of last 3",
        "highest",
        "first alert",
        "steps",
        "KL, last 3",
        "s/step",
    ]
    return table(header, rows, "lrrrrrr") + source("hacking.json")


def trust() -> str:
    from rlaif.bench.reports import TrustBench
    from rlaif.cli.tables.bench import trust_markdown

    return trust_markdown(TrustBench.model_validate(load("trust.json"))) + source("trust.json")


def rounds() -> str:
    from rlaif.cli.tables.iterate import rounds_markdown
    from rlaif.rounds.reports import IterateReport

    return rounds_markdown(IterateReport.model_validate(load("rounds-quickstart.json"))) + source(
        "rounds-quickstart.json"
    )


TABLES: dict[str, Callable[[], str]] = {
    "compliance": compliance,
    "generation": generation,
    "generation-runs": generation_runs,
    "judge-baselines": judge_baselines,
    "judge-bundled": judge_bundled,
    "attacks": attacks,
    "judge-cost": judge_cost,
    "training": training,
    "training-compare": training_compare,
    "scale": scale,
    "scale-servers": scale_servers,
    "scale-workers": scale_workers,
    "million": million,
    "hacking": hacking,
    "trust": trust,
    "rounds": rounds,
}


def fill(text: str) -> str:
    """The page with each `<!-- results:NAME -->` marker replaced by its table (an unknown name raises)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise KeyError(f"results marker {name!r}: no such table; known: {', '.join(TABLES)}")
        return TABLES[name]()

    return MARKER.sub(one, text)
