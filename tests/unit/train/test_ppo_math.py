"""PPO arithmetic against numbers worked out by hand (the working is in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from rlaif.train.ppo.math import (
    AdaptiveKLController,
    FixedKLController,
    entropy_from_logits,
    gae,
    kl_k1,
    kl_k2,
    kl_k3,
    masked_mean,
    masked_var,
    masked_whiten,
    policy_loss,
    shape_rewards,
    value_loss,
)


def close(actual: torch.Tensor, expected: list[float] | list[list[float]] | float) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-6, rtol=1e-6)


def test_masked_mean_ignores_padding() -> None:
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    close(masked_mean(values, mask), 8.0 / 3.0)  # (1 + 3 + 4) / 3
    close(masked_mean(values, mask, dim=1), [1.0, 3.5])


def test_masked_mean_of_empty_mask_is_zero() -> None:
    close(masked_mean(torch.ones(2, 2), torch.zeros(2, 2)), 0.0)


def test_masked_var_is_bessel_corrected() -> None:
    # [1, 2, 3]: mean 2, squared deviations 1 + 0 + 1 = 2, / (3 - 1) = 1; biased: 2 / 3.
    values = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    close(masked_var(values, mask), 1.0)
    close(masked_var(values, mask, unbiased=False), 2.0 / 3.0)


def test_masked_whiten() -> None:
    # [2, 4, 6] (100 is padding): mean 4, unbiased var (4 + 0 + 4) / 2 = 4, std 2.
    values = torch.tensor([[2.0, 4.0], [6.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    whitened = masked_whiten(values, mask)
    close(whitened, [[-1.0, 0.0], [1.0, 0.0]])
    close(masked_mean(whitened, mask), 0.0)
    close(masked_var(whitened, mask).sqrt(), 1.0)
    # shift_mean=False rescales around the mean but keeps it: (x - 4) / 2 + 4.
    close(masked_whiten(values, mask, shift_mean=False), [[3.0, 4.0], [5.0, 0.0]])


def test_gae_three_tokens_gamma_1_lam_095() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.4, 0.3]])
    mask = torch.ones(1, 3)
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # t=2: delta = 1 + 0 - 0.3 = 0.7;                      A2 = 0.7
    # t=1: delta = 0 + 0.3 - 0.4 = -0.1; A1 = -0.1 + 0.95 * 0.7   = 0.565
    # t=0: delta = 0 + 0.4 - 0.5 = -0.1; A0 = -0.1 + 0.95 * 0.565 = 0.43675
    close(advantages, [[0.43675, 0.565, 0.7]])
    close(returns, [[0.93675, 0.965, 1.0]])


def test_gae_with_discount() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.4, 0.3]])
    advantages, _ = gae(rewards, values, torch.ones(1, 3), gamma=0.5, lam=1.0)
    # t=2: 0.7; t=1: delta = 0.5 * 0.3 - 0.4 = -0.25, A1 = -0.25 + 0.5 * 0.7 = 0.1;
    # t=0: delta = 0.5 * 0.4 - 0.5 = -0.3, A0 = -0.3 + 0.5 * 0.1 = -0.25
    close(advantages, [[-0.25, 0.1, 0.7]])


def test_gae_ignores_padding() -> None:
    # The padded position carries garbage (reward 9, value 7) that must not reach the real tokens.
    rewards = torch.tensor([[0.0, 2.0, 9.0]])
    values = torch.tensor([[1.0, 1.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # t=1: delta = 2 + 0 - 1 = 1, A1 = 1; t=0: delta = 0 + 1 - 1 = 0, A0 = 0.95 * 1 = 0.95
    close(advantages, [[0.95, 1.0, 0.0]])
    close(returns, [[1.95, 2.0, 0.0]])


def test_kl_estimators() -> None:
    # pi(x) = 0.5, ref(x) = 0.25, so r = ref / pi = 0.5:
    # k1 = log 2 = 0.693147, k2 = (log 2)^2 / 2 = 0.240227, k3 = (0.5 - 1) - log 0.5 = 0.193147.
    # Swapped (pi = 0.25, ref = 0.5, r = 2): k1 = -0.693147, k2 the same, k3 = (2 - 1) - log 2 = 0.306853.
    logprobs = torch.tensor([math.log(0.5), math.log(0.25)])
    ref_logprobs = torch.tensor([math.log(0.25), math.log(0.5)])
    close(kl_k1(logprobs, ref_logprobs), [0.693147, -0.693147])
    close(kl_k2(logprobs, ref_logprobs), [0.240227, 0.240227])
    close(kl_k3(logprobs, ref_logprobs), [0.193147, 0.306853])
    same = torch.tensor([-1.3])
    for estimator in (kl_k1, kl_k2, kl_k3):
        close(estimator(same, same), [0.0])


def test_policy_loss_inside_and_outside_the_clip_range() -> None:
    # clip = 0.2, per token (ratio, advantage) -> max(-A r, -A clamp(r, 0.8, 1.2)):
    #   (1.1,  2): -2.2 vs -2.2 -> -2.2, inside the range, not clipped
    #   (1.5,  1): -1.5 vs -1.2 -> -1.2, clipped (no incentive to push the ratio further up)
    #   (0.5,  1): -0.5 vs -0.8 -> -0.5, not clipped (the unclipped term is the pessimistic one)
    #   (0.5, -1):  0.5 vs  0.8 ->  0.8, clipped
    #   the fifth token is padding.
    ratios = torch.tensor([[1.1, 1.5, 0.5, 0.5, 9.0]])
    advantages = torch.tensor([[2.0, 1.0, 1.0, -1.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    loss, clip_fraction = policy_loss(ratios.log(), torch.zeros(1, 5), advantages, mask, clip=0.2)
    close(loss, (-2.2 - 1.2 - 0.5 + 0.8) / 4)  # -0.775
    close(clip_fraction, 0.5)


def test_policy_loss_gradient_is_cut_where_clipped() -> None:
    logprobs = torch.tensor([[math.log(1.5)]], requires_grad=True)
    loss, _ = policy_loss(logprobs, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), clip=0.2)
    loss.backward()
    assert logprobs.grad is not None
    close(logprobs.grad, [[0.0]])


def test_value_loss_clipped() -> None:
    # clip = 0.2, old values 0, returns 1:
    #   V = 0.1: V_clipped = 0.1, errors 0.81 / 0.81 -> 0.81, not clipped
    #   V = 1.0: V_clipped = 0.2, errors 0.00 / 0.64 -> 0.64, clipped
    values = torch.tensor([[0.1, 1.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, clip_fraction = value_loss(values, torch.zeros(1, 3), torch.ones(1, 3), mask, clip=0.2)
    close(loss, 0.5 * (0.81 + 0.64) / 2)  # 0.3625
    close(clip_fraction, 0.5)


def test_entropy_from_logits() -> None:
    # uniform over 4: log 4 = 1.386294; (0.5, 0.25, 0.25): 0.5 log 2 + 0.5 log 4 = 1.039721
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(0.5), math.log(0.25), math.log(0.25), -1e9]])
    close(entropy_from_logits(logits), [1.386294, 1.039721])


def test_shape_rewards_adds_score_at_last_real_token() -> None:
    # kl_coef 0.1. Row 0: k1 = [0.5, 0, -0.5] -> [-0.05, 0, 0.05 + 1.0].
    # Row 1 (last token is padding): k1 = [0, -1] -> [0, 0.1 - 2.0], padding stays 0.
    score = torch.tensor([1.0, -2.0])
    logprobs = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -2.0, 0.0]])
    ref_logprobs = torch.tensor([[-1.5, -1.0, -0.5], [-1.0, -1.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = shape_rewards(score, logprobs, ref_logprobs, mask, kl_coef=0.1)
    close(rewards, [[-0.05, 0.0, 1.05], [0.0, -1.9, 0.0]])


def test_shape_rewards_empty_response_gets_nothing() -> None:
    rewards = shape_rewards(
        torch.tensor([3.0]), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), kl_coef=0.1
    )
    close(rewards, [[0.0, 0.0]])


def test_adaptive_kl_controller_proportional_update() -> None:
    # target 6, horizon 10000, 100 rollouts:
    #   KL 9:   e = 9 / 6 - 1 = 0.5, clipped to 0.2; beta = 0.1 * (1 + 0.2 * 100 / 10000) = 0.1002
    #   KL 5.4: e = 5.4 / 6 - 1 = -0.1;               beta = 0.1 * (1 - 0.1 * 100 / 10000) = 0.0999
    up = AdaptiveKLController(0.1, target=6.0, horizon=10000)
    up.update(9.0, n_steps=100)
    assert up.value == pytest.approx(0.1002, abs=1e-12)
    down = AdaptiveKLController(0.1, target=6.0, horizon=10000)
    down.update(5.4, n_steps=100)
    assert down.value == pytest.approx(0.0999, abs=1e-12)
    on_target = AdaptiveKLController(0.1, target=6.0, horizon=10000)
    on_target.update(6.0, n_steps=100)
    assert on_target.value == pytest.approx(0.1, abs=1e-12)


def test_kl_controller_state_round_trip() -> None:
    controller = AdaptiveKLController(0.1, target=6.0, horizon=10)
    controller.update(100.0, n_steps=5)
    restored = AdaptiveKLController(0.1, target=6.0, horizon=10)
    restored.load_state_dict(controller.state_dict())
    assert restored.value == controller.value == pytest.approx(0.11)


def test_fixed_kl_controller_never_moves() -> None:
    controller = FixedKLController(0.05)
    controller.update(1000.0, n_steps=64)
    assert controller.value == 0.05
