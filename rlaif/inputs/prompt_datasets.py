"""Prompt sets from `datasets`: a Hub id, a local Parquet/JSON/CSV/Arrow file or a `save_to_disk` folder.

Rows are read one at a time (an Arrow table is memory-mapped; `streaming` reads as it downloads), turned
into conversations by `prompts.columns` (or by the JSONL reader's rules when unset) and kept as
`PromptRecord`s whose ids hash the conversation alone, so the same rows give the same ids wherever they
were read from, and a resumed run finds its records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.config import PromptColumns, PromptsConfig
from rlaif.errors import PromptSetError
from rlaif.inputs.prompts import PromptCollector, messages_from_row, parse_transcript, problem
from rlaif.records import Message, PromptRecord

__all__ = ["load_dataset_prompts", "open_dataset"]

BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv", ".arrow": "arrow"}
"""File suffix → the `datasets` builder that reads it."""
SAVED = ("dataset_info.json", "state.json", "dataset_dict.json")
"""Files that mark a folder written by `save_to_disk`."""


def load_dataset_prompts(
    prompts: PromptsConfig, base_dir: str | Path, keep: Callable[[str], bool] | None = None
) -> list[PromptRecord]:
    """The prompt set `prompts.dataset` names, converted by `prompts.columns`, first `prompts.limit` only;
    `keep(id)`: hold only those prompts (a worker's share, `PromptCollector`).

    Raises:
        PromptSetError: the dataset cannot be found or read, a mapped column is missing (the message lists
            the columns present), or a row holds no usable conversation (the message names the row).
    """
    assert prompts.dataset is not None
    name = prompts.dataset
    rows, columns = open_dataset(prompts, base_dir)
    if columns is not None:
        _check_columns(name, prompts.columns, columns)
    collector = PromptCollector(prompts.limit, keep)
    for index, row in enumerate(rows):
        if index == 0 and columns is None:  # a stream may not know its columns before the first row
            _check_columns(name, prompts.columns, list(row))
        where = f"{name} [{prompts.split}] row {index}"
        try:
            done = collector.add(_conversation(row, prompts.columns), where)
        except (ValueError, ValidationError) as exc:
            raise PromptSetError(f"{where}: {problem(exc)}") from None
        if done:
            break
    if not collector.seen:
        raise PromptSetError(f"{name} [{prompts.split}]: no prompts found; the split is empty")
    return list(collector.records.values())


def open_dataset(
    prompts: PromptsConfig, base_dir: str | Path
) -> tuple[Iterable[dict[str, Any]], list[str] | None]:
    """The rows of `prompts.dataset` (lazily) and its column names (None when a stream does not say)."""
    from datasets import DatasetDict, IterableDatasetDict, load_dataset, load_from_disk

    assert prompts.dataset is not None
    local = Path(prompts.dataset).expanduser()
    local = local if local.is_absolute() else Path(base_dir) / local
    try:
        if local.is_dir() and any((local / marker).is_file() for marker in SAVED):
            loaded: Any = load_from_disk(str(local))
            if isinstance(loaded, DatasetDict):
                loaded = _split(loaded, prompts.split, prompts.dataset)
            if prompts.streaming:
                loaded = loaded.to_iterable_dataset()
        elif local.is_file():
            builder = BUILDERS.get(local.suffix.lower())
            if builder is None:
                raise PromptSetError(
                    f"prompts.dataset {local}: cannot read {local.suffix or 'a file without a suffix'}; "
                    f"give a {', '.join(sorted(BUILDERS))} file, a saved dataset folder or a Hub id"
                )
            loaded = load_dataset(
                builder,
                data_files={prompts.split: str(local)},
                split=prompts.split,
                streaming=prompts.streaming,
            )
        elif local.is_dir():  # a folder of data files (a Hub repo's clone, say): datasets finds them
            loaded = load_dataset(
                str(local), name=prompts.config, split=prompts.split, streaming=prompts.streaming
            )
        elif _looks_local(prompts.dataset):
            raise PromptSetError(
                f"prompts.dataset {local} not found; give a Parquet, JSON, "
                "JSONL, CSV or Arrow file, a folder written by save_to_disk, or a Hub id like org/name"
            )
        else:
            loaded = load_dataset(
                prompts.dataset, name=prompts.config, split=prompts.split, revision=prompts.revision,
                streaming=prompts.streaming,
            )  # fmt: skip
    except PromptSetError:
        raise
    except Exception as exc:  # noqa: BLE001 (datasets raises many kinds; each becomes one line below)
        raise PromptSetError(_encoding_problem(local) or _explain(prompts, exc)) from None
    if isinstance(loaded, DatasetDict | IterableDatasetDict):  # a loader that ignored `split`
        loaded = _split(loaded, prompts.split, prompts.dataset)
    columns = loaded.column_names
    return _rows(loaded, local), (list(columns) if columns is not None else None)


def _encoding_problem(local: Path) -> str | None:
    """For a local text file (CSV, JSON, JSONL) that is not UTF-8: the line, column and byte, and the
    fix (datasets said only "DatasetGenerationError"). Read only after a failure, so a good file costs
    nothing."""
    from rlaif.inputs.jsonl import utf8_position

    if not local.is_file() or BUILDERS.get(local.suffix.lower()) not in ("csv", "json"):
        return None
    try:
        with local.open("rb") as handle:
            line, column, byte = utf8_position(handle)
    except OSError:
        return None
    if not line:
        return None
    return (
        f"prompts.dataset {local}:{line}: not UTF-8 text (byte {byte:#04x} at column {column}); save the "
        "file as UTF-8 (in a spreadsheet: Save As, 'CSV UTF-8')"
    )


BATCH = 1024
"""Rows converted from Arrow at a time."""


def _rows(dataset: Any, local: Path | None = None) -> Iterator[dict[str, Any]]:
    # Errors while reading (a corrupt shard, a dropped connection) are the dataset's, not a traceback.
    try:
        if hasattr(dataset, "with_format"):
            # Arrow batches to Python in one call: `datasets`' own row iterator formats each row
            # separately, which took 10 of the 18 s of reading 40k prompts.
            for batch in dataset.with_format("arrow").iter(batch_size=BATCH):
                yield from batch.to_pylist()
        else:
            yield from dataset
    except Exception as exc:  # noqa: BLE001 (a streamed file fails here, in datasets' own error kinds)
        said = _encoding_problem(local) if local is not None else None
        if said is None and not isinstance(exc, OSError | ValueError):
            raise
        raise PromptSetError(said or f"cannot read the prompt dataset: {type(exc).__name__}: {exc}") from None


def _split(loaded: Any, split: str, name: str) -> Any:
    if split not in loaded:
        raise PromptSetError(
            f"prompts.split: {name} has no split {split!r} (splits: {', '.join(loaded)}); set prompts.split"
        )
    return loaded[split]


def _looks_local(name: str) -> bool:
    """A name that can only be a path, never a Hub id (`org/name`, or a canonical `name`)."""
    return (
        name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or "\\" in name
        or Path(name).suffix.lower() in BUILDERS
    )


def _explain(prompts: PromptsConfig, exc: Exception) -> str:
    """One line for a failure to load `prompts.dataset`, with the fix."""
    from datasets import config as datasets_config
    from datasets.exceptions import DatasetNotFoundError

    name, kind = prompts.dataset, type(exc).__name__
    offline = datasets_config.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
    download = f"`huggingface-cli download --repo-type dataset {name}`"
    if isinstance(exc, ConnectionError) and offline:
        return (
            f"prompts.dataset {name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            f"download it first ({download}, or load_dataset while online) or point prompts.dataset at a "
            "local file"
        )
    if isinstance(exc, ConnectionError):
        return (
            f"prompts.dataset {name!r}: cannot reach the Hugging Face Hub ({exc}); check the network, or "
            f"download it where there is one ({download}) and point prompts.dataset at a local file"
        )
    if isinstance(exc, DatasetNotFoundError):
        return (
            f"prompts.dataset {name!r}: {exc} Check the id (and prompts.revision), log in for a private or "
            "gated set (`huggingface-cli login`), or give a local file"
        )
    if isinstance(exc, ValueError) and "BuilderConfig" in str(exc):
        return f"prompts.config {prompts.config!r} of {name!r}: {exc}; set prompts.config to one of those"
    if isinstance(exc, ValueError) and "split" in str(exc).lower():
        return f"prompts.split {prompts.split!r} of {name!r}: {exc}; set prompts.split"
    return f"prompts.dataset {name!r}: cannot load it ({kind}: {exc}); check the file or the Hub id"


def _check_columns(name: str, mapping: PromptColumns | None, present: list[str]) -> None:
    listed = ", ".join(present) or "none"
    if mapping is None:
        if not {"messages", "prompt", "chosen"} & set(present):
            raise PromptSetError(
                f"prompts.columns: {name} has no `messages`, `prompt` or hh-rlhf `chosen` column "
                f"(columns: {listed}); map one, e.g. prompts.columns: {{prompt: COLUMN}} "
                "or {user: COLUMN, system: COLUMN}"
            )
        return
    for key, column in mapping.model_dump(exclude_none=True).items():
        if column not in present:
            raise PromptSetError(
                f"prompts.columns.{key}: {name} has no column {column!r} (columns: {listed}); "
                "set it to one of those"
            )


def _conversation(row: dict[str, Any], mapping: PromptColumns | None) -> list[Message]:
    """The conversation of one row; ValueError says what is wrong with it."""
    if mapping is None:
        return messages_from_row(row)
    if mapping.messages:
        return messages_from_row({"messages": row[mapping.messages]})
    if mapping.transcript:
        text = row[mapping.transcript]
        if not isinstance(text, str):
            raise ValueError(f"`{mapping.transcript}` must be an hh-rlhf transcript (text)")
        messages = parse_transcript(text)
        if messages and messages[-1].role == "assistant":  # the reply being judged, not the prompt
            messages = messages[:-1]
        if not messages:
            raise ValueError(f"`{mapping.transcript}` holds no `\\n\\nHuman:` turn")
        return messages_from_row({"messages": [m.model_dump() for m in messages]})
    column = mapping.prompt or mapping.user
    assert column is not None
    value = row[column]
    if mapping.user and not isinstance(value, str):
        raise ValueError(f"`{column}` must be text (got {type(value).__name__})")
    messages = messages_from_row({"prompt": value})
    system = row[mapping.system] if mapping.system else None
    if system is not None and not isinstance(system, str):
        raise ValueError(f"`{mapping.system}` must be text (got {type(system).__name__})")
    if system and system.strip() and messages[0].role != "system":
        messages.insert(0, Message(role="system", content=system))
    return messages
