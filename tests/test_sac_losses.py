"""SAC losses of N task learners against the formulas, computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from learning.algorithms import sac_losses
from learning.networks import TaskTanhGaussianPolicies, TaskTwinCritics

N, S, A, B = 2, 3, 2, 5
MEANS = torch.tensor([0.3, -0.7])  # pre-tanh mean of every action dim, per task
LOG_STDS = torch.tensor([-0.5, 0.2])
Q1_CONST = torch.tensor([1.5, -2.0])
Q2_CONST = torch.tensor([1.0, -1.0])


def constant_policies() -> TaskTanhGaussianPolicies:
    """Actors whose trunk outputs zero, so task i's Gaussian is N(MEANS[i], e^LOG_STDS[i])."""
    policies = TaskTanhGaussianPolicies(N, S, A, (4,))
    with torch.no_grad():
        for parameter in policies.parameters():
            parameter.zero_()
        policies.mean_head.bias.copy_(MEANS[:, None, None].expand(N, 1, A))
        policies.log_std_head.bias.copy_(LOG_STDS[:, None, None].expand(N, 1, A))
    return policies


def constant_critics() -> TaskTwinCritics:
    """Critics with Q1_i = Q1_CONST[i] and Q2_i = Q2_CONST[i] everywhere."""
    critics = TaskTwinCritics(N, S, A, (4,))
    with torch.no_grad():
        for parameter in critics.parameters():
            parameter.zero_()
        critics.q1.output.bias.copy_(Q1_CONST[:, None, None])
        critics.q2.output.bias.copy_(Q2_CONST[:, None, None])
    return critics


def hand_log_prob(pre_tanh: torch.Tensor) -> torch.Tensor:
    """log N(z; mu_i, sigma_i) - log(1 - tanh(z)^2 + 1e-6), summed over action dims. (N, B)"""
    mu, sigma = MEANS[:, None, None], LOG_STDS[:, None, None].exp()
    gaussian = (
        -((pre_tanh - mu) ** 2) / (2 * sigma**2) - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    )
    squash = torch.log(1 - torch.tanh(pre_tanh) ** 2 + 1e-6)
    return (gaussian - squash).sum(-1)


@pytest.fixture
def batch() -> sac_losses.TransitionBatch:
    generator = torch.Generator().manual_seed(0)
    return sac_losses.TransitionBatch(
        states=torch.randn(N, B, S, generator=generator),
        actions=torch.rand(N, B, A, generator=generator) * 2 - 1,
        rewards=torch.randn(N, B, generator=generator),
        next_states=torch.randn(N, B, S, generator=generator),
        terminals=torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0, 0.0]]),
    )


def test_td_target_equals_soft_bellman_backup(batch):
    alpha = torch.tensor([0.2, 0.05])
    policies, critics = constant_policies(), constant_critics()
    torch.manual_seed(7)
    target = sac_losses.td_target(
        batch, policies, critics, alpha[:, None], discount=0.9, reward_scale=3.0
    )
    torch.manual_seed(7)
    pre_tanh, _ = policies(batch.next_states).rsample_with_pre_tanh_value()
    soft_value = torch.minimum(Q1_CONST, Q2_CONST)[:, None] - alpha[:, None] * hand_log_prob(
        pre_tanh
    )
    expected = 3.0 * batch.rewards + (1 - batch.terminals) * 0.9 * soft_value
    torch.testing.assert_close(target, expected, rtol=1e-5, atol=1e-5)
    # Terminal rows do not bootstrap at all.
    torch.testing.assert_close(
        target[batch.terminals == 1], 3.0 * batch.rewards[batch.terminals == 1]
    )
    assert not target.requires_grad


def test_critic_errors_are_squared_td_errors(batch):
    target = torch.randn(N, B)
    qf1_errors, qf2_errors, q1, q2 = sac_losses.critic_errors(batch, constant_critics(), target)
    torch.testing.assert_close(qf1_errors, (Q1_CONST[:, None] - target) ** 2)
    torch.testing.assert_close(qf2_errors, (Q2_CONST[:, None] - target) ** 2)
    torch.testing.assert_close(q1, Q1_CONST[:, None].expand(N, B))


def test_actor_loss_is_alpha_log_pi_minus_min_q(batch):
    alpha = torch.tensor([0.5, 2.0])
    policies, critics = constant_policies(), constant_critics()
    torch.manual_seed(3)
    objective, log_pi, entropy = sac_losses.actor_objective(
        batch.states, policies, critics, alpha[:, None]
    )
    loss = objective.mean(1)
    torch.manual_seed(3)
    pre_tanh, _ = policies(batch.states).rsample_with_pre_tanh_value()
    expected_log_pi = hand_log_prob(pre_tanh)
    torch.testing.assert_close(log_pi, expected_log_pi, rtol=1e-5, atol=1e-5)
    expected = (alpha[:, None] * expected_log_pi - torch.minimum(Q1_CONST, Q2_CONST)[:, None]).mean(
        1
    )
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    # Entropy of the pre-tanh diagonal Gaussian: A * (0.5 log(2 pi e) + log sigma).
    torch.testing.assert_close(
        entropy.mean(1), A * (0.5 * math.log(2 * math.pi * math.e) + LOG_STDS)
    )


def test_actor_loss_gradient_reaches_only_own_policy(batch):
    policies = constant_policies()
    objective, _, _ = sac_losses.actor_objective(
        batch.states, policies, constant_critics(), torch.ones(N, 1)
    )
    objective[1].mean().backward()
    assert torch.all(policies.mean_head.bias.grad[0] == 0)
    assert torch.any(policies.mean_head.bias.grad[1] != 0)


def test_temperature_loss_is_garage_form():
    log_alpha = torch.tensor([0.1, -0.3], requires_grad=True)
    log_pi = torch.tensor([[1.0, 3.0], [-2.0, 0.0]], requires_grad=True)
    loss = sac_losses.temperature_objective(log_alpha[:, None], log_pi, target_entropy=-2.0).mean(1)
    # task 0: -0.1 * mean(1 - 2, 3 - 2) = 0 ; task 1: 0.3 * mean(-4, -2) = -0.9
    torch.testing.assert_close(loss, torch.tensor([0.0, -0.9]), atol=1e-6, rtol=0)
    loss.sum().backward()
    assert log_pi.grad is None  # log pi is treated as a constant
    torch.testing.assert_close(log_alpha.grad, torch.tensor([-0.0, 3.0]), atol=1e-6, rtol=0)


def test_alpha_temperature_loss_is_the_release_sac_form():
    log_alpha = torch.tensor([0.0, math.log(2.0)], requires_grad=True)
    log_pi = torch.tensor([1.0, -3.0])
    # -alpha * (log pi + H): task 0: -1 * (1 - 1) = 0 ; task 1: -2 * (-3 - 1) = 8
    loss = sac_losses.alpha_temperature_objective(log_alpha, log_pi, target_entropy=-1.0)
    torch.testing.assert_close(loss, torch.tensor([0.0, 8.0]))
    loss.sum().backward()
    # d/dlog_alpha = -alpha * (log pi + H): alpha times garage's gradient
    torch.testing.assert_close(log_alpha.grad, torch.tensor([0.0, 8.0]))
