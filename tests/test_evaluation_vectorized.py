"""``LockstepEvaluator`` (all evaluation episodes in lockstep) against sequential ``evaluate``.

The policy is a fixed function of the observation (``mean`` = tanh of the task policy's mean),
so an episode depends only on its env's start. With the start noise off, every start of the toy
env is the same and the two paths must give identical statistics; with it on, the lockstep
path's copies draw their own seeded starts (``docs/deviations.md``), reproducibly.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import environments.point_reach as point_reach
from environments.registry import make_env
from infrastructure.evaluation import LockstepEvaluator, evaluate
from learning.architectures import make_policies
from learning.policies import TaskRoutingPolicy

N_TASKS, HORIZON, EPISODES = 4, 50, 5


class CountingPolicy(TaskRoutingPolicy):
    """Counts ``get_actions`` calls and the rows of each."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batch_sizes: list[int] = []

    def get_actions(self, observations):
        self.batch_sizes.append(len(observations))
        return super().get_actions(observations)


def _policy(env) -> CountingPolicy:
    torch.manual_seed(0)
    policies = make_policies('separate', N_TASKS, env.network_input_dim, env.action_dim, (16, 16))
    with torch.no_grad():  # head each task for its goal, so that some episodes end early
        policies.mean_head.weight.mul_(0.3)
        for task_id, goal in enumerate(point_reach.GOALS):
            direction = (goal - point_reach.START) / np.linalg.norm(goal - point_reach.START)
            policies.mean_head.bias[task_id, 0] = torch.atanh(torch.as_tensor(0.95 * direction))
    return CountingPolicy(env.spec, policies, env.split_observation)


def _assert_same_stats(expected, actual):
    (expected_stats, expected_tasks), (actual_stats, actual_tasks) = expected, actual
    np.testing.assert_array_equal(actual_tasks, expected_tasks)
    assert sorted(actual_stats) == sorted(expected_stats)
    for key, value in expected_stats.items():
        np.testing.assert_allclose(actual_stats[key], value, rtol=1e-6, atol=1e-6, err_msg=key)


def test_same_statistics_as_sequential_evaluation_without_start_noise(monkeypatch):
    monkeypatch.setattr(point_reach, 'START_NOISE', 0.0)
    sequential_env, lockstep_env = make_env('PointReachMT-v0'), make_env('PointReachMT-v0')
    policy = _policy(sequential_env)
    evaluator = LockstepEvaluator(lockstep_env.get_test_envs(), EPISODES)
    assert evaluator.envs_per_task == EPISODES  # 20 episodes: all at once (cap 32)
    for _ in range(2):  # the second evaluation continues every env's stream
        expected = evaluate(policy, sequential_env.get_test_envs(), EPISODES, HORIZON, 0.99)
        sequential_calls = len(policy.batch_sizes)
        policy.batch_sizes.clear()
        actual = evaluator.evaluate(policy, HORIZON, 0.99)
        _assert_same_stats(expected, actual)
        # One call per step for all 20 episodes, instead of one per step of each round; each
        # call holds the episodes still running (the task policy's rows are independent).
        lengths = actual[0]['length']
        assert policy.batch_sizes[0] == N_TASKS * EPISODES
        assert policy.batch_sizes == [
            int((lengths > step).sum()) for step in range(int(lengths.max()))
        ]
        assert sequential_calls > len(policy.batch_sizes)
        policy.batch_sizes.clear()
    lengths = actual[0]['length']
    assert lengths.min() < HORIZON and actual[0]['terminated'].any()


def test_one_env_per_task_is_the_sequential_path_with_start_noise():
    sequential_env, lockstep_env = (
        make_env('PointReachMT-v0', seed=3),
        make_env('PointReachMT-v0', seed=3),
    )
    policy = _policy(sequential_env)
    evaluator = LockstepEvaluator(lockstep_env.get_test_envs(), EPISODES, envs_per_task=1)
    for _ in range(2):
        _assert_same_stats(
            evaluate(policy, sequential_env.get_test_envs(), EPISODES, HORIZON, 0.99),
            evaluator.evaluate(policy, HORIZON, 0.99),
        )


@pytest.mark.parametrize('envs_per_task', [EPISODES, 2])
def test_copies_are_seeded_apart_and_reproducible(envs_per_task):
    env = make_env('PointReachMT-v0', seed=1)
    policy = _policy(env)
    first = LockstepEvaluator(
        make_env('PointReachMT-v0', seed=1).get_test_envs(), EPISODES, envs_per_task
    )
    second = LockstepEvaluator(
        make_env('PointReachMT-v0', seed=1).get_test_envs(), EPISODES, envs_per_task
    )
    stats, task_ids = first.evaluate(policy, HORIZON, 0.99)
    _assert_same_stats((stats, task_ids), second.evaluate(policy, HORIZON, 0.99))
    for task_id in range(N_TASKS):  # the episodes of one task start apart
        assert len(np.unique(stats['return'][task_ids == task_id])) == EPISODES
    starts = [copies[0].reset()[0] for copies in first.copies]
    assert len({tuple(start) for start in starts}) == envs_per_task


def test_the_number_of_envs_per_task_is_capped():
    env = make_env('PointReachMT-v0')
    assert LockstepEvaluator(env.get_test_envs(), 100).envs_per_task == 8  # 32 // 4 tasks
    assert LockstepEvaluator(env.get_test_envs(), 3, envs_per_task=8).envs_per_task == 3


class FailingPolicy(CountingPolicy):
    """Fails inside the worker process that acts with it."""

    def get_actions(self, observations):
        raise ValueError('no actions here')


@pytest.mark.slow
def test_worker_processes_give_the_statistics_of_one_process_and_exit():
    one_env, two_env = make_env('PointReachMT-v0', seed=2), make_env('PointReachMT-v0', seed=2)
    policy = _policy(one_env)
    one = LockstepEvaluator(one_env.get_test_envs(), EPISODES, envs_per_task=2)
    two = LockstepEvaluator(two_env.get_test_envs(), EPISODES, envs_per_task=2, n_workers=2)
    assert len(two.copies) == 1  # the copies are built in the workers
    try:
        for _ in range(2):  # groups of 2, 2 and 1 copies; the second continues the streams
            expected = one.evaluate(policy, HORIZON, 0.99)
            _assert_same_stats(expected, two.evaluate(policy, HORIZON, 0.99))
        # Rows are dealt round-robin, so both workers step a share of every group.
        processes = [worker.process for worker in two._workers.workers]
        assert len(processes) == 2 and all(process.is_alive() for process in processes)
        failing = FailingPolicy(policy.env_spec, policy._policies, policy._split)
        with pytest.raises(RuntimeError, match='an evaluation worker failed'):
            two.evaluate(failing, HORIZON, 0.99)
        restored = pickle.loads(pickle.dumps(two))  # snapshots leave the processes out
        assert restored._workers is None and restored.n_workers == 2
    finally:
        two.close()
    assert not any(process.is_alive() for process in processes)
    assert all(process.exitcode == 0 for process in processes)
