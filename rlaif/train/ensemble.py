"""A reward-model ensemble on disk: K member folders and a manifest, `ensemble.json`.

```
output_dir/
  ensemble.json     members, heads, seeds, whether each member saw a bootstrap resample
  README.md         the ensemble's card (each member's and the ensemble's held-out accuracy)
  tokenizer files   shared by every member
  member-0/ ...     a complete reward model folder each (model, tokenizer, card)
```
A single reward model folder has no manifest; `RewardScorer.load` reads either. No torch here.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from rlaif.errors import RlaifError

__all__ = ["MANIFEST", "MAX_MEMBERS", "EnsembleManifest", "member_dir", "read_manifest", "write_manifest"]

MANIFEST = "ensemble.json"
MAX_MEMBERS = 16
"""More members than this multiplies training time and memory for a vanishing gain in the estimate."""


class EnsembleManifest(BaseModel):
    """What `ensemble.json` says."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    format_version: int = 1
    """Layout version of the ensemble folder."""
    members: list[str]
    """Member folders, relative to the ensemble folder."""
    heads: list[str]
    """Every member's heads, in output order (`["reward"]` for one scalar head)."""
    seeds: list[int]
    """Each member's training seed."""
    bootstrap: bool
    """Whether each member trained on its own bootstrap resample of the training pairs."""


def member_dir(root: Path, index: int) -> Path:
    """Where member `index` of the ensemble at `root` goes."""
    return root / f"member-{index}"


def write_manifest(root: Path, manifest: EnsembleManifest) -> Path:
    from rlaif.store import write_atomic

    path = root / MANIFEST
    write_atomic(path, manifest.model_dump_json(indent=2) + "\n")
    return path


def read_manifest(root: Path) -> EnsembleManifest | None:
    """The manifest of the ensemble at `root`; None when `root` is a single model (no manifest)."""
    path = root / MANIFEST
    if not path.exists():
        return None
    try:
        return EnsembleManifest.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise RlaifError(
            f"{path}: not a valid ensemble manifest ({first}); retrain the ensemble with `rlaif train reward`"
        ) from None
