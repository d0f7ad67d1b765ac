"""DnC regularisation: coefficient order, the closed-form KL, the states each
sampling type uses, and that a zero coefficient leaves separated SAC unchanged."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.algorithms import sac_losses
from learning.dnc_regularization import (
    coefficient_matrix,
    dnc_divergences,
    dnc_penalty,
    gaussian_kl,
)
from learning.networks import TaskTanhGaussianPolicies

MEANS = torch.tensor([0.0, 1.0, -0.5])
LOG_STDS = torch.tensor([0.0, math.log(2.0), math.log(0.5)])


def test_coefficient_order_is_pinned():
    beta = coefficient_matrix([float(k) for k in range(9)], 3)
    # entry i*N + j pulls policy i towards policy j; the diagonal is unused
    assert beta.tolist() == [[0, 1, 2], [3, 0, 5], [6, 7, 0]]
    torch.testing.assert_close(coefficient_matrix([0.3], 2), torch.tensor([[0.0, 0.3], [0.3, 0.0]]))


def test_gaussian_kl_is_the_closed_form():
    p = torch.distributions.Normal(torch.tensor(0.3), torch.tensor(0.7))
    q = torch.distributions.Normal(torch.tensor(-1.1), torch.tensor(1.9))
    expected = torch.distributions.kl_divergence(p, q)
    torch.testing.assert_close(gaussian_kl(p.loc, p.scale, q.loc, q.scale), expected)
    # by hand: log(1.9/0.7) + (0.49 + 1.96) / (2 * 3.61) - 0.5
    assert abs(expected.item() - (math.log(1.9 / 0.7) + 2.45 / 7.22 - 0.5)) < 1e-6


def constant_policies() -> TaskTanhGaussianPolicies:
    """Policy i is N(MEANS[i], e^LOG_STDS[i]) in every dimension, whatever the state."""
    policies = TaskTanhGaussianPolicies(3, 2, 2, (4,))
    with torch.no_grad():
        for parameter in policies.parameters():
            parameter.zero_()
        policies.mean_head.bias.copy_(MEANS[:, None, None].expand(3, 1, 2))
        policies.log_std_head.bias.copy_(LOG_STDS[:, None, None].expand(3, 1, 2))
    return policies


def hand_kl(j: int, i: int) -> float:
    """KL(pi_j || pi_i) per dimension for the constant policies."""
    sj, si = math.exp(LOG_STDS[j]), math.exp(LOG_STDS[i])
    return math.log(si / sj) + (sj**2 + (MEANS[j] - MEANS[i]).item() ** 2) / (2 * si**2) - 0.5


def test_divergences_and_penalty_match_hand_values_for_every_sampling_type():
    expected = torch.tensor([[hand_kl(j, i) for j in range(3)] for i in range(3)])
    states = torch.randn(3, 6, 2)
    for sampling_type in ('all', 'i', 'j', 'i+j'):
        divergence, defined = dnc_divergences(
            constant_policies(),
            states,
            torch.tensor([True, True, False]),
            sampling_type,
            representation=False,
        )
        torch.testing.assert_close(divergence, expected.float(), atol=1e-5, rtol=1e-5)
        assert defined.tolist() == [[True, True, False], [True, True, False], [False, False, False]]
        beta = coefficient_matrix([0.5], 3)
        penalty = dnc_penalty(divergence, defined, beta)
        torch.testing.assert_close(
            penalty,
            torch.tensor([0.5 * hand_kl(1, 0), 0.5 * hand_kl(0, 1), 0.0]),
            atol=1e-5,
            rtol=1e-5,
        )


def test_only_the_regularised_policy_is_pulled():
    policies = constant_policies()
    divergence, _ = dnc_divergences(
        policies, torch.randn(3, 4, 2), torch.ones(3, dtype=bool), 'all', representation=False
    )
    divergence[0, 1].backward()  # KL(pi_1 || pi_0): a gradient for policy 0 only
    grad = policies.mean_head.bias.grad
    assert torch.any(grad[0] != 0) and torch.all(grad[1] == 0) and torch.all(grad[2] == 0)


def test_sampling_types_use_the_states_they_name():
    # A state-dependent policy set: divergences then depend on which rows are used.
    torch.manual_seed(0)
    policies = TaskTanhGaussianPolicies(2, 2, 1, (8,))
    states = torch.randn(2, 4, 2)
    has_data = torch.ones(2, dtype=bool)
    own, _ = dnc_divergences(policies, states, has_data, 'i', False)
    other, _ = dnc_divergences(policies, states, has_data, 'j', False)
    swapped, _ = dnc_divergences(policies, states.flip(0), has_data, 'j', False)
    # 'i' for pair (0, 1) uses row 0's states; 'j' uses row 1's, i.e. 'i' on swapped rows.
    torch.testing.assert_close(own[0, 1], swapped[0, 1])
    assert not torch.allclose(own[0, 1], other[0, 1])


def test_zero_coefficients_leave_separated_sac_unchanged():
    """A zero KL coefficient matrix must give exactly the policy loss of plain SAC, computed
    here independently from the losses module on the same minibatch."""
    env = make_env('PointReachMT-v0')
    torch.manual_seed(0)
    np.random.seed(0)
    algorithm = build_algorithm(
        resolve_config('dnc_sac', {'hidden_sizes': [8], 'kl_coeff': [0.0] * 16}), env
    )
    assert not algorithm.regularize
    episodes = algorithm._sampler.obtain_samples(0, 400, algorithm.policy.get_param_values())
    algorithm.replay_buffer.add_episodes(episodes)
    policies_before = copy.deepcopy(algorithm.policies)
    alpha = algorithm.log_alpha.detach().exp()[:, None]
    np.random.seed(1)
    batch = algorithm._sample_batch(np.ones(4, dtype=bool), algorithm.buffer_batch_size)
    np.random.seed(1)
    torch.manual_seed(2)
    algorithm._gradient_step(np.ones(4, dtype=bool))
    algorithm.flush_step_stats()
    # Plain SAC: the critics step first, so the actor loss is taken against the stepped
    # critics (the actor and temperature steps leave them alone) with the policies as they
    # were before the step; replay the TD target's draws to reach the actor's.
    torch.manual_seed(2)
    sac_losses.td_target(
        batch,
        policies_before,
        algorithm.target_critics,
        alpha,
        algorithm.discount,
        algorithm.reward_scale,
    )
    objective, _, _ = sac_losses.actor_objective(
        batch.states, policies_before, algorithm.critics, alpha
    )
    np.testing.assert_allclose(
        algorithm.last_stats['PolicyLoss'], objective.mean(1).detach().numpy(), rtol=1e-6, atol=1e-7
    )
    assert 'PolicyKLPenalty' not in algorithm.method_stats


def distillation_learner(sampling_type='all', n_epochs=5):
    torch.manual_seed(0)
    np.random.seed(0)
    algorithm = build_algorithm(
        resolve_config(
            'dnc_sac',
            {
                'hidden_sizes': [8],
                'distillation_period': 1,
                'distillation_n_epochs': n_epochs,
                'buffer_batch_size': 12,
                'sampling_type': sampling_type,
            },
        ),
        make_env('PointReachMT-v0'),
    )
    episodes = algorithm._sampler.obtain_samples(0, 400, algorithm.policy.get_param_values())
    algorithm.replay_buffer.add_episodes(episodes)
    return algorithm


def test_distillation_makes_every_policy_the_central_one():
    algorithm = distillation_learner()
    before = algorithm.policies.mean_head.weight.detach().clone()
    algorithm.after_epoch(0)  # never at epoch 0
    assert torch.equal(before, algorithm.policies.mean_head.weight)
    algorithm.after_epoch(1)
    for policy_parameter, central_parameter in zip(
        algorithm.policies.parameters(), algorithm.central_policy.parameters(), strict=True
    ):
        for task in range(4):
            assert torch.equal(policy_parameter[task], central_parameter[0])
    assert not torch.equal(before[0], algorithm.policies.mean_head.weight[0])


def test_the_central_policy_starts_as_policy_0_and_persists_across_distillations():
    algorithm = distillation_learner(n_epochs=3)
    central, optimizer = algorithm.central_policy, algorithm.central_optimizer
    for policy_parameter, central_parameter in zip(
        algorithm.policies.parameters(), central.parameters(), strict=True
    ):
        assert torch.equal(policy_parameter[:1], central_parameter)
    algorithm.distill()
    after_first = [p.detach().clone() for p in central.parameters()]
    # The task policies train on between distillations; the central policy must not restart
    # from them (or from policy 0) but continue from where it stopped.
    with torch.no_grad():
        for parameter in algorithm.policies.parameters():
            parameter.add_(1.0)
    algorithm.distill()
    assert algorithm.central_policy is central and algorithm.central_optimizer is optimizer
    steps = {float(state['step']) for state in optimizer.state.values()}
    assert steps == {6.0}  # 3 + 3 Adam steps on one optimizer
    # Three Adam steps move a weight by about 3 x lr (lr = 1e-3 on the toy env) at most, so the
    # second distillation continued from the first one's result, not from the policies that
    # were shifted by +1.
    assert optimizer.param_groups[0]['lr'] == 1e-3
    for first, second in zip(after_first, central.parameters(), strict=True):
        assert torch.max(torch.abs(second.detach() - first)) < 0.01


def test_snapshot_and_to_keep_the_central_policy_and_its_optimizer():
    algorithm = distillation_learner(n_epochs=2)
    algorithm.distill()
    restored = pickle.loads(pickle.dumps(algorithm))
    restored.to('cpu')
    for saved, loaded in zip(
        algorithm.central_policy.parameters(), restored.central_policy.parameters(), strict=True
    ):
        assert torch.equal(saved, loaded)
    assert {float(state['step']) for state in restored.central_optimizer.state.values()} == {2.0}
    assert restored.central_optimizer.param_groups[0]['params'][0] is next(
        restored.central_policy.parameters()
    )


@pytest.mark.parametrize('sampling_type, per_buffer', [('all', 3), ('i', 3), ('j', 12), ('i+j', 6)])
def test_distillation_samples_per_buffer_follow_the_sampling_type(
    sampling_type, per_buffer, monkeypatch
):
    algorithm = distillation_learner(sampling_type, n_epochs=2)
    calls = []
    original = algorithm.replay_buffer.sample

    def spy(batch_size, tasks):
        calls.append((batch_size, tuple(bool(t) for t in tasks)))
        return original(batch_size, tasks)

    monkeypatch.setattr(algorithm.replay_buffer, 'sample', spy)
    algorithm.distill()
    # buffer_batch_size 12, 4 tasks: 12 // 4, 12, 12 // 2 from every non-empty buffer
    assert calls == [(per_buffer, (True,) * 4)] * 2


def test_the_penalty_part_and_its_statistics_match_hand_values():
    from learning.dnc_regularization import DnCPenalty

    assert DnCPenalty.from_flags([0.0] * 9, 3, 'all', False) is None  # plain separated SAC
    part = DnCPenalty.from_flags([0.5], 3, 'i', False)
    has_data = torch.tensor([True, True, False])
    penalty, stats = part(constant_policies(), torch.randn(3, 6, 2), has_data)
    expected_penalty = [0.5 * hand_kl(1, 0), 0.5 * hand_kl(0, 1), 0.0]
    torch.testing.assert_close(penalty, torch.tensor(expected_penalty), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats['PolicyKLPenalty'], penalty)
    # Each policy's mean divergence from the others it is defined against (task 2 has no
    # data: no pair, so 0).
    torch.testing.assert_close(
        stats['PolicyKL'], torch.tensor([hand_kl(1, 0), hand_kl(0, 1), 0.0]), atol=1e-5, rtol=1e-5
    )


def test_the_learner_moves_the_penalty_coefficients_with_its_networks():
    """β goes to the learner's device with ``to`` (as the distillation's central policy does),
    so no gradient step copies it from the host."""
    env = make_env('PointReachMT-v0')
    algorithm = build_algorithm(
        resolve_config('dnc_sac', {'hidden_sizes': [8], 'kl_coeff': [0.5]}), env
    )
    penalty = algorithm.penalty
    assert penalty is not None and penalty.beta.device.type == 'cpu'
    moved_to = []
    original_to = penalty.to
    penalty.to = lambda device: (moved_to.append(torch.device(device)), original_to(device))
    algorithm.to('cpu')
    assert moved_to == [torch.device('cpu')]
    penalty.to('meta')
    assert penalty.beta.device.type == 'meta'
