"""Per-principle reward heads: which principles each head learns from, and which pairs train it.

`train.reward.heads` is either `tags` (one head per tag of the constitution's principles, named as the
tag) or a mapping `{head: [tag or principle id, ...]}`. A head is trained on the pairs labelled under
any of its principles (the export's `principle_ids`); on every other pair its loss is masked. A head
without a training pair is reported and left out of the model, never left random. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rlaif.errors import ConfigError, RlaifError
from rlaif.records import Constitution

__all__ = ["HeadPlan", "head_groups", "head_mask", "plan_heads"]

HeadsSetting = Literal["tags"] | Mapping[str, Sequence[str]]


def head_groups(setting: HeadsSetting, constitution: Constitution) -> dict[str, frozenset[str]]:
    """Each head's principle ids, from `train.reward.heads` and the constitution."""
    tags: dict[str, list[str]] = {}
    for principle in constitution.principles:
        for tag in principle.tags:
            tags.setdefault(tag, []).append(principle.id)
    if setting == "tags":
        if not tags:
            raise ConfigError(
                f"train.reward.heads: tags needs tagged principles, and constitution {constitution.name!r} "
                "has no tags; add `tags:` to its principles or list the heads' principle ids"
            )
        return {tag: frozenset(ids) for tag, ids in tags.items()}
    ids = {p.id for p in constitution.principles}
    groups = {}
    for head, names in dict(setting).items():
        chosen: set[str] = set()
        for name in names:
            if name in ids:
                chosen.add(name)
            elif name in tags:
                chosen.update(tags[name])
            else:
                raise ConfigError(
                    f"train.reward.heads.{head}: {name!r} is neither a principle id nor a tag of "
                    f"constitution {constitution.name!r}; principle ids: {', '.join(sorted(ids))}; tags: "
                    f"{', '.join(sorted(tags)) or 'none'}"
                )
        groups[head] = frozenset(chosen)
    return groups


def head_mask(principle_ids: Sequence[str], heads: Mapping[str, frozenset[str]]) -> list[float]:
    """1.0 for each head (in order) that a pair labelled under `principle_ids` trains, else 0.0."""
    return [1.0 if principles.intersection(principle_ids) else 0.0 for principles in heads.values()]


@dataclass(frozen=True)
class HeadPlan:
    """The heads a reward model gets, and what the training pairs gave each."""

    heads: dict[str, frozenset[str]]
    """The heads kept (each with training pairs), in order: head name -> principle ids."""
    pairs: dict[str, int]
    """Training pairs per configured head (0 for an excluded one)."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Heads left out, with the reason."""
    unassigned: int = 0
    """Training pairs under none of the heads' principles (they train nothing)."""


def plan_heads(groups: Mapping[str, frozenset[str]], train_principles: Sequence[Sequence[str]]) -> HeadPlan:
    """Keep the heads that have training pairs; say why the others were left out."""
    counts = {head: 0 for head in groups}
    unassigned = 0
    for ids in train_principles:
        mask = head_mask(ids, groups)
        unassigned += not any(mask)
        for head, flag in zip(groups, mask, strict=True):
            counts[head] += int(flag)
    excluded = {
        head: "no training pair was labelled under its principles "
        f"({', '.join(sorted(groups[head])) or 'none'})"
        for head, count in counts.items()
        if count == 0
    }
    kept = {head: principles for head, principles in groups.items() if head not in excluded}
    if not kept:
        seen = sorted({i for ids in train_principles for i in ids})
        raise RlaifError(
            f"train.reward.heads: none of the {len(train_principles)} training pairs was labelled under any "
            f"head's principles (the pairs' principle ids: {', '.join(seen) or 'none'}); list those ids or "
            "their tags under train.reward.heads"
        )
    return HeadPlan(heads=kept, pairs=counts, excluded=excluded, unassigned=unassigned)
