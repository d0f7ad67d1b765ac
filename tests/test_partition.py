"""``--partition random``: one uniformly drawn policy per episode, which also owns its data."""

from __future__ import annotations

import numpy as np
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.networks import TaskTanhGaussianPolicies
from learning.policies import RandomPartitionPolicy

TINY = {
    'batch_size': 200,
    'min_buffer_size': 50,
    'gradient_steps_per_itr': 8,
    'buffer_batch_size': 8,
    'hidden_sizes': [8, 8],
    'partition': 'random',
}


def test_one_draw_per_episode_held_until_reset_and_uniform_over_policies():
    env = make_env('PointReachMT-v0')
    policy = RandomPartitionPolicy(
        env.spec, TaskTanhGaussianPolicies(4, 2, 2, (8,)), env.split_observation
    )
    observations = np.stack([e.reset()[0] for e in env.get_train_envs()] * 50)  # 200 rows
    np.random.seed(0)
    policy.reset()
    _, first = policy.get_actions(observations)
    for _ in range(3):  # held for the whole episode
        _, later = policy.get_actions(observations)
        np.testing.assert_array_equal(later['partition_id'], first['partition_id'])
    np.testing.assert_array_equal(first['selected_policy'], first['partition_id'])
    np.testing.assert_array_equal(first['task_id'], np.tile(np.arange(4), 50))
    counts = np.bincount(first['partition_id'], minlength=4)
    assert counts.min() > 25  # about 50 each out of 200
    assert np.mean(first['partition_id'] != first['task_id']) > 0.5  # not the task's policy
    restarting = np.zeros(200, dtype=bool)
    restarting[:100] = True
    policy.reset(restarting)
    _, after = policy.get_actions(observations)
    np.testing.assert_array_equal(after['partition_id'][100:], first['partition_id'][100:])
    assert not np.array_equal(after['partition_id'][:100], first['partition_id'][:100])


def test_the_acting_policy_is_the_drawn_one():
    env = make_env('PointReachMT-v0')
    policies = TaskTanhGaussianPolicies(4, 2, 2, (8,))
    with torch.no_grad():  # policy k's mean action is tanh(k) in both dimensions
        for parameter in policies.parameters():
            parameter.zero_()
        policies.mean_head.bias.copy_(torch.arange(4.0)[:, None, None].expand(4, 1, 2))
    policy = RandomPartitionPolicy(env.spec, policies, env.split_observation)
    observations = np.stack([e.reset()[0] for e in env.get_train_envs()])
    _, infos = policy.get_actions(observations)
    np.testing.assert_allclose(infos['mean'][:, 0], np.tanh(infos['partition_id']), rtol=1e-6)


def test_dnc_sac_routes_each_episode_to_its_drawn_policy():
    torch.manual_seed(0)
    np.random.seed(0)
    algorithm = build_algorithm(resolve_config('dnc_sac', TINY), make_env('PointReachMT-v0'))
    assert isinstance(algorithm.policy, RandomPartitionPolicy)

    class Trainer:
        step_itr = 0

        @staticmethod
        def obtain_episodes(itr, batch_size=None):
            return algorithm._sampler.obtain_samples(
                itr, batch_size, algorithm.policy.get_param_values()
            )

    episodes, _, _ = algorithm.train_once(Trainer())
    expected = np.zeros(4, dtype=np.int64)
    task_of_partition = [set() for _ in range(4)]
    for episode in episodes.split():
        partition = int(episode.agent_infos['partition_id'][0])
        expected[partition] += len(episode.actions)
        task_of_partition[partition].add(int(episode.env_infos['task_id'][0]))
    np.testing.assert_array_equal(algorithm.env_steps, expected)
    np.testing.assert_array_equal(algorithm.replay_buffer.sizes(), expected)
    assert any(len(tasks) > 1 for tasks in task_of_partition)  # a policy got several tasks
