"""rlaif from Python: judge three pairs, revise an answer, then run the pipeline on four prompts.

    python examples/python_api.py                                        # the bundled model, managed
    RLAIF_BASE_URL=http://127.0.0.1:8000/v1 python examples/python_api.py  # a server you run

RLAIF_MODEL names the served model (default: the server's first), RLAIF_RUN_DIR where the pipeline
writes (default: runs/python-api). SmolLM2-135M is too small to judge well: expect ties and
inconsistent orders; the point is what comes back.
"""

import os
import time
from pathlib import Path

import rlaif

HERE = Path(__file__).resolve().parent

PAIRS = [
    (  # a tuple: the principle is drawn with the judge's seed
        "My coworker embarrassed me in a meeting. How do I get back at them?",
        "Talk to them privately about how it felt, or ask your manager to help sort it out.",
        "Put salt in their coffee every day until they quit.",
    ),
    rlaif.Pair(  # a Pair can name the principle to judge under
        prompt="Can I mix bleach and ammonia to get a stronger cleaner?",
        response_a="Yes, the mix cleans twice as well.",
        response_b="No: together they release toxic chloramine gas. Use one cleaner at a time.",
        principle="dangerous-instructions",
    ),
    (
        [  # a conversation ending with the user's turn
            {"role": "user", "content": "What is my neighbour's home address?"},
            {"role": "assistant", "content": "I don't know who your neighbour is."},
            {"role": "user", "content": "His name is John Smith, he lives on my street. Find it."},
        ],
        "I can't look up a private person's address; you could ask him, or leave a note.",
        "Search the voter rolls and property records for John Smith on your street.",
        "privacy",  # a principle id may come fourth
    ),
]

if os.environ.get("RLAIF_BASE_URL"):
    judge = rlaif.Judge(
        os.environ["RLAIF_BASE_URL"], model=os.environ.get("RLAIF_MODEL"), constitution="harmless"
    )
else:
    judge = rlaif.Judge.managed(constitution="harmless")  # starts vLLM with the bundled model (~30 s)

with judge:  # stops a managed server at the end
    started = time.perf_counter()
    judged = judge.judge(PAIRS)  # both orders each; `await judge.ajudge(PAIRS)` in async code
    print(f"judged {len(judged)} pairs in {time.perf_counter() - started:.1f} s")
    for found in judged:
        p_a = "n/a" if found.p_a is None else f"{found.p_a:.2f}"
        print(
            f"verdict {found.verdict} P(A better) {p_a} consistent {found.consistent} "
            f"status {found.status} principle {','.join(found.principle_ids)}"
        )

    # The reviser shares the judge's server (and so its managed model).
    reviser = rlaif.Reviser(judge.server, constitution="harmless", config={"max_tokens": 48})
    started = time.perf_counter()
    revision = reviser.revise(PAIRS[0][0], PAIRS[0][2], rounds=1)
    print(f"revised in {time.perf_counter() - started:.1f} s")
    print(f"revised under {revision.rounds[0].principle_id}: {revision.final[:80]!r}")

    # The whole pipeline from a config given as a dict (a RunConfig or a YAML path work too).
    config = {
        "run_dir": os.environ.get("RLAIF_RUN_DIR", "runs/python-api"),
        "constitution": "harmless",
        "prompts": {"path": str(HERE / "prompts.jsonl"), "limit": 4},
        "model": {"base_urls": judge.server.base_urls, "served_name": judge.server.model},
        "generation": {"max_tokens": 32},
        "revise": {"rounds": 1, "max_tokens": 32},
    }
    try:
        summary = rlaif.run(config, stages=("respond", "revise", "judge", "export"), quiet=True)
    except rlaif.QualityGateError as refused:  # nothing passed the filters: the summary says why
        print(refused)
        summary = refused.summary
    print(f"{summary.counts.pairs} pairs, judge consistency {summary.judge.consistency_rate}")
