"""rlaif from Python: load a config, override settings, run the generation stages, read the pairs.

    python examples/python_api.py                      # bundled model on a managed vLLM server
    python examples/python_api.py model.base_urls='[http://127.0.0.1:8000/v1]' run_dir=runs/api
"""

import sys

import yaml

from rlaif import PreferencePair, QualityGateError, RunDir, load_config, run_pipeline

overrides = {"prompts.limit": 4, "revise.rounds": 1, "run_dir": "runs/python-api", "train.dpo.enabled": False}
for argument in sys.argv[1:]:  # key=value, as with the CLI's --set
    key, _, value = argument.partition("=")
    overrides[key] = yaml.safe_load(value)

config = load_config("examples/quickstart.yaml", overrides)
try:
    summary = run_pipeline(config, stages=("respond", "revise", "judge", "export"), quiet=True)
except QualityGateError as refused:  # nothing passed the filters: the summary says why
    print(refused)
    summary = refused.summary
print(f"{summary.counts.pairs} pairs, judge consistency {summary.judge.consistency_rate}")
for reason, count in summary.quality.dropped.items():
    print(f"dropped ({reason}): {count}")

with RunDir(config.run_dir) as run:
    for pair in run.stage("pairs", PreferencePair):
        print(f"[{pair.source} {pair.score:.2f}] chosen: {pair.chosen[:60]!r}")
