"""The export as a Hub dataset: a seeded train/test split by prompt, `DatasetDict` folders and Parquet
files, a card with the Hub's metadata, a clean folder after `filter`/`map`, and `push_to_hub` (with the
Hub's API replaced by recorders: never the network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlaif.config import ExportConfig, load_config
from rlaif.errors import HubError
from rlaif.pipeline.dataset_card import write_card
from rlaif.pipeline.export import export_pairs, export_sft, held_out_prompts
from rlaif.pipeline.hub import push_export
from rlaif.pipeline.reports import JudgeSummary, RunCounts, RunSummary
from rlaif.records import Constitution, Principle, PromptRecord
from tests.support.cli import Cli
from tests.support.review import make_pair

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CONSTITUTION = Constitution(
    name="kindness",
    principles=(Principle(id="kind", critique_request="c", revision_request="r", judge_question="q"),),
)


def grouped_pairs(prompts: int, per_prompt: int = 3) -> list[Any]:
    """`per_prompt` pairs for each of `prompts` prompts."""
    return [
        make_pair(i).model_copy(update={"prompt_id": f"prompt-{i // per_prompt}"})
        for i in range(prompts * per_prompt)
    ]


def summary(folder: Path) -> RunSummary:
    return RunSummary(
        run_dir=str(folder), constitution="kindness", model="smol", judge_model="smol",
        counts=RunCounts(prompts=10, responses=0, revision_steps=0, revisions=0, judgments=0, pairs=30),
        judge=JudgeSummary(judged=0, parsed_orders=0, unparsed_orders=0, both_orders=0, consistent=0),
    )  # fmt: skip


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """30 pairs of 10 prompts, 20% of the prompts held out, with its card."""
    folder = tmp_path / "export"
    export_pairs(grouped_pairs(10), folder, test_fraction=0.2, seed=7)
    write_card(
        folder, constitution=CONSTITUTION, summary=summary(folder), export=ExportConfig(test_fraction=0.2)
    )
    return folder


def test_the_split_is_by_prompt_seeded_and_never_empty_or_everything() -> None:
    ids = [f"p{i}" for i in range(10)]
    held = held_out_prompts(ids, 0.2, seed=1)
    assert len(held) == 2 and held <= set(ids)
    assert held_out_prompts(reversed(ids), 0.2, seed=1) == held  # the order of the rows does not matter
    assert {held_out_prompts(ids, 0.2, seed=s) for s in range(6)} != {held}  # the seed does
    assert len(held_out_prompts(ids, 0.01, seed=1)) == 1  # at least one prompt
    assert len(held_out_prompts(ids[:2], 0.9, seed=1)) == 1  # never all of them
    assert held_out_prompts(ids[:1], 0.5, seed=1) == frozenset() == held_out_prompts(ids, 0.0, seed=1)


def test_the_export_is_a_dataset_dict_and_parquet_with_whole_prompts_on_one_side(export: Path) -> None:
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    dataset = load_from_disk(str(export / "pairs"))
    assert list(dataset) == ["train", "test"]
    train, test = set(dataset["train"]["prompt_id"]), set(dataset["test"]["prompt_id"])
    assert len(test) == 2 and len(train) == 8 and not train & test
    assert len(dataset["test"]) == 6 and len(dataset["train"]) == 24  # every row of a held prompt
    assert sorted(p.name for p in (export / "data" / "pairs").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    for split in ("train", "test"):
        table = pq.read_table(export / "data" / "pairs" / f"{split}-00000-of-00001.parquet")
        assert table.column("pair_id").to_pylist() == dataset[split]["pair_id"]
    assert len((export / "pairs.jsonl").read_text().splitlines()) == 30  # JSON lines hold both splits
    again = export.parent / "again"
    export_pairs(list(reversed(grouped_pairs(10))), again, test_fraction=0.2, seed=7)
    assert load_from_disk(str(again / "pairs"))["test"]["pair_id"] == dataset["test"]["pair_id"]


def test_the_card_carries_hub_metadata_and_loads_as_a_dataset(export: Path, tmp_path: Path) -> None:
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    text = (export / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "other" and header["language"] == ["en"]
    assert header["task_categories"] == ["text-generation"] and header["size_categories"] == ["n<1K"]
    assert {"rlaif", "constitutional-ai", "synthetic", "preference"} <= set(header["tags"])
    assert header["configs"] == [
        {
            "config_name": "pairs",
            "data_files": [
                {"split": "train", "path": "data/pairs/train-*.parquet"},
                {"split": "test", "path": "data/pairs/test-*.parquet"},
            ],
            "default": True,
        }
    ]
    card = DatasetCard.load(export / "README.md")  # the Hub's own parser reads the same metadata
    assert card.data.license == "other" and card.data.configs == header["configs"]
    assert "## Examples" in text and '"chosen": [' in text and "good answer" in text
    assert "- pairs split test: 6 rows" in text
    loaded = load_dataset(str(export), "pairs", cache_dir=str(tmp_path / "cache"))  # through the configs
    assert {split: len(rows) for split, rows in loaded.items()} == {"train": 24, "test": 6}


def test_card_examples_are_cut_and_fenced_against_their_text(tmp_path: Path) -> None:
    hostile = make_pair(0, chosen="```\n# not a heading\n" + "x" * 1000, rejected="````")
    export_pairs([hostile], tmp_path)
    text = write_card(tmp_path, constitution=CONSTITUTION, summary=summary(tmp_path)).read_text()
    fence = "`````json"  # longer than any run of backticks in the rows
    assert fence in text and text.count("`````") == 2
    assert "x" * 280 + " [...]" in text and "x" * 281 not in text  # 300 characters, 20 of them not x


def test_the_export_folder_stays_clean_after_filter_and_map(export: Path, tmp_path: Path) -> None:
    """The documented ways to load it: the Parquet files via the card, or `keep_in_memory=True`."""
    from datasets import load_dataset, load_from_disk

    before = sorted(str(p.relative_to(export)) for p in export.rglob("*"))
    pairs = load_dataset(str(export), "pairs", cache_dir=str(tmp_path / "cache"))
    pairs["train"].filter(lambda row: row["score"] > 0.5).map(lambda row: {"n": len(row["prompt"])})
    in_memory = load_from_disk(str(export / "pairs"), keep_in_memory=True)
    in_memory["train"].filter(lambda row: row["score"] > 0.5).map(lambda row: {"n": 1})
    assert sorted(str(p.relative_to(export)) for p in export.rglob("*")) == before
    assert not list(export.rglob("cache-*.arrow"))
    # Why it needs saying: memory-mapped from the folder, a filter writes its cache file beside the data.
    load_from_disk(str(export / "pairs"))["train"].filter(lambda row: row["score"] > 0.5)
    assert list(export.rglob("cache-*.arrow"))


def test_trainers_read_the_train_split_and_leave_the_folder_clean(export: Path) -> None:
    from datasets import load_from_disk

    from rlaif.train.common import load_export, load_pairs

    rows = load_pairs(export / "pairs", sources=("judge",))
    assert sorted(rows["pair_id"]) == sorted(load_from_disk(str(export / "pairs"))["train"]["pair_id"])
    rows.map(lambda row: {"n": 1})
    assert not list(export.rglob("cache-*.arrow"))
    old = export / "old"  # an export from before the split: one Dataset, read whole
    load_from_disk(str(export / "pairs"))["train"].save_to_disk(str(old))
    assert len(load_export(old)) == 24


def test_sft_rows_follow_the_same_prompts(tmp_path: Path) -> None:
    from datasets import load_from_disk

    from rlaif.records import CritiqueRound, Message, Revision
    from tests.support.review import PROVENANCE

    prompts = {f"prompt-{i}": PromptRecord(id=f"prompt-{i}", messages=(Message(role="user", content="q"),))
               for i in range(10)}  # fmt: skip
    revisions = [
        Revision(
            id=f"rev-{i}",
            prompt_id=f"prompt-{i}",
            response_id=f"res-{i}",
            original="o",
            rounds=(CritiqueRound(principle_id="kind", critique="c", revision="r"),),
            provenance=PROVENANCE,
        )
        for i in range(10)
    ]
    held = held_out_prompts(prompts, 0.3, seed=0)
    export_sft(revisions, prompts, tmp_path, held)
    sft = load_from_disk(str(tmp_path / "sft"))
    assert set(sft["test"]["prompt_id"]) == held and len(sft["train"]) == 7
    assert (tmp_path / "data" / "sft" / "test-00000-of-00001.parquet").is_file()


class HubRecorder:
    """Stands in for the Hub: `DatasetDict.push_to_hub` and `HfApi.upload_file` record their calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from datasets import DatasetDict
        from huggingface_hub import HfApi

        self.pushed: list[dict[str, Any]] = []
        self.uploaded: list[dict[str, Any]] = []
        recorder = self

        def push_to_hub(self: Any, repo_id: str, **kwargs: Any) -> None:
            recorder.pushed.append(
                {"repo_id": repo_id, "rows": {s: len(d) for s, d in self.items()}, **kwargs}
            )

        def upload_file(self: Any, **kwargs: Any) -> None:
            recorder.uploaded.append({**kwargs, "text": Path(kwargs["path_or_fileobj"]).read_text()})

        monkeypatch.setattr(DatasetDict, "push_to_hub", push_to_hub)
        monkeypatch.setattr(HfApi, "upload_file", upload_file)


def test_push_sends_each_dataset_as_a_config_then_the_card(
    export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = HubRecorder(monkeypatch)
    assert (
        push_export(export, "me/kind-prefs", private=True) == "https://huggingface.co/datasets/me/kind-prefs"
    )
    [pushed] = hub.pushed  # this export has no sft folder
    assert pushed["repo_id"] == "me/kind-prefs" and pushed["rows"] == {"train": 24, "test": 6}
    assert (pushed["config_name"], pushed["data_dir"], pushed["private"]) == ("pairs", "data/pairs", True)
    [card] = hub.uploaded
    assert (card["repo_id"], card["path_in_repo"], card["repo_type"]) == (
        "me/kind-prefs",
        "README.md",
        "dataset",
    )
    assert "path: data/pairs/train-*.parquet" in card["text"]  # where push_to_hub put the files


def test_a_refused_push_is_one_line_with_the_fix(export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import DatasetDict
    from huggingface_hub.errors import LocalTokenNotFoundError

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise LocalTokenNotFoundError("Token is required (`token=True`), but no token found.")

    monkeypatch.setattr(DatasetDict, "push_to_hub", refuse)
    with pytest.raises(HubError, match=r"me/x: not logged in; run `huggingface-cli login` or set HF_TOKEN"):
        push_export(export, "me/x")
    with pytest.raises(HubError, match="no export in"):
        push_export(export.parent / "nothing", "me/x")


def test_rlaif_export_push_to_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rlaif_cli: Cli) -> None:
    """A run on the stub server, then `rlaif export CONFIG --push-to-hub REPO`: split, card and push."""
    from datasets import load_from_disk

    from rlaif.pipeline.run import run_pipeline
    from tests.support.stub import StubServer

    hub = HubRecorder(monkeypatch)
    with StubServer() as stub:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump({
            "run_dir": str(tmp_path / "run"),
            "prompts": {"path": str(EXAMPLES / "prompts.jsonl"), "limit": 8},
            "model": {"base_urls": [stub.base_url], "served_name": stub.served_name},
            "revise": {"rounds": 1},
            "export": {"test_fraction": 0.25, "license": "cc-by-4.0"},
        }))  # fmt: skip
        run_pipeline(load_config(config), stages=("respond", "revise", "judge"), quiet=True)
        result = rlaif_cli("export", str(config), "--quiet", "--push-to-hub", "me/kind-prefs")
    assert result.returncode == 0, result.stderr
    export = tmp_path / "run" / "export"
    pairs, sft = load_from_disk(str(export / "pairs")), load_from_disk(str(export / "sft"))
    assert list(pairs) == ["train", "test"] == list(sft)
    assert len(set(sft["test"]["prompt_id"])) == 2  # a quarter of the 8 prompts
    assert set(pairs["test"]["prompt_id"]) <= set(sft["test"]["prompt_id"])  # the same prompts held out
    assert [(p["config_name"], p["data_dir"]) for p in hub.pushed] == [
        ("pairs", "data/pairs"),
        ("sft", "data/sft"),
    ]
    assert "license: cc-by-4.0" in hub.uploaded[0]["text"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["files"]["hub"] == "https://huggingface.co/datasets/me/kind-prefs"
    bad = rlaif_cli("export", str(config), "--quiet", "--push-to-hub", "not a repo")
    assert (
        bad.returncode == 2
        and "export.push_to_hub" in bad.stderr
        and len(bad.stderr.strip().splitlines()) == 1
    )


@pytest.fixture
def rlaif_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    from tests.support.cli import run_cli

    monkeypatch.setenv("COLUMNS", "200")
    return run_cli(capsys, monkeypatch)


def test_the_docs_example_is_a_valid_config(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[3] / "docs/guides/generating.md").read_text(encoding="utf-8")
    section = page.split("## Datasets out", 1)[1].split("\n## ", 1)[0]
    # The page's loading snippet: the two local calls that
    # test_the_export_folder_stays_clean_after_filter_and_map makes.
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'load_dataset("runs/quickstart/export", "pairs")' in snippet
    assert 'load_from_disk("runs/quickstart/export/pairs", keep_in_memory=True)' in snippet
    settings = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "run.yaml").write_text("prompts: {path: p.jsonl}\n" + settings, encoding="utf-8")
    export = load_config(tmp_path / "run.yaml").export
    assert (export.test_fraction, export.seed, export.push_to_hub) == (0.1, 13, "me/kind-prefs")
