"""TRL's RewardTrainer with one score per head: the smallest extension that trains reward heads.

TRL builds the one-label sequence-classification model (seeded, so the head is reproducible); we widen
its `score` layer to one output per head and name the outputs in the config (`id2label`), so the saved
folder loads with `AutoModelForSequenceClassification` as an H-label model. Each row carries a
`head_mask`; `compute_loss` is the masked Bradley–Terry loss (`reward_math.masked_pair_loss`), and the
logged metrics add each head's training accuracy (`accuracy/HEAD`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from rlaif.train.reward_math import masked_pair_loss

__all__ = ["HeadsRewardTrainer"]


class _HeadCollator(DataCollatorForPreference):
    """TRL's preference collator, plus the rows' `head_mask` as a (pairs, heads) tensor."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        output["head_mask"] = torch.tensor([e["head_mask"] for e in examples], dtype=torch.float)
        return output


class HeadsRewardTrainer(RewardTrainer):  # type: ignore[misc]
    """`RewardTrainer` over rows with a `head_mask` column (one flag per head, in `heads` order)."""

    def __init__(self, *, heads: Sequence[str], **kwargs: Any) -> None:
        tokenizer = kwargs["processing_class"]
        kwargs.setdefault("data_collator", _HeadCollator(pad_token_id=tokenizer.pad_token_id))
        super().__init__(**kwargs)
        self.heads = list(heads)
        model = self.model
        old = model.score
        # TRL seeded before building the model, so this draw is reproducible too.
        head = torch.nn.Linear(old.in_features, len(self.heads), bias=False).to(old.weight)
        torch.nn.init.normal_(head.weight, std=getattr(model.config, "initializer_range", 0.02))
        model.score = head
        model.config.num_labels = len(self.heads)
        model.config.id2label = dict(enumerate(self.heads))
        model.config.label2id = {name: i for i, name in enumerate(self.heads)}

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "head_mask"]

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        mode = "train" if self.model.training else "eval"
        mask = inputs.pop("head_mask")
        margin = inputs.pop("margin", None)
        outputs = model(**inputs, use_cache=False)
        chosen, rejected = torch.chunk(outputs.logits, chunks=2)
        loss = masked_pair_loss(chosen, rejected, mask, margin)
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
        with torch.no_grad():
            right = (chosen > rejected).float() * mask
            if mask.sum() > 0:
                self._metrics[mode]["accuracy"].append(float(right.sum() / mask.sum()))
                self._metrics[mode]["margin"].append(float(((chosen - rejected) * mask).sum() / mask.sum()))
            for index, name in enumerate(self.heads):
                count = mask[:, index].sum()
                if count > 0:  # a head with no pair in this batch has no accuracy here, not 0
                    self._metrics[mode][f"accuracy/{name}"].append(float(right[:, index].sum() / count))
        return (loss, outputs) if return_outputs else loss
