"""DECAF critics: the mixture value, who learns from whose loss, and targets that
follow every task's critic (the release's stale targets, §10 item 14, fixed)."""

from __future__ import annotations

import numpy as np
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.networks.decaf import DecafTwinCritics


def test_value_is_the_weighted_sum_of_all_task_critics():
    torch.manual_seed(0)
    critics = DecafTwinCritics(3, 4, 2, (8,))
    states, actions = torch.randn(3, 5, 4), torch.rand(3, 5, 2)
    q1, q2 = critics(states, actions)
    w1, w2 = critics.mixture_weights(states, actions)
    torch.testing.assert_close(w1.sum(-1), torch.ones(3, 5))
    for row in range(3):
        inputs = torch.cat([states[row], actions[row]], -1).expand(3, -1, -1)
        base1 = critics.base.q1(inputs)[..., 0]  # (k, B): every task's Q1 on row's samples
        base2 = critics.base.q2(inputs)[..., 0]
        torch.testing.assert_close(q1[row], (w1[row] * base1.T).sum(-1))
        torch.testing.assert_close(q2[row], (w2[row] * base2.T).sum(-1))


def test_only_the_own_base_critic_and_weight_net_learn_from_a_task_loss():
    torch.manual_seed(0)
    critics = DecafTwinCritics(3, 4, 2, (8,))
    q1, _ = critics(torch.randn(3, 5, 4), torch.rand(3, 5, 2))
    q1[2].sum().backward()
    base_grad = critics.base.q1.output.weight.grad
    weight_grad = critics.weights1.output.weight.grad
    assert torch.all(base_grad[:2] == 0) and torch.any(base_grad[2] != 0)
    assert torch.all(weight_grad[:2] == 0) and torch.any(weight_grad[2] != 0)


def test_targets_follow_every_task_critic():
    torch.manual_seed(0)
    np.random.seed(0)
    algorithm = build_algorithm(
        resolve_config('decaf', {'hidden_sizes': [8]}), make_env('PointReachMT-v0')
    )
    episodes = algorithm._sampler.obtain_samples(0, 400, algorithm.policy.get_param_values())
    algorithm.replay_buffer.add_episodes(episodes)
    before = algorithm.target_critics.base.q1.output.weight.detach().clone()
    active = np.ones(4, dtype=bool)
    algorithm._gradient_step(active)
    algorithm._update_targets(active)
    after = algorithm.target_critics.base.q1.output.weight
    for task in range(4):
        assert not torch.equal(before[task], after[task])
