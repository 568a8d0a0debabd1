"""`rlaif.run`: the pipeline from a RunConfig, a dict or a file, returning the RunSummary."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import rlaif
from tests.support.stub import StubServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _config(stub: StubServer, run_dir: Path) -> dict[str, object]:
    return {
        "run_dir": str(run_dir),
        "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 2},
        "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
        "revise": {"rounds": 1},
    }


def test_a_dict_a_config_object_and_a_file_run_the_same_pipeline(tmp_path: Path) -> None:
    stages = ("respond", "revise", "judge")
    with StubServer() as stub:
        data = _config(stub, tmp_path / "run")
        summary = rlaif.run(data, stages=stages, quiet=True)
        assert isinstance(summary, rlaif.RunSummary) and summary.counts.judgments == 2
        assert summary.stages["respond"].made == 4 and data["run_dir"] == str(tmp_path / "run")
        again = rlaif.run(rlaif.config_from_dict(data), stages=stages, quiet=True)
        assert again.stages["respond"].reused == 4 and again.stages["respond"].made == 0  # resumed
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(data))
        more = rlaif.run(path, overrides={"prompts.limit": 3}, stages=stages, quiet=True)
        assert more.stages["respond"].made == 2 and more.counts.judgments == 3


def test_overrides_apply_to_a_dict_without_changing_it(tmp_path: Path) -> None:
    with StubServer() as stub:
        data = _config(stub, tmp_path / "run")
        summary = rlaif.run(data, overrides={"prompts.limit": 1}, stages=("respond",), quiet=True)
    assert (
        summary.stages["respond"].made == 2 and data["prompts"] == _config(stub, tmp_path / "run")["prompts"]
    )


def test_a_bad_config_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(rlaif.ConfigError, match=r"run config, revise.rounds: .*got 0"):
        rlaif.run({"prompts": {"path": "p.jsonl"}, "revise": {"rounds": 0}})
    with pytest.raises(rlaif.ConfigError, match="prompts"):
        rlaif.run({"run_dir": str(tmp_path)})
    with pytest.raises(rlaif.ConfigError, match="give a RunConfig"):
        rlaif.run(42)  # type: ignore[arg-type]
    with pytest.raises(rlaif.ConfigError, match="not a section"):
        rlaif.run({"prompts": {"path": "p.jsonl"}}, overrides={"prompts.path.x": 1})
