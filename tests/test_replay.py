"""Tests of ``learning/replay.py`` (``PerTaskReplayBuffer``) on episodes of the toy env."""
import pickle

import numpy as np
import pytest
import torch

from environments.point_reach import GOALS, STEP_SIZE
from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.networks import TaskTanhGaussianPolicies
from learning.policies import TaskRoutingPolicy
from learning.replay import KEYS, PerTaskReplayBuffer
from garage import EpisodeBatch, StepType
from garage.sampler import LocalSampler

torch.set_num_threads(1)

N_TASKS = 4
STATE_DIM = 2


class ConstantPolicy:
    """Always outputs zeros: never reaches a goal, so every episode times out."""

    def reset(self, do_resets=None):
        pass

    def get_action(self, observation):
        return np.zeros(2, np.float32), {'mean': np.zeros(2, np.float32)}

    def get_actions(self, observations):
        zeros = np.zeros((len(observations), 2), np.float32)
        return zeros, {'mean': zeros}


class ScriptedReacher(ConstantPolicy):
    """Heads straight for the goal of the task named by the observation's one-hot."""

    def get_action(self, observation):
        task = int(np.argmax(observation[STATE_DIM:]))
        action = np.clip((GOALS[task] - observation[:STATE_DIM]) / STEP_SIZE, -1, 1)
        action = action.astype(np.float32)
        return action, {'mean': action}

    def get_actions(self, observations):
        actions = np.stack([self.get_action(o)[0] for o in observations])
        return actions, {'mean': actions}


@pytest.fixture(scope='module')
def env():
    family = make_env('PointReachMT-v0')
    yield family
    family.close()


def _collect(env, policy, n_samples=400):
    sampler = LocalSampler(agents=policy, envs=env.get_train_envs(),
                           max_episode_length=env.max_episode_length, n_workers=env.n_tasks)
    return sampler.obtain_samples(0, n_samples, agent_update=None)


@pytest.fixture(scope='module')
def random_batch(env):
    torch.manual_seed(0)
    policies = TaskTanhGaussianPolicies(env.n_tasks, env.network_input_dim, env.action_dim,
                                        (16, 16))
    policy = TaskRoutingPolicy(env.spec, policies, env.split_observation)
    return _collect(env, policy)


@pytest.fixture(scope='module')
def terminal_batch(env):
    return _collect(env, ScriptedReacher(), 100)


@pytest.fixture(scope='module')
def timeout_batch(env):
    return _collect(env, ConstantPolicy(), 200)


def _per_task_steps(batch):
    """Expected buffer contents per task, computed from the raw episodes."""
    expected = {t: {k: [] for k in KEYS} for t in range(N_TASKS)}
    for episode in batch.split():
        one_hot_task = int(np.argmax(episode.observations[0, STATE_DIM:]))
        assert np.all(episode.env_infos['task_id'] == one_hot_task)
        steps = expected[one_hot_task]
        steps['observations'].append(episode.observations[:, :STATE_DIM])
        steps['actions'].append(episode.actions)
        steps['rewards'].append(episode.rewards[:, None])
        steps['next_observations'].append(episode.next_observations[:, :STATE_DIM])
        steps['terminals'].append(
            np.array([s == StepType.TERMINAL for s in episode.step_types], np.float32)[:, None])
    return {t: {k: np.concatenate(v) if v else np.zeros((0, 1)) for k, v in steps.items()}
            for t, steps in expected.items()}


def _stored(buffer, task):
    inner = buffer._buffers[task]
    n = inner.n_transitions_stored
    return {k: v[:n] for k, v in inner._buffer.items()}


def test_transitions_are_routed_by_task_id(env, random_batch):
    buffer = PerTaskReplayBuffer(N_TASKS, 10_000, env.split_observation)
    added = buffer.add_episodes(random_batch)
    expected = _per_task_steps(random_batch)
    counts = np.bincount(random_batch.env_infos['task_id'], minlength=N_TASKS)
    assert counts.sum() == len(random_batch.actions) >= 400
    assert (counts > 0).all()  # every task got episodes
    np.testing.assert_array_equal(added, counts)
    np.testing.assert_array_equal(buffer.sizes(), counts)
    for task in range(N_TASKS):
        stored = _stored(buffer, task)
        assert set(stored) == set(KEYS)
        for key in KEYS:
            assert stored[key].dtype == np.float32
            np.testing.assert_array_equal(stored[key], expected[task][key].astype(np.float32))
        # observations are stored split: the one-hot is sliced off for this env
        assert stored['observations'].shape == (counts[task], STATE_DIM)
        # dense reward of *this* task's goal on the stored next state
        distance = np.linalg.norm(stored['next_observations'] - GOALS[task], axis=1)
        np.testing.assert_allclose(stored['rewards'][:, 0], np.exp(-distance) - 1, atol=1e-5)
    # adding again doubles every task's count
    buffer.add_episodes(random_batch)
    np.testing.assert_array_equal(buffer.sizes(), 2 * counts)


def test_terminals_only_for_terminal_steps(env, terminal_batch, timeout_batch):
    assert all(e.step_types[-1] == StepType.TERMINAL for e in terminal_batch.split())
    assert all(e.step_types[-1] == StepType.TIMEOUT for e in timeout_batch.split())
    assert all(len(e.actions) == env.max_episode_length for e in timeout_batch.split())
    buffer = PerTaskReplayBuffer(N_TASKS, 10_000, env.split_observation)
    buffer.add_episodes(terminal_batch)
    buffer.add_episodes(timeout_batch)
    expected = {t: [] for t in range(N_TASKS)}
    n_terminal = np.zeros(N_TASKS, np.int64)
    for batch in (terminal_batch, timeout_batch):
        for episode in batch.split():
            task = int(episode.env_infos['task_id'][0])
            flags = np.zeros(len(episode.actions), np.float32)
            if episode.step_types[-1] == StepType.TERMINAL:
                flags[-1] = 1.0
                n_terminal[task] += 1
            expected[task].append(flags)
    for task in range(N_TASKS):
        terminals = _stored(buffer, task)['terminals'][:, 0]
        np.testing.assert_array_equal(terminals, np.concatenate(expected[task]))
        assert terminals.sum() == n_terminal[task] > 0
    # the time-out episodes alone: no terminal at all, not even on their last step
    timeouts_only = PerTaskReplayBuffer(N_TASKS, 10_000, env.split_observation)
    timeouts_only.add_episodes(timeout_batch)
    for task in range(N_TASKS):
        stored = _stored(timeouts_only, task)
        assert len(stored['terminals']) == 50
        assert stored['terminals'].sum() == 0


def test_sample_shapes_masking_and_sources(env, random_batch):
    buffer = PerTaskReplayBuffer(N_TASKS, 10_000, env.split_observation)
    buffer.add_episodes(random_batch)
    np.random.seed(0)
    mask = np.array([True, False, True, True])
    batch_size = 64
    batch = buffer.sample(batch_size, mask)
    widths = {'observations': 2, 'actions': 2, 'rewards': 1, 'next_observations': 2,
              'terminals': 1}
    assert set(batch) == set(KEYS)
    for key, width in widths.items():
        assert batch[key].shape == (N_TASKS, batch_size, width)
        assert batch[key].dtype == np.float32
        assert np.all(batch[key][1] == 0)
    rows = {t: np.concatenate([_stored(buffer, t)[k] for k in KEYS], axis=1)
            for t in range(N_TASKS)}
    for task in np.flatnonzero(mask):
        sampled = np.concatenate([batch[k][task] for k in KEYS], axis=1)
        for row in sampled:
            assert np.any(np.all(rows[task] == row, axis=1))
            for other in range(N_TASKS):
                if other != task:
                    assert not np.any(np.all(rows[other] == row, axis=1))
        # the sample is spread over the task's buffer, not one repeated row
        assert len(np.unique(sampled, axis=0)) > batch_size // 2
        # rewards belong to this task's goal
        distance = np.linalg.norm(batch['next_observations'][task] - GOALS[task], axis=1)
        np.testing.assert_allclose(batch['rewards'][task, :, 0], np.exp(-distance) - 1,
                                   atol=1e-5)
    # the same numpy seed gives the same sample
    np.random.seed(0)
    again = buffer.sample(batch_size, mask)
    for key in KEYS:
        np.testing.assert_array_equal(again[key], batch[key])


def test_pickle_round_trip_is_small_and_equivalent(env, random_batch, terminal_batch):
    capacity = 100_000
    buffer = PerTaskReplayBuffer(N_TASKS, capacity, env.split_observation)
    buffer.add_episodes(random_batch)
    preallocated = sum(v.nbytes for b in buffer._buffers for v in b._buffer.values())
    assert preallocated > 10_000_000  # what a naive pickle would write
    data = pickle.dumps(buffer)
    assert len(data) < 1_000_000
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.sizes(), buffer.sizes())
    assert restored.capacity_per_task == capacity
    for task in range(N_TASKS):
        for key in KEYS:
            original = buffer._buffers[task]._buffer[key]
            copy = restored._buffers[task]._buffer[key]
            assert copy.shape == original.shape == (capacity, original.shape[1])
            assert copy.dtype == original.dtype
            np.testing.assert_array_equal(copy, original)
    mask = np.ones(N_TASKS, bool)
    np.random.seed(3)
    expected = buffer.sample(32, mask)
    np.random.seed(3)
    actual = restored.sample(32, mask)
    for key in KEYS:
        np.testing.assert_array_equal(actual[key], expected[key])
    # both keep filling identically after the round trip
    buffer.add_episodes(terminal_batch)
    restored.add_episodes(terminal_batch)
    np.testing.assert_array_equal(restored.sizes(), buffer.sizes())
    for task in range(N_TASKS):
        for key in KEYS:
            np.testing.assert_array_equal(_stored(restored, task)[key],
                                          _stored(buffer, task)[key])


def test_pickle_round_trip_after_wraparound_and_with_empty_task(env, timeout_batch):
    # 50-step episodes into 120-slot buffers: the third/fourth episode wraps around
    buffer = PerTaskReplayBuffer(N_TASKS, 120, env.split_observation)
    for _ in range(3):
        buffer.add_episodes(timeout_batch)
    np.testing.assert_array_equal(buffer.sizes(), [120] * N_TASKS)
    empty = PerTaskReplayBuffer(N_TASKS, 120, env.split_observation)
    restored = pickle.loads(pickle.dumps(buffer))
    restored_empty = pickle.loads(pickle.dumps(empty))
    np.testing.assert_array_equal(restored_empty.sizes(), [0] * N_TASKS)
    for task in range(N_TASKS):
        for key in KEYS:
            np.testing.assert_array_equal(restored._buffers[task]._buffer[key],
                                          buffer._buffers[task]._buffer[key])
    np.random.seed(5)
    expected = buffer.sample(16, np.ones(N_TASKS, bool))
    np.random.seed(5)
    actual = restored.sample(16, np.ones(N_TASKS, bool))
    for key in KEYS:
        np.testing.assert_array_equal(actual[key], expected[key])


def test_episode_changing_task_raises(env, timeout_batch):
    env_infos = {k: v.copy() for k, v in timeout_batch.env_infos.items()}
    env_infos['task_id'][10] = (env_infos['task_id'][10] + 1) % N_TASKS
    broken = EpisodeBatch(env_spec=timeout_batch.env_spec,
                          episode_infos=timeout_batch.episode_infos,
                          observations=timeout_batch.observations,
                          last_observations=timeout_batch.last_observations,
                          actions=timeout_batch.actions,
                          rewards=timeout_batch.rewards,
                          env_infos=env_infos,
                          agent_infos=timeout_batch.agent_infos,
                          step_types=timeout_batch.step_types,
                          lengths=timeout_batch.lengths)
    buffer = PerTaskReplayBuffer(N_TASKS, 1000, env.split_observation)
    with pytest.raises(ValueError, match='task'):
        buffer.add_episodes(broken)
    # the unmodified batch is accepted
    buffer.add_episodes(timeout_batch)
    np.testing.assert_array_equal(buffer.sizes(), [50] * N_TASKS)


def test_qmp_transitions_go_to_the_task_whose_reward_they_carry(env):
    """Under the Q-switch another task's policy often acts; the step still belongs to the
    buffer of ``task_id`` (whose reward it is), never of ``selected_policy``."""
    torch.manual_seed(0)
    np.random.seed(0)
    algorithm = build_algorithm(resolve_config('qmp_dnc', {
        'hidden_sizes': [8], 'qmp_selection': 'uniform'}), env)
    episodes = algorithm._sampler.obtain_samples(
        0, 400, algorithm.exploration_policy.get_param_values())
    task_ids = episodes.env_infos['task_id']
    selected = episodes.agent_infos['selected_policy']
    assert np.mean(selected != task_ids) > 0.5  # uniform over 4: about 3/4 foreign actions
    buffer = PerTaskReplayBuffer(N_TASKS, 1000, env.split_observation)
    added = buffer.add_episodes(episodes)
    np.testing.assert_array_equal(added, np.bincount(task_ids, minlength=N_TASKS))
    sample = buffer.sample(2000, np.ones(N_TASKS, dtype=bool))
    rewards = episodes.rewards.astype(np.float32)  # as stored
    for task in range(N_TASKS):
        own_rewards = set(rewards[task_ids == task].tolist())
        assert set(sample['rewards'][task, :, 0].tolist()) <= own_rewards
        acted_for_others = set(rewards[(selected == task) & (task_ids != task)].tolist())
        assert acted_for_others - own_rewards  # routing by selected_policy would be caught
