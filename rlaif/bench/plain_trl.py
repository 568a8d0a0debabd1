"""Plain TRL, no rlaif: DPOTrainer or RewardTrainer built directly, timed per step, for `rlaif train bench`.

Run as a file (`python path/to/bench_plain_trl.py SPEC.json`), never imported through the `rlaif`
package, so nothing of rlaif is loaded into the process. The spec names the trainer, the exported
pairs folder, the sources kept, the model folder, an output folder, the exact TRL config keywords
and where to write the result (seconds of every step, peak RSS, losses).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import torch
from datasets import load_from_disk
from transformers import AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer


class Timer(TrainerCallback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.started = 0.0

    def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self.started)


def main(spec_path: str) -> None:
    spec = json.loads(open(spec_path, encoding="utf-8").read())
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    dataset = load_from_disk(spec["data"])["train"]  # the export is a DatasetDict: train on its train split
    dataset = dataset.filter(lambda row: row["source"] in spec["sources"])
    dataset = dataset.select_columns(["prompt", "chosen", "rejected"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    tokenizer.pad_token = "<|endoftext|>"  # the same pad as rlaif's, so both see identical batches
    timer = Timer()
    settings = {**spec["settings"], "output_dir": spec["output"]}
    if spec["trainer"] == "dpo":
        trainer: Any = DPOTrainer(
            model=spec["model"],
            args=DPOConfig(**settings),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[timer],
        )
    else:
        trainer = RewardTrainer(
            model=spec["model"],
            args=RewardConfig(**settings),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[timer],
        )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    result = {
        "steps": trainer.state.global_step,
        "seconds": seconds,
        "step_seconds": timer.seconds,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }
    with open(spec["result"], "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1])
