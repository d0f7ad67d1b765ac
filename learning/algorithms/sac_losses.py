"""The SAC losses of N task learners at once, one row per task (spec §3.1).

Every function takes (N, B, ...) tensors, row i holding task i's minibatch, and returns (N,)
per-task losses; the caller masks and sums them, so a task's parameters get gradient from its
own row only. The formulas are garage's torch SAC (Haarnoja et al. 2018, Eqs. 5, 7, 17-18),
with the temperature loss in garage's ``-log α (log π + H̄)`` form, as the release's
DnC family uses it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from learning.networks import TaskTanhGaussianPolicies, TaskTwinCritics


@dataclass
class TransitionBatch:
    """A minibatch per task; every tensor has leading shape (N, B).

    ``terminals`` is 1.0 only for real terminations (``StepType.TERMINAL``), so time-outs are
    bootstrapped.
    """

    states: torch.Tensor  # (N, B, S)
    actions: torch.Tensor  # (N, B, A)
    rewards: torch.Tensor  # (N, B)
    next_states: torch.Tensor  # (N, B, S)
    terminals: torch.Tensor  # (N, B)


def td_target(batch: TransitionBatch, policies: TaskTanhGaussianPolicies,
              target_critics: TaskTwinCritics, alpha: torch.Tensor, discount: float,
              reward_scale: float) -> torch.Tensor:
    """y = scale·r + (1 − d)·γ·(min_k Q̄_k(s', a') − α·log π(a'|s')),  a' ~ π(·|s'). (N, B)"""
    with torch.no_grad():
        next_distribution = policies(batch.next_states)
        pre_tanh, next_actions = next_distribution.rsample_with_pre_tanh_value()
        next_log_pi = next_distribution.log_prob(next_actions, pre_tanh_value=pre_tanh)
        target_q1, target_q2 = target_critics(batch.next_states, next_actions)
        soft_value = torch.minimum(target_q1, target_q2) - alpha[:, None] * next_log_pi
        return (reward_scale * batch.rewards
                + (1.0 - batch.terminals) * discount * soft_value)


def critic_losses(batch: TransitionBatch, critics: TaskTwinCritics,
                  target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                 torch.Tensor]:
    """Per-task MSE(Q1(s, a), y) and MSE(Q2(s, a), y); also returns Q1 and Q2 (N, B)."""
    q1, q2 = critics(batch.states, batch.actions)
    return ((q1 - target) ** 2).mean(dim=1), ((q2 - target) ** 2).mean(dim=1), q1, q2


def actor_loss(states: torch.Tensor, policies: TaskTanhGaussianPolicies,
               critics: TaskTwinCritics, alpha: torch.Tensor) -> tuple[
                   torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-task mean(α·log π(ã|s) − min_k Q_k(s, ã)), ã ~ π(·|s) reparameterised.

    Returns the loss (N,), log π(ã|s) (N, B) for the temperature loss, and the entropy of the
    pre-tanh Gaussian (N,) for logging.
    """
    distribution = policies(states)
    pre_tanh, actions = distribution.rsample_with_pre_tanh_value()
    log_pi = distribution.log_prob(actions, pre_tanh_value=pre_tanh)
    q1, q2 = critics(states, actions)
    loss = (alpha[:, None] * log_pi - torch.minimum(q1, q2)).mean(dim=1)
    return loss, log_pi, distribution.entropy().mean(dim=1)


def temperature_loss(log_alpha: torch.Tensor, log_pi: torch.Tensor,
                     target_entropy: float) -> torch.Tensor:
    """Per-task mean(−log α · (log π + H̄)), garage's form of SAC's Eq. 18. (N,)"""
    return (-log_alpha[:, None] * (log_pi.detach() + target_entropy)).mean(dim=1)
