"""Soak: many kill-and-resume runs, each with its own kill seed, against one vLLM server.

    python -m tests.chaos.soak --runs 10 --kills 40
    python -m tests.chaos.soak --runs 3 --base-url http://127.0.0.1:8000/v1 --served-name NAME
    python -m tests.chaos.soak --runs 5 --kills 20 --slow-stub 0.3

`--slow-stub SECONDS` serves the deterministic stub server instead, each answer held that long, so the
kills land while many requests are in flight (a slow server), and every record must equal the reference's.

Without --base-url it starts a managed vLLM server for the bundled model. One uninterrupted
reference run is made first; every soak run is then killed `--kills` times (seeded: run i uses seed
`--seed + i`), resumed to the end and compared with the reference record for record. Prints one
line per run and writes a JSON report; exits 1 if any run lost, duplicated, tore or changed a record.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.chaos import chaos_run, compare, describe, run_cli, snapshot, stage_counts, write_config


@contextlib.contextmanager
def server(
    base_url: str | None, served_name: str | None, folder: Path, slow: float | None = None
) -> Iterator[tuple[str, str]]:
    if slow is not None:
        from tests.support.stub import StubServer

        with StubServer() as stub:
            stub.delay = slow
            yield stub.base_url, stub.served_name
        return
    if base_url:
        yield base_url, served_name or ""
        return
    from rlaif.backends.bundled import cache_dir, ensure_model
    from rlaif.backends.vllm_server import VLLMServer

    managed = VLLMServer(ensure_model(), log_path=folder / "server.log", cache_dir=cache_dir("vllm"))
    with managed:
        yield managed.base_url, managed.served_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="kill-and-resume runs (default 5)")
    parser.add_argument("--kills", type=int, default=40, help="SIGKILLs per run (default 40)")
    parser.add_argument("--seed", type=int, default=1000, help="kill seed of the first run")
    parser.add_argument("--prompts", type=int, default=6, help="prompts from examples/prompts.jsonl")
    parser.add_argument("--rounds", type=int, default=2, help="critique/revise rounds")
    parser.add_argument("--base-url", help="a running server (default: start a managed one)")
    parser.add_argument("--served-name", help="its model name")
    parser.add_argument("--slow-stub", type=float, metavar="SECONDS",
                        help="serve the stub server, each answer held SECONDS (a slow server)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="keep run directories here (default: a temp folder)")
    parser.add_argument("--report", type=Path, default=Path("soak-report.json"), help="JSON report path")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rlaif-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    failed = 0
    with server(args.base_url, args.served_name, workdir, args.slow_stub) as (base_url, served_name):
        settings = {
            "base_url": base_url,
            "served_name": served_name,
            "prompts": args.prompts,
            "rounds": args.rounds,
        }
        started = time.monotonic()
        reference_dir = workdir / "reference"
        done = run_cli(write_config(reference_dir, run_dir=reference_dir / "run", **settings))
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 2
        reference = snapshot(reference_dir / "run")
        expected = stage_counts(reference)
        print(f"reference: {expected} in {time.monotonic() - started:.0f} s", flush=True)
        for index in range(args.runs):
            seed = args.seed + index
            folder = workdir / f"soak-{seed}"
            shutil.rmtree(folder, ignore_errors=True)
            config = write_config(folder, run_dir=folder / "run", **settings)
            started = time.monotonic()
            problems: list[str] = []
            report = None
            try:
                report = chaos_run(config, folder / "run", expected, kills=args.kills, seed=seed)
                final = run_cli(config)
                if final.returncode != 0:
                    problems.append(f"final run exit {final.returncode}: {final.stderr[-500:]}")
                else:
                    problems += compare(reference, snapshot(folder / "run"))
            except AssertionError as exc:  # a torn or duplicated line found by snapshot, a failed run
                problems.append(str(exc))
            seconds = time.monotonic() - started
            failed += bool(problems)
            summary = report.summary() if report else "harness stopped"
            print(f"run {index + 1}/{args.runs} seed {seed}: {'FAIL' if problems else 'ok'}; {summary}; "
                  f"{seconds:.0f} s", flush=True)  # fmt: skip
            for problem in problems:
                print(f"  {problem}", flush=True)
            results.append({
                "seed": seed, "ok": not problems, "problems": problems, "seconds": round(seconds, 1),
                "kills": len(report.killed) if report else None,
                "by_stage": report.by_stage() if report else None,
                "torn": sum(k.torn is not None for k in report.killed) if report else None,
                "detail": describe(report.kills) if report else None,
            })  # fmt: skip
    args.report.write_text(json.dumps({"expected": expected, "runs": results}, indent=2))
    kills = sum(r["kills"] or 0 for r in results)
    print(f"{args.runs - failed}/{args.runs} runs exact, {kills} kills in all; report: {args.report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
