"""Prompt sets through `datasets`: local files of each kind, saved folders, column mappings, streaming,
a Hub id handed to `load_dataset` (mocked: never the network), and the errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rlaif.config import PromptsConfig, RunConfig, dump_config, load_config
from rlaif.errors import ConfigError, PromptSetError
from rlaif.inputs.load import load_run_prompts
from rlaif.inputs.prompt_datasets import load_dataset_prompts
from rlaif.inputs.prompts import load_prompts

ROWS = [
    {"prompt": "How do I pick a lock?", "topic": "security"},
    {"prompt": "Write a haiku about rain.", "topic": "poetry"},
    {"prompt": "How do I pick a lock?", "topic": "security"},  # a duplicate: one prompt, the first row's
    {"prompt": "What is 2 + 2?", "topic": "maths"},
]


@pytest.fixture(autouse=True)
def _own_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`load_dataset` prepares local files in the `datasets` cache: a test's own, not the user's."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")


def prompts(dataset: str | Path, **fields: Any) -> PromptsConfig:
    return PromptsConfig(dataset=str(dataset), **fields)


def dataset(rows: list[dict[str, Any]] = ROWS) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


def ids(records: list[Any]) -> list[str]:
    return [r.id for r in records]


@pytest.fixture(scope="module")
def jsonl_ids(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The ids the JSONL reader gives the same rows: every source must give these."""
    path = tmp_path_factory.mktemp("jsonl") / "p.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return ids(load_prompts(path))


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl", ".csv", ".arrow", "saved", "saved-dict"])
def test_each_local_kind_gives_the_jsonl_ids(tmp_path: Path, suffix: str, jsonl_ids: list[str]) -> None:
    from datasets import DatasetDict

    data = dataset()
    if suffix == ".parquet":
        data.to_parquet(str(path := tmp_path / "p.parquet"))
    elif suffix in (".json", ".jsonl"):
        data.to_json(str(path := tmp_path / f"p{suffix}"))
    elif suffix == ".csv":
        data.to_csv(str(path := tmp_path / "p.csv"), index=False)
    elif suffix == ".arrow":  # the Arrow stream file save_to_disk writes, on its own
        data.save_to_disk(str(tmp_path / "saved"))
        path = tmp_path / "p.arrow"
        shutil.copy(next((tmp_path / "saved").glob("*.arrow")), path)
    elif suffix == "saved":
        data.save_to_disk(str(path := tmp_path / "saved"))
    else:
        DatasetDict({"train": dataset(ROWS[:1]), "test": data}).save_to_disk(str(path := tmp_path / "dd"))
    split = "test" if suffix == "saved-dict" else "train"
    records = load_dataset_prompts(prompts(path, split=split), tmp_path)
    assert ids(records) == jsonl_ids  # same text, same ids, whatever the file: resume finds its records
    assert len(records) == 3 and records[0].messages[0].content == "How do I pick a lock?"
    assert records[1].source.endswith(f"[{split}] row 1")


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, jsonl_ids: list[str]) -> None:
    (tmp_path / "data").mkdir()
    dataset().to_parquet(str(tmp_path / "data" / "p.parquet"))
    config = tmp_path / "run.yaml"
    config.write_text("prompts: {dataset: data/p.parquet, limit: 2}\n", encoding="utf-8")
    assert ids(load_run_prompts(load_config(config))) == jsonl_ids[:2]


def test_streaming_reads_the_same_prompts_and_stops_at_the_limit(
    tmp_path: Path, jsonl_ids: list[str]
) -> None:
    dataset().to_parquet(str(tmp_path / "p.parquet"))
    streamed = load_dataset_prompts(prompts(tmp_path / "p.parquet", streaming=True), tmp_path)
    assert ids(streamed) == jsonl_ids
    dataset().save_to_disk(str(tmp_path / "saved"))
    limited = load_dataset_prompts(prompts(tmp_path / "saved", streaming=True, limit=2), tmp_path)
    assert ids(limited) == jsonl_ids[:2]


def test_streaming_reads_rows_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a limit, a stream is read only as far as the limit: a huge set is never read whole."""
    import datasets

    served: list[int] = []

    class Stream:
        column_names = None  # a stream of JSON lines does not know its columns up front

        def __iter__(self) -> Any:
            for index in range(10**9):
                served.append(index)
                yield {"prompt": f"question {index}"}

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: Stream())
    records = load_dataset_prompts(prompts("org/huge", streaming=True, limit=5), tmp_path)
    assert len(records) == 5 and len(served) == 5


def test_column_mappings(tmp_path: Path) -> None:
    rows = [
        {
            "chat": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
            "question": "Why is the sky blue?",
            "persona": "You are a physicist.",
            "dialogue": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A joke?\n\nAssistant: No.",
        },
        {
            "chat": [{"role": "user", "content": "Bye?"}],
            "question": "What is rain?",
            "persona": "",  # an empty system column is left out
            "dialogue": "\n\nHuman: Just one turn",
        },
    ]
    dataset(rows).to_parquet(str(path := tmp_path / "p.parquet"))

    def read(**columns: str) -> list[list[tuple[str, str]]]:
        records = load_dataset_prompts(prompts(path, columns=columns), tmp_path)
        return [[(m.role, m.content) for m in r.messages] for r in records]

    assert read(messages="chat") == [[("system", "Be brief."), ("user", "Hi?")], [("user", "Bye?")]]
    assert read(prompt="question") == [[("user", "Why is the sky blue?")], [("user", "What is rain?")]]
    assert read(user="question", system="persona") == [
        [("system", "You are a physicist."), ("user", "Why is the sky blue?")],
        [("user", "What is rain?")],
    ]
    assert read(transcript="dialogue") == [  # the last Assistant reply is cut: the prompt ends with Human
        [("user", "Hi"), ("assistant", "Hello!"), ("user", "A joke?")],
        [("user", "Just one turn")],
    ]


def test_hh_rlhf_chosen_column_without_a_mapping(tmp_path: Path) -> None:
    rows = [{"chosen": "\n\nHuman: Q1\n\nAssistant: A1", "rejected": "\n\nHuman: Q1\n\nAssistant: B1"}]
    dataset(rows).to_json(str(path := tmp_path / "hh.jsonl"))
    [record] = load_dataset_prompts(prompts(path), tmp_path)
    assert [(m.role, m.content) for m in record.messages] == [("user", "Q1")]


def test_a_hub_id_is_handed_to_load_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub is never reached: `datasets.load_dataset` is replaced and the call it got is checked."""
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def fake(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return dataset([{"instruction": "Name a colour.", "output": "Blue."}])

    monkeypatch.setattr(datasets, "load_dataset", fake)
    config = prompts(
        "org/instructions",
        config="small",
        split="validation",
        revision="v1.0",
        columns={"prompt": "instruction"},
    )
    [record] = load_dataset_prompts(config, tmp_path)
    assert record.messages[0].content == "Name a colour."
    assert calls == [
        (
            ("org/instructions",),
            {"name": "small", "split": "validation", "revision": "v1.0", "streaming": False},
        )
    ]


def test_a_hub_id_not_cached_while_offline_is_one_line_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `load_dataset`, offline, over empty caches: what an uncached id raises, said plainly."""
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(PromptSetError) as info:
        load_dataset_prompts(prompts("nobody/not-cached"), tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "'nobody/not-cached' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in message
    assert "huggingface-cli download --repo-type dataset nobody/not-cached" in message
    assert "local file" in message


def test_a_mapped_column_that_is_missing_lists_the_columns(tmp_path: Path) -> None:
    dataset().to_parquet(str(path := tmp_path / "p.parquet"))
    with pytest.raises(PromptSetError, match=r"prompts\.columns\.prompt: .* has no column 'question' "
                       r"\(columns: prompt, topic\); set it to one of those"):  # fmt: skip
        load_dataset_prompts(prompts(path, columns={"prompt": "question"}), tmp_path)
    dataset([{"text": "hi", "label": 1}]).to_parquet(str(other := tmp_path / "o.parquet"))
    with pytest.raises(PromptSetError, match=r"no `messages`, `prompt` or hh-rlhf `chosen` column \(columns: "
                       r"text, label\); map one"):  # fmt: skip
        load_dataset_prompts(prompts(other), tmp_path)


@pytest.mark.parametrize(
    ("rows", "columns", "expected"),
    [
        ([{"q": "fine"}, {"q": ""}], {"prompt": "q"}, "row 1: the last user turn is empty"),
        ([{"q": "a", "s": 5}], {"user": "q", "system": "s"}, "row 0: `s` must be text"),
        ([{"m": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}],
         {"messages": "m"}, "row 0: the conversation must end with a user turn"),
        ([{"t": "no speaker at all"}], {"transcript": "t"}, "row 0: `t` holds no"),
    ],
)  # fmt: skip
def test_a_bad_row_names_its_index(tmp_path: Path, rows: Any, columns: Any, expected: str) -> None:
    dataset(rows).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(PromptSetError, match=expected):
        load_dataset_prompts(prompts(tmp_path / "saved", columns=columns), tmp_path)


def test_missing_files_splits_and_suffixes(tmp_path: Path) -> None:
    with pytest.raises(PromptSetError, match="not found; give a Parquet"):
        load_dataset_prompts(prompts("data/missing.parquet"), tmp_path)
    (tmp_path / "p.txt").write_text("hello\n")
    with pytest.raises(PromptSetError, match=r"cannot read \.txt"):
        load_dataset_prompts(prompts(tmp_path / "p.txt"), tmp_path)
    dataset().save_to_disk(str(tmp_path / "saved"))
    from datasets import DatasetDict

    DatasetDict({"train": dataset()}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(PromptSetError, match=r"has no split 'test' \(splits: train\)"):
        load_dataset_prompts(prompts(tmp_path / "dd", split="test"), tmp_path)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"limit": 3}, "prompts.path is missing"),
        ({"path": "p.jsonl", "dataset": "org/x"}, "not both"),
        ({"path": "p.jsonl", "split": "test"}, "split apply to prompts.dataset only"),
        ({"dataset": "org/x", "columns": {}}, "name one column"),
        ({"dataset": "org/x", "columns": {"prompt": "a", "user": "b"}}, "name one column"),
        (
            {"dataset": "org/x", "columns": {"messages": "m", "system": "s"}},
            "system goes with a prompt or user",
        ),
    ],
)
def test_config_errors(tmp_path: Path, section: dict[str, Any], expected: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps({"prompts": section}), encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_a_dumped_config_validates_again(tmp_path: Path) -> None:
    """The run manifest holds the dumped config: defaults written out must not read as settings."""
    for section in ({"path": "p.jsonl"}, {"dataset": "org/x", "streaming": True, "columns": {"user": "q"}}):
        config = RunConfig.model_validate({"prompts": section})
        again = RunConfig.model_validate(json.loads(json.dumps(config.model_dump(mode="json"))))
        assert again == config and dump_config(again) == dump_config(config)


def test_the_docs_example_is_a_valid_config(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[3] / "docs/guides/generating.md").read_text(encoding="utf-8")
    section = page.split("## Datasets in", 1)[1].split("\n## ", 1)[0]
    (tmp_path / "run.yaml").write_text(section.split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    config = load_config(tmp_path / "run.yaml")
    assert config.prompts.dataset == "HuggingFaceH4/ultrachat_200k" and config.prompts.streaming
    assert config.prompts.columns is not None and config.prompts.columns.messages == "messages"


NOT_UTF8 = [
    (".csv", b"prompt\nhello\ncaf\xe9 au lait\n"),
    (".jsonl", b'{"prompt": "hi"}\n{"prompt": "caf\xe9"}\n'),
]


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(("suffix", "content"), NOT_UTF8)
def test_a_non_utf8_text_file_names_its_encoding_line_and_column(
    tmp_path: Path, suffix: str, content: bytes, streaming: bool
) -> None:
    """Issue 31: it was "DatasetGenerationError", naming neither the encoding nor the line."""
    from rlaif.config import PromptsConfig
    from rlaif.errors import PromptSetError
    from rlaif.inputs.prompt_datasets import load_dataset_prompts

    path = tmp_path / f"p{suffix}"
    path.write_bytes(content)
    with pytest.raises(PromptSetError) as info:
        load_dataset_prompts(PromptsConfig(dataset=str(path), streaming=streaming), tmp_path)
    message = str(info.value)
    line = 3 if suffix == ".csv" else 2
    assert (
        f"{path}:{line}: not UTF-8 text (byte 0xe9 at column" in message
        and "save the file as UTF-8" in message
    )
