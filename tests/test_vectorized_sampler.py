"""``VectorizedSampler`` collects what garage's ``LocalSampler`` collects, in lockstep.

The policies act (almost) deterministically here: every task policy's log-std head outputs
``LOG_STD_MIN`` (std e^-20), so an episode depends on the env's seeded reset noise and the
networks only, and the two samplers must return the same episodes in the same order, step for
step, whatever order they draw their random numbers in.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from garage.sampler import DefaultWorker, LocalSampler

from environments.point_reach import GOALS, START
from environments.registry import make_env
from infrastructure.vectorized_sampler import VectorizedSampler, plan_group, run_lockstep
from learning.architectures import make_critics, make_policies
from learning.networks import LOG_STD_MIN
from learning.policies import QSwitchMixturePolicy, TaskRoutingPolicy

N_TASKS, HORIZON = 4, 50


def test_groups_follow_the_visit_order_and_hold_only_needed_visits():
    # 2 tasks, horizon 10, one env each: a group never holds an env twice.
    assert plan_group(2, 1, 0, 35, 10) == [(0, 0), (1, 1)]
    # 10 steps missing: the second visit is needed only if the first ends early -> alone.
    assert plan_group(2, 1, 0, 10, 10) == [(0, 0)]
    assert plan_group(2, 1, 0, 11, 10) == [(0, 0), (1, 1)]
    # Two copies per task: cycle 1 runs on the copies (rows 2, 3), so 4 visits fit.
    assert plan_group(2, 2, 0, 100, 10) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    # A group starting mid-cycle: visit 3 is task 1 of cycle 1 (copy 1 -> row 3), visits 4
    # and 5 are cycle 2 (copy 0), visit 6 is task 0 of cycle 3 (copy 1 -> row 2), and visit 7
    # would need row 3 again.
    assert plan_group(2, 2, 3, 100, 10) == [(3, 3), (4, 0), (5, 1), (6, 2)]
    # The first visit is always taken, even when one step is missing.
    assert plan_group(3, 1, 2, 1, 10) == [(2, 2)]


def _policies(qswitch: bool, sampling_freq: int = 1):
    torch.manual_seed(3)
    env = make_env('PointReachMT-v0', seed=5)
    policies = make_policies('separate', N_TASKS, env.network_input_dim, env.action_dim, (16, 16))
    with torch.no_grad():
        policies.log_std_head.weight.zero_()
        policies.log_std_head.bias.fill_(LOG_STD_MIN)
        # Each task's policy heads for its goal (plus a state-dependent part), so episodes end
        # early at different steps (TERMINAL) and the partial-batch logic is exercised.
        policies.mean_head.weight.mul_(0.5)
        for task_id, goal in enumerate(GOALS):
            direction = (goal - START) / np.linalg.norm(goal - START)
            policies.mean_head.bias[task_id, 0] = torch.atanh(torch.as_tensor(0.9 * direction))
    if not qswitch:
        return env, TaskRoutingPolicy(env.spec, policies, env.split_observation)
    critics = make_critics(
        'separate', N_TASKS, env.network_input_dim, env.action_dim, (16, 16), layer_norm=False
    )
    return env, QSwitchMixturePolicy(
        env.spec, policies, critics, env.split_observation, sampling_freq=sampling_freq
    )


def _assert_same_episodes(expected, actual):
    np.testing.assert_array_equal(actual.lengths, expected.lengths)
    assert actual.lengths.dtype == expected.lengths.dtype
    np.testing.assert_array_equal(actual.step_types, expected.step_types)
    for name in ('observations', 'last_observations', 'actions', 'rewards'):
        assert getattr(actual, name).dtype == getattr(expected, name).dtype, name
        np.testing.assert_allclose(
            getattr(actual, name), getattr(expected, name), rtol=1e-5, atol=1e-5
        )
    for infos in ('env_infos', 'agent_infos', 'episode_infos'):
        expected_infos, actual_infos = getattr(expected, infos), getattr(actual, infos)
        assert sorted(actual_infos) == sorted(expected_infos), infos
        for key, value in expected_infos.items():
            assert actual_infos[key].dtype == value.dtype, key
            np.testing.assert_allclose(actual_infos[key], value, rtol=1e-5, atol=1e-5)


def _local(policy, env):
    return LocalSampler(
        agents=policy,
        envs=env.get_train_envs(),
        max_episode_length=HORIZON,
        n_workers=N_TASKS,
        worker_class=DefaultWorker,
    )


@pytest.mark.parametrize('qswitch, sampling_freq', [(False, 1), (True, 1), (True, 3)])
def test_same_episodes_as_the_local_sampler(qswitch, sampling_freq):
    env, policy = _policies(qswitch, sampling_freq)
    local = _local(policy, env)
    env_vec, policy_vec = _policies(qswitch, sampling_freq)
    vectorized = VectorizedSampler(policy_vec, env_vec.get_train_envs(), max_episode_length=HORIZON)
    # Two collections: the second continues every env's episode stream; 333 steps take
    # several cycles and end inside one (whichever visit completes the batch).
    lengths = []
    for num_samples in (333, 120):
        expected = local.obtain_samples(0, num_samples, policy.get_param_values())
        actual = vectorized.obtain_samples(0, num_samples, policy_vec.get_param_values())
        _assert_same_episodes(expected, actual)
        lengths.extend(actual.lengths)
    assert min(lengths) < HORIZON and max(lengths) == HORIZON
    if qswitch:
        assert len(np.unique(actual.agent_infos['selected_policy'])) > 1
    assert vectorized.total_env_steps == local.total_env_steps
    vectorized.shutdown_worker()


def test_loads_the_trainers_parameters_into_its_own_copy():
    env, policy = _policies(qswitch=False)
    sampler = VectorizedSampler(policy, env.get_train_envs(), max_episode_length=HORIZON)
    params = policy.get_param_values()
    params['policies']['mean_head.bias'] = params['policies']['mean_head.bias'] + 1.0
    sampler.obtain_samples(0, 10, params)
    copied = sampler._policy.get_param_values()['policies']['mean_head.bias']
    torch.testing.assert_close(copied, params['policies']['mean_head.bias'])
    assert not torch.equal(policy.get_param_values()['policies']['mean_head.bias'], copied)


def test_copies_per_task_are_seeded_apart_and_every_task_gets_its_share():
    env, policy = _policies(qswitch=False)
    sampler = VectorizedSampler(
        policy, env.get_train_envs(), max_episode_length=HORIZON, envs_per_task=2
    )
    episodes = sampler.obtain_samples(0, 2 * N_TASKS * HORIZON, policy.get_param_values())
    starts = np.concatenate([[0], np.cumsum(episodes.lengths)[:-1]])
    task_ids = episodes.env_infos['task_id'][starts]
    # Visits in cycle order: tasks 0..3, then 0..3 again (on the copies), ...
    np.testing.assert_array_equal(task_ids[: 2 * N_TASKS], np.tile(np.arange(N_TASKS), 2))
    first_cycle, second_cycle = (
        episodes.observations[starts[:N_TASKS]],
        episodes.observations[starts[N_TASKS : 2 * N_TASKS]],
    )
    assert not np.allclose(first_cycle, second_cycle)  # the copies' resets differ
    sampler.shutdown_worker()


@pytest.mark.slow
def test_worker_processes_collect_the_same_episodes_and_exit():
    env, policy = _policies(qswitch=True)
    one = VectorizedSampler(policy, env.get_train_envs(), max_episode_length=HORIZON)
    env2, policy2 = _policies(qswitch=True)
    two = VectorizedSampler(policy2, env2.get_train_envs(), max_episode_length=HORIZON, n_workers=2)
    try:
        for num_samples in (333, 120):
            expected = one.obtain_samples(0, num_samples, policy.get_param_values())
            actual = two.obtain_samples(0, num_samples, policy2.get_param_values())
            _assert_same_episodes(expected, actual)
        processes = [worker.process for worker in two._workers.workers]
        assert all(process.is_alive() for process in processes)
        # A failure inside a worker reaches the caller; shutting down still ends the workers.
        with pytest.raises(RuntimeError, match='worker failed'):
            two.obtain_samples(0, 10, {'policies': {}, 'critics': {}})
    finally:
        two.shutdown_worker()
    assert not any(process.is_alive() for process in processes)
    assert all(process.exitcode == 0 for process in processes)


def test_pickles_for_snapshots_and_collects_after_unpickling():
    env, policy = _policies(qswitch=True, sampling_freq=2)
    sampler = VectorizedSampler(policy, env.get_train_envs(), max_episode_length=HORIZON)
    sampler.obtain_samples(0, 60, policy.get_param_values())
    restored = pickle.loads(pickle.dumps(sampler))
    assert restored.total_env_steps == sampler.total_env_steps
    episodes = restored.obtain_samples(0, 60, policy.get_param_values())
    assert episodes.lengths.sum() >= 60
    assert set(episodes.agent_infos) == {'mean', 'task_id', 'selected_policy'}
    restored.shutdown_worker()


@pytest.mark.parametrize(
    'qswitch, sampling_freq, subsets', [(False, 1, True), (True, 1, True), (True, 3, False)]
)
def test_the_policy_acts_on_running_rows_unless_it_keeps_per_row_memory(
    qswitch, sampling_freq, subsets, monkeypatch
):
    env, policy = _policies(qswitch, sampling_freq)
    batch_sizes = []
    get_actions = policy.get_actions

    def counting_get_actions(observations):
        batch_sizes.append(len(observations))
        return get_actions(observations)

    monkeypatch.setattr(policy, 'get_actions', counting_get_actions)
    episodes = run_lockstep(policy, env.get_train_envs(), HORIZON)
    lengths = np.array([int(episode.lengths[0]) for episode in episodes])
    assert lengths.min() < HORIZON  # some rows finish early
    running = [int((lengths > step).sum()) for step in range(int(lengths.max()))]
    assert batch_sizes == (running if subsets else [N_TASKS] * len(running))
