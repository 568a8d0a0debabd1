"""Push an export to the Hugging Face Hub: each dataset as a config of one dataset repo, then the card.

`DatasetDict.push_to_hub` uploads each split as Parquet under `data/NAME/`, the paths the card's
`configs` name, and writes a README of its own; the export's card then replaces that README, so the
Hub shows the same metadata, counts and examples as the local folder.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.errors import HubError
from rlaif.pipeline.dataset_card import split_counts

__all__ = ["push_export"]


def push_export(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Push the export in `folder` (its `pairs` and `sft` datasets, and README.md) to the dataset repo
    `repo_id`; returns the repo's URL.

    Raises:
        HubError: no login, no write access, offline, or the Hub failed; the message says what to do.
    """
    from datasets import load_from_disk
    from huggingface_hub import HfApi

    names = list(dict.fromkeys(name for name, _, _ in split_counts(folder)))
    if not names or not (folder / "README.md").is_file():
        raise HubError(f"no export in {folder} to push; run `rlaif export CONFIG` first")
    try:
        for name in names:
            # Memory-mapped and pushed shard by shard: nothing is cached into the export folder.
            load_from_disk(str(folder / name)).push_to_hub(
                repo_id, config_name=name, data_dir=f"data/{name}", set_default=name == names[0],
                private=private, commit_message=f"{name} splits (rlaif export)",
            )  # fmt: skip
        HfApi().upload_file(
            path_or_fileobj=str(folder / "README.md"), path_in_repo="README.md", repo_id=repo_id,
            repo_type="dataset", commit_message="Dataset card (rlaif export)",
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 (huggingface_hub raises many kinds; each becomes one line)
        raise HubError(_explain(repo_id, exc)) from None
    return f"https://huggingface.co/datasets/{repo_id}"


def _explain(repo_id: str, exc: Exception) -> str:
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    where = f"cannot push the export to the Hub repo {repo_id}"
    if isinstance(exc, LocalTokenNotFoundError):
        return f"{where}: not logged in; run `huggingface-cli login` or set HF_TOKEN, then export again"
    if isinstance(exc, OfflineModeIsEnabled):
        return f"{where}: HF_HUB_OFFLINE is set; unset it to push (the export on disk is complete)"
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return (
                f"{where}: the Hub refused (HTTP {status}); log in with a token that may write to {repo_id} "
                "(`huggingface-cli login`, or HF_TOKEN)"
            )
        return f"{where}: the Hub answered HTTP {status} ({exc}); try again later"
    if isinstance(exc, ConnectionError | OSError):
        return f"{where}: the Hub cannot be reached ({type(exc).__name__}: {exc}); check the network"
    return f"{where} ({type(exc).__name__}: {exc})"
