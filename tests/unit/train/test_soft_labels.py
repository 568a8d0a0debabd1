"""Soft labels in DPO: the per-pair loss against its closed form, and no pull from a coin-flip pair."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rlaif.errors import ConfigError
from rlaif.train.dpo import _PerPairFunctional, check_soft_labels, soft_logsigmoid


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


@pytest.mark.parametrize("x", [-2.0, -0.3, 0.0, 0.7, 3.0])
@pytest.mark.parametrize("p", [0.5, 0.6, 0.9, 1.0])
def test_the_loss_is_the_closed_form(x: float, p: float) -> None:
    logits, labels = torch.tensor([x]), torch.tensor([p])
    eps = 1 - p
    smoothing = -soft_logsigmoid(logits, labels, "smoothing").item()
    assert smoothing == pytest.approx(-(1 - eps) * log_sigmoid(x) - eps * log_sigmoid(-x), rel=1e-6)
    weight = -soft_logsigmoid(logits, labels, "weight").item()
    assert weight == pytest.approx(-(2 * p - 1) * log_sigmoid(x), rel=1e-6, abs=1e-9)
    assert -soft_logsigmoid(logits, labels, "off").item() == pytest.approx(-log_sigmoid(x), rel=1e-6)


def test_a_sure_pair_is_plain_dpo() -> None:
    x = torch.tensor([-1.0, 0.2, 2.5])
    sure = torch.ones(3)
    for mode in ("smoothing", "weight"):
        assert torch.allclose(soft_logsigmoid(x, sure, mode), torch.nn.functional.logsigmoid(x))  # type: ignore[arg-type]


def test_a_coin_flip_pair_gives_no_gradient_at_the_reference() -> None:
    """At the start of training the policy is the reference: Δ = 0 for every pair."""
    for mode in ("smoothing", "weight"):
        x = torch.zeros(2, requires_grad=True)
        labels = torch.tensor([0.5, 1.0])
        (-soft_logsigmoid(x, labels, mode).mean()).backward()  # type: ignore[arg-type]
        assert x.grad is not None
        assert x.grad[0].item() == 0.0  # the coin flip
        assert x.grad[1].item() < 0  # the sure pair pushes the margin up
    # With weights, a coin flip never pulls, wherever the policy is.
    x = torch.tensor([1.7, -0.4], requires_grad=True)
    (-soft_logsigmoid(x, torch.tensor([0.5, 0.5]), "weight").sum()).backward()
    assert torch.equal(x.grad, torch.zeros(2))  # type: ignore[arg-type]


def test_the_per_pair_functional_refuses_a_shape_it_does_not_expect() -> None:
    functional = _PerPairFunctional(torch.tensor([0.9, 0.6]), "smoothing")
    assert functional.relu is torch.nn.functional.relu  # everything else is torch's own
    functional.logsigmoid(torch.zeros(2))
    assert functional.calls == 1
    with pytest.raises(RuntimeError, match=r"\(3,\) values for 2 pairs"):
        functional.logsigmoid(torch.zeros(3))


@pytest.mark.parametrize(
    ("loss_type", "divergence", "weighting"),
    [
        (["ipo"], "reverse_kl", False),
        (["sigmoid", "sft"], "reverse_kl", False),
        (["sigmoid"], "js_divergence", False),
        (["sigmoid"], "reverse_kl", True),
    ],
)
def test_a_loss_soft_labels_cannot_enter_is_one_clear_error(
    loss_type: list[str], divergence: str, weighting: bool
) -> None:
    config = SimpleNamespace(loss_type=loss_type, f_divergence_type=divergence, use_weighting=weighting)
    with pytest.raises(
        ConfigError, match="train.dpo.soft_labels: smoothing works with the standard DPO loss"
    ):
        check_soft_labels(config, "smoothing")
    check_soft_labels(config, "off")
    standard = SimpleNamespace(loss_type=["sigmoid"], f_divergence_type="reverse_kl", use_weighting=False)
    check_soft_labels(standard, "weight")


# --- use_liger_kernel with soft labels: works in TRL 1.16, refused before the model loads otherwise ---


def _liger(installed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return (object() if installed else None) if name == "liger_kernel" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_liger_with_soft_labels_passes_where_trl_keeps_its_own_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import DPOTrainer, KTOTrainer

    from rlaif.train.common import check_liger

    _liger(True, monkeypatch)
    on = SimpleNamespace(use_liger_kernel=True, liger_kernel_config=None)
    # TRL 1.16 applies Liger's layer kernels only; the loss (where p_chosen enters) stays TRL's.
    check_liger(on, "dpo", soft_labels="smoothing", trainer=DPOTrainer)
    check_liger(on, "kto", soft_labels="weight", trainer=KTOTrainer)

    class FusedLoss(DPOTrainer):  # type: ignore[misc]
        def _compute_loss(self, model: object, inputs: object, return_outputs: bool) -> object:
            return self.liger_dpo_loss(model, inputs)  # type: ignore[attr-defined]

    with pytest.raises(
        ConfigError, match=r"train.dpo.soft_labels: smoothing cannot enter the fused Liger loss"
    ):
        check_liger(on, "dpo", soft_labels="smoothing", trainer=FusedLoss)
    check_liger(on, "dpo", soft_labels="off", trainer=FusedLoss)  # hard labels asked for: nothing dropped
    fused = SimpleNamespace(use_liger_kernel=True, liger_kernel_config={"fused_linear_cross_entropy": True})
    with pytest.raises(ConfigError, match="fused_linear_cross_entropy: true replaces the model's forward"):
        check_liger(fused, "dpo", soft_labels="smoothing", trainer=DPOTrainer)
    check_liger(SimpleNamespace(use_liger_kernel=False), "dpo", soft_labels="smoothing", trainer=FusedLoss)


def test_liger_without_the_package_stops_train_dpo_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets import Dataset

    from rlaif.train import dpo

    turn = {"role": "assistant", "content": "a"}
    rows = [{"prompt": [{"role": "user", "content": "hi"}], "chosen": [turn],
             "rejected": [turn | {"content": "b"}], "p_chosen": 0.8, "source": "judge"}]  # fmt: skip
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "pairs"))
    _liger(False, monkeypatch)

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must not load")

    monkeypatch.setattr(dpo, "load_policy", no_model)
    with pytest.raises(
        ConfigError, match=r"^train.dpo.args.use_liger_kernel: true needs the liger-kernel package"
    ):
        dpo.train_dpo(tmp_path / "pairs", model_path="unused", output_dir=tmp_path / "out",
                      args={"use_liger_kernel": True, "report_to": "none"})  # fmt: skip
