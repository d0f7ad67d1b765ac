"""The separated learner: gradient-step allocation, per-task masking, routing, and ``to()``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.algorithms.dnc_sac import allocate_gradient_steps


@pytest.mark.parametrize(
    'total, collected, expected',
    [
        (1000, [500, 300, 200], [500, 300, 200]),
        (10, [1, 999], [1, 9]),  # at least one step for a task that collected anything
        (100, [250, 0, 750], [25, 0, 75]),  # none for a task that collected nothing
        (7, [0, 0], [0, 0]),
    ],
)
def test_gradient_steps_follow_the_data_share(total, collected, expected):
    np.testing.assert_array_equal(allocate_gradient_steps(total, np.array(collected)), expected)


class Trainer:
    """The part of garage's Trainer that ``train_once`` uses."""

    step_itr = 0

    def __init__(self, sampler):
        self.sampler = sampler
        self.requested = []

    def obtain_episodes(self, itr, batch_size=None):
        self.requested.append(batch_size)
        policy = self.algo.sampling_policy
        return self.sampler.obtain_samples(itr, batch_size or 200, policy.get_param_values())


@pytest.fixture
def algo():
    torch.manual_seed(0)
    np.random.seed(0)
    config = resolve_config(
        'qmp_dnc',
        {
            'batch_size': 200,
            'min_buffer_size': 50,
            'gradient_steps_per_itr': 8,
            'buffer_batch_size': 8,
            'hidden_sizes': [8, 8],
        },
    )
    algorithm = build_algorithm(config, make_env('PointReachMT-v0'))
    trainer = Trainer(algorithm._sampler)
    trainer.algo = algorithm
    return algorithm, trainer


def parameters(algorithm):
    return [
        p.detach().clone()
        for p in list(algorithm.policies.parameters())
        + list(algorithm.critics.parameters())
        + list(algorithm.target_critics.parameters())
        + [algorithm.log_alpha]
    ]


def test_warm_up_round_collects_min_buffer_size_per_task_then_trains(algo):
    algorithm, trainer = algo
    episodes, steps, total = algorithm.train_once(trainer)
    assert total == steps.sum()
    assert trainer.requested == [50 * 4]
    # Every task got at least one 50-step episode worth of data, and trained on it.
    assert np.all(algorithm.replay_buffer.sizes() >= 1)
    np.testing.assert_array_equal(algorithm.env_steps, algorithm.replay_buffer.sizes())
    ready = algorithm.replay_buffer.sizes() >= 50
    assert np.all(steps[ready] > 0) and np.all(steps[~ready] == 0)
    algorithm.train_once(trainer)
    assert trainer.requested[-1] is None or not ready.all()


def test_masked_step_changes_only_the_active_tasks(algo):
    algorithm, trainer = algo
    while (algorithm.replay_buffer.sizes() < 50).any():
        algorithm.train_once(trainer)
    before = parameters(algorithm)
    active = np.array([True, False, True, False])
    algorithm._gradient_step(active)
    algorithm._update_targets(active)
    for old, new in zip(before, parameters(algorithm), strict=True):
        for task in range(4):
            if active[task]:
                assert not torch.equal(old[task], new[task]) or old[task].abs().sum() == 0
            else:
                assert torch.equal(old[task], new[task])


def test_alpha_moves_towards_the_target_entropy(algo):
    algorithm, trainer = algo
    while (algorithm.replay_buffer.sizes() < 50).any():
        algorithm.train_once(trainer)
    for _ in range(5):
        algorithm._gradient_step(np.ones(4, dtype=bool))
    # Untrained policies are near-uniform: entropy > target (-2), so alpha decreases.
    assert torch.all(algorithm.log_alpha < 0)


def test_to_keeps_learned_temperatures_and_optimizer_state(algo):
    algorithm, _ = algo
    with torch.no_grad():
        algorithm.log_alpha.copy_(torch.tensor([0.1, -0.2, 0.3, -0.4]))
    algorithm.alpha_optimizer.steps[0] += 3
    saved = copy.deepcopy(algorithm.log_alpha.detach())
    algorithm.to('cpu')
    torch.testing.assert_close(algorithm.log_alpha.detach(), saved)
    assert algorithm.alpha_optimizer.params[0] is algorithm.log_alpha
    assert torch.all(algorithm.alpha_optimizer.steps[0] == 3)


def test_sampling_policy_is_the_mixture_for_qmp_and_routing_otherwise():
    env = make_env('PointReachMT-v0')
    qmp = build_algorithm(resolve_config('qmp_dnc', {}), env)
    dnc = build_algorithm(resolve_config('dnc_sac', {}), env)
    assert type(qmp.exploration_policy).__name__ == 'QSwitchMixturePolicy'
    assert dnc.exploration_policy is None
    assert type(dnc.policy).__name__ == 'TaskRoutingPolicy'
    assert qmp.sampling_policy is qmp.exploration_policy
    assert dnc.sampling_policy is dnc.policy
    # The (vectorised) sampler acts with its own copy of the sampling policy.
    assert type(qmp._sampler._policy) is type(qmp.exploration_policy)
    assert type(dnc._sampler._policy) is type(dnc.policy)
    assert qmp._sampler._policy is not qmp.exploration_policy


def test_the_update_returns_its_statistics_and_the_step_keeps_the_active_tasks(algo, monkeypatch):
    algorithm, trainer = algo
    while (algorithm.replay_buffer.sizes() < 50).any():
        algorithm.train_once(trainer)
    before = {key: value.copy() for key, value in algorithm.last_stats.items()}
    active = np.array([True, False, True, False])
    stats = algorithm._update(active, torch.as_tensor(active))
    assert set(stats) == set(algorithm.last_stats)
    assert all(value.shape == (4,) for value in stats.values())
    for key, value in before.items():  # the update itself writes nothing
        np.testing.assert_array_equal(algorithm.last_stats[key], value)
    returned = {
        key: torch.arange(4, dtype=torch.float32) + 10 * i
        for i, key in enumerate(algorithm.last_stats)
    }
    monkeypatch.setattr(algorithm, '_update', lambda tasks, mask: returned)
    algorithm._gradient_step(active)
    algorithm.flush_step_stats()
    for key, value in returned.items():
        np.testing.assert_array_equal(algorithm.last_stats[key][active], value.numpy()[active])
        np.testing.assert_array_equal(algorithm.last_stats[key][~active], before[key][~active])
