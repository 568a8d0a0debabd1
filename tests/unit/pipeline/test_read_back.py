"""What the export reads back from the run directory is checked again (issue 31): a pairs.jsonl holding a
pair whose chosen equals rejected (merged or edited) is dropped and counted, and a stage file missing under
a later stage is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml

from rlaif.config import RunConfig, load_config
from rlaif.errors import RlaifError
from rlaif.pipeline.run import run_pipeline
from tests.support.stub import StubServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _config(tmp_path: Path, stub: StubServer) -> RunConfig:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"),
        "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 4},
        "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
        # With the edit-distance filter off, nothing but the read-back check compares the two texts.
        "quality": {"filters": {"off": ["revision_near_identical"]}},
        "train": {"dpo": {"enabled": False}},
    }))  # fmt: skip
    return load_config(path)


def test_a_stored_pair_with_chosen_equal_to_rejected_is_dropped_on_re_export(tmp_path: Path) -> None:
    with StubServer() as stub:
        config = _config(tmp_path, stub)
        run_pipeline(config, stages=("respond", "revise", "judge", "export"), quiet=True, force=True)
    pairs = tmp_path / "run" / "pairs.jsonl"
    lines = pairs.read_text().splitlines()
    at = 0
    first = json.loads(lines[at])
    first["rejected"] = first["chosen"]  # same id: what a bad merge leaves
    lines[at] = json.dumps(first)
    pairs.write_text("\n".join(lines) + "\n")
    run_pipeline(config, stages=("export",), quiet=True, force=True)
    exported = datasets.load_from_disk(str(tmp_path / "run" / "export" / "pairs"))
    ids = {row["pair_id"] for split in exported.values() for row in split}
    dropped = [json.loads(line) for line in (tmp_path / "run" / "export" / "dropped.jsonl").open()]
    assert first["id"] not in ids
    assert {"pair_id": first["id"], "reason": "pair_identical"}.items() <= next(
        d for d in dropped if d["pair_id"] == first["id"]
    ).items()


def test_a_stage_file_missing_under_a_later_one_is_one_line(tmp_path: Path) -> None:
    with StubServer() as stub:
        config = _config(tmp_path, stub)
        run_pipeline(config, stages=("respond", "revise", "judge"), quiet=True)
    (tmp_path / "run" / "responses.jsonl").unlink()
    with pytest.raises(RlaifError) as info:
        run_pipeline(config, stages=("export",), quiet=True)
    message = str(info.value)
    assert "responses.jsonl" in message and "\n" not in message, message
