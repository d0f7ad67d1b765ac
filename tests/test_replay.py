"""Tests of ``learning/replay.py`` (``PerTaskReplayBuffer``) on episodes of the toy env."""

import pickle

import numpy as np
import pytest
import torch
from garage import EpisodeBatch, StepType
from garage.replay_buffer import PathBuffer
from garage.sampler import LocalSampler

from environments.point_reach import GOALS, STEP_SIZE
from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.networks import TaskTanhGaussianPolicies
from learning.policies import TaskRoutingPolicy
from learning.replay import (
    KEYS,
    PerTaskReplayBuffer,
    SharedReplayBuffer,
    minimal_bytes_per_transition,
)
from learning.transition_rings import TransitionRings

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
    sampler = LocalSampler(
        agents=policy,
        envs=env.get_train_envs(),
        max_episode_length=env.max_episode_length,
        n_workers=env.n_tasks,
    )
    return sampler.obtain_samples(0, n_samples, agent_update=None)


@pytest.fixture(scope='module')
def random_batch(env):
    torch.manual_seed(0)
    policies = TaskTanhGaussianPolicies(
        env.n_tasks, env.network_input_dim, env.action_dim, (16, 16)
    )
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
            np.array([s == StepType.TERMINAL for s in episode.step_types], np.float32)[:, None]
        )
    return {
        t: {k: np.concatenate(v) if v else np.zeros((0, 1)) for k, v in steps.items()}
        for t, steps in expected.items()
    }


def _stored(buffer, task):
    """Task ``task``'s stored transitions, oldest first (before any wrap: insertion order)."""
    return buffer.stored(task)


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
    widths = {'observations': 2, 'actions': 2, 'rewards': 1, 'next_observations': 2, 'terminals': 1}
    assert set(batch) == set(KEYS)
    for key, width in widths.items():
        assert batch[key].shape == (N_TASKS, batch_size, width)
        assert batch[key].dtype == np.float32
        assert np.all(batch[key][1] == 0)
    rows = {
        t: np.concatenate([_stored(buffer, t)[k] for k in KEYS], axis=1) for t in range(N_TASKS)
    }
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
        np.testing.assert_allclose(batch['rewards'][task, :, 0], np.exp(-distance) - 1, atol=1e-5)
    # the same numpy seed gives the same sample
    np.random.seed(0)
    again = buffer.sample(batch_size, mask)
    for key in KEYS:
        np.testing.assert_array_equal(again[key], batch[key])


def test_pickle_round_trip_is_small_and_equivalent(env, random_batch, terminal_batch):
    capacity = 100_000
    buffer = PerTaskReplayBuffer(N_TASKS, capacity, env.split_observation)
    buffer.add_episodes(random_batch)
    data = pickle.dumps(buffer)
    # only the filled rows are written: well under one float32 row of every key per capacity
    assert len(data) < 100_000 < N_TASKS * capacity
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.sizes(), buffer.sizes())
    assert restored.capacity_per_task == capacity
    for task in range(N_TASKS):
        for key in KEYS:
            np.testing.assert_array_equal(_stored(restored, task)[key], _stored(buffer, task)[key])
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
            np.testing.assert_array_equal(_stored(restored, task)[key], _stored(buffer, task)[key])


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
            np.testing.assert_array_equal(_stored(restored, task)[key], _stored(buffer, task)[key])
    np.random.seed(5)
    expected = buffer.sample(16, np.ones(N_TASKS, bool))
    np.random.seed(5)
    actual = restored.sample(16, np.ones(N_TASKS, bool))
    for key in KEYS:
        np.testing.assert_array_equal(actual[key], expected[key])
    # the restored buffer keeps wrapping like the original
    buffer.add_episodes(timeout_batch)
    restored.add_episodes(timeout_batch)
    for task in range(N_TASKS):
        for key in KEYS:
            np.testing.assert_array_equal(_stored(restored, task)[key], _stored(buffer, task)[key])


def test_episode_changing_task_raises(env, timeout_batch):
    env_infos = {k: v.copy() for k, v in timeout_batch.env_infos.items()}
    env_infos['task_id'][10] = (env_infos['task_id'][10] + 1) % N_TASKS
    broken = EpisodeBatch(
        env_spec=timeout_batch.env_spec,
        episode_infos=timeout_batch.episode_infos,
        observations=timeout_batch.observations,
        last_observations=timeout_batch.last_observations,
        actions=timeout_batch.actions,
        rewards=timeout_batch.rewards,
        env_infos=env_infos,
        agent_infos=timeout_batch.agent_infos,
        step_types=timeout_batch.step_types,
        lengths=timeout_batch.lengths,
    )
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
    algorithm = build_algorithm(
        resolve_config('qmp_dnc', {'hidden_sizes': [8], 'qmp_selection': 'uniform'}), env
    )
    episodes = algorithm._sampler.obtain_samples(
        0, 400, algorithm.exploration_policy.get_param_values()
    )
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


# ---------------------------------------------------------------- the compact store


def _path_buffer_paths(batch, split, keep_raw):
    """The paths the PathBuffer-based buffer stored for each episode (the reference layout)."""
    for episode in batch.split():
        states, _ = split(episode.observations)
        next_states, _ = split(episode.next_observations)
        path = {
            'observations': states.astype(np.float32),
            'actions': episode.actions.astype(np.float32),
            'rewards': episode.rewards.reshape(-1, 1).astype(np.float32),
            'next_observations': next_states.astype(np.float32),
            'terminals': (episode.step_types == StepType.TERMINAL)
            .reshape(-1, 1)
            .astype(np.float32),
        }
        if keep_raw:
            path['raw_observations'] = episode.observations.astype(np.float32)
        yield int(episode.env_infos['task_id'][0]), path


def test_samples_equal_garage_path_buffers_across_wraparound(
    env, random_batch, terminal_batch, timeout_batch
):
    """Same numpy seed, same transitions as one garage PathBuffer per task, also after the
    rings wrapped around mid-episode, with raw observations rebuilt exactly."""
    capacity = 130
    buffer = PerTaskReplayBuffer(
        N_TASKS, capacity, env.split_observation, keep_raw_observations=True
    )
    references = [PathBuffer(capacity) for _ in range(N_TASKS)]
    for batch in (random_batch, terminal_batch, timeout_batch, terminal_batch, random_batch):
        buffer.add_episodes(batch)
        for task, path in _path_buffer_paths(batch, env.split_observation, True):
            references[task].add_path(path)
        np.testing.assert_array_equal(buffer.sizes(), [r.n_transitions_stored for r in references])
        for seed, mask in ((0, np.ones(N_TASKS, bool)), (1, np.array([False, True, False, True]))):
            np.random.seed(seed)
            sample = buffer.sample(50, mask)
            np.random.seed(seed)
            for task in np.flatnonzero(mask):
                expected = references[task].sample_transitions(50)
                assert set(sample) == set(expected)
                for key, value in expected.items():
                    np.testing.assert_array_equal(sample[key][task], value)
    assert all(r.n_transitions_stored == capacity for r in references)  # it did wrap


def test_wrapped_ring_holds_the_latest_transitions_with_episode_final_next_states(
    env, terminal_batch, timeout_batch
):
    """After wrapping, a task holds its last ``capacity`` transitions in order; the last
    step of every episode has that episode's final observation as next state."""
    capacity = 70
    buffer = PerTaskReplayBuffer(N_TASKS, capacity, env.split_observation)
    batches = (timeout_batch, terminal_batch, timeout_batch, terminal_batch)
    for batch in batches:
        buffer.add_episodes(batch)
    for task in range(N_TASKS):
        episodes = [e for b in batches for e in b.split() if e.env_infos['task_id'][0] == task]
        expected_next = np.concatenate([e.next_observations for e in episodes])[-capacity:]
        stored = _stored(buffer, task)
        np.testing.assert_array_equal(
            stored['next_observations'][:, :STATE_DIM], expected_next[:, :STATE_DIM]
        )
        ends = np.cumsum([len(e.actions) for e in episodes]) - 1
        ends = ends[ends >= ends[-1] - capacity + 1] - (ends[-1] - capacity + 1)
        finals = np.stack([e.last_observations[-1] for e in episodes])[-len(ends) :]
        np.testing.assert_array_equal(
            stored['next_observations'][ends, :STATE_DIM], finals[:, :STATE_DIM]
        )
        # the next episode's first state differs from the final one it must not be mistaken for
        firsts = [e.observations[0, :STATE_DIM] for e in episodes[-len(ends) + 1 :]]
        assert any(
            not np.array_equal(f, n)
            for f, n in zip(firsts, stored['next_observations'][ends[:-1], :STATE_DIM], strict=True)
        )


def test_hand_computed_ring_eviction_and_final_states():
    rings = TransitionRings(2, capacity=5, state_dim=1, action_dim=1)

    def add(states, final):
        n = len(states)
        rings.add(
            1,
            np.array(states, np.float32)[:, None],
            np.zeros((n, 1), np.float32),
            np.arange(n, dtype=np.float32),
            np.zeros(n, np.uint8),
            np.array([final], np.float32),
        )

    add([0, 1, 2], 3)
    add([10, 11], 12)
    add([20, 21], 22)  # 7 transitions into 5 rows: 0 and 1 are evicted

    def ordered() -> dict[str, np.ndarray]:
        """Ring 1's five rows, oldest first."""
        return rings.gather(np.array([1]), (rings.added[1] - 5 + np.arange(5))[None] % 5)

    np.testing.assert_array_equal(ordered()['states'][0, :, 0], [2, 10, 11, 20, 21])
    np.testing.assert_array_equal(ordered()['next_states'][0, :, 0], [3, 11, 12, 21, 22])
    add([30], 31)  # evicts 2, whose final 3 is freed
    np.testing.assert_array_equal(ordered()['states'][0, :, 0], [10, 11, 20, 21, 30])
    np.testing.assert_array_equal(ordered()['next_states'][0, :, 0], [11, 12, 21, 22, 31])
    np.testing.assert_array_equal(rings.sizes(), [0, 5])
    for value in range(100):  # many one-step episodes: the final ring does not keep growing
        add([value], value + 0.5)
    assert rings.finals.shape[1] == 16
    np.testing.assert_array_equal(ordered()['next_states'][0, :, 0], np.arange(95, 100) + 0.5)
    with pytest.raises(ValueError, match='does not fit'):
        add(list(range(6)), 6)


def test_store_with_task_ids_refuses_an_episode_without_them_and_stays_unchanged():
    rings = TransitionRings(1, capacity=5, state_dim=1, action_dim=1, with_task_ids=True)
    with pytest.raises(ValueError, match='needs task_ids'):
        rings.add(
            0,
            np.zeros((2, 1), np.float32),
            np.zeros((2, 1), np.float32),
            np.zeros(2, np.float32),
            np.zeros(2, np.uint8),
            np.zeros(1, np.float32),
        )
    np.testing.assert_array_equal(rings.added, [0])
    np.testing.assert_array_equal(rings.finals_added, [0])


def test_bytes_per_transition_are_close_to_the_minimum(env, timeout_batch):
    capacity = 1000
    for keep_raw in (False, True):
        buffer = PerTaskReplayBuffer(
            N_TASKS, capacity, env.split_observation, keep_raw_observations=keep_raw
        )
        for _ in range(capacity // 50 + 2):
            buffer.add_episodes(timeout_batch)
        np.testing.assert_array_equal(buffer.sizes(), [capacity] * N_TASKS)
        per_transition = buffer.nbytes / (N_TASKS * capacity)
        minimal = minimal_bytes_per_transition(STATE_DIM, 2)  # raw obs: state + one-hot
        assert minimal == 24
        assert per_transition <= 1.2 * minimal
    shared = SharedReplayBuffer(N_TASKS, capacity, env.split_observation)
    for _ in range(capacity // 200 + 2):
        shared.add_episodes(timeout_batch)
    assert shared.size == capacity
    assert shared.nbytes / capacity <= 1.2 * minimal_bytes_per_transition(STATE_DIM, 2) + 2


def test_sampling_is_uniform_over_the_live_rows():
    """Chi-square test (fixed seed) that each ring's draws are uniform over what it holds."""
    rings = TransitionRings(3, capacity=100, state_dim=1, action_dim=1)
    added = 0
    for length in (30, 40, 50, 20):  # 140 transitions: the first 40 are evicted
        states = np.arange(added, added + length, dtype=np.float32)[:, None]
        for ring in (0, 2):
            rings.add(
                ring,
                states,
                np.zeros((length, 1), np.float32),
                np.zeros(length, np.float32),
                np.zeros(length, np.uint8),
                np.array([-1.0], np.float32),
            )
        added += length
    np.random.seed(11)
    rows = rings.draw_rows(np.array([0, 2]), 20_000)
    drawn = rings.gather(np.array([0, 2]), rows)['states'][..., 0].astype(np.int64)
    for ring_draws in drawn:
        assert ring_draws.min() >= 40 and ring_draws.max() < 140
        counts = np.bincount(ring_draws - 40, minlength=100)
        expected = len(ring_draws) / 100
        chi_square = ((counts - expected) ** 2 / expected).sum()
        assert chi_square < 99 + 5 * np.sqrt(2 * 99)  # 99 degrees of freedom, ~5 sigma
    with pytest.raises(ValueError, match='empty'):
        rings.draw_rows(np.array([1]), 4)


def test_shared_buffer_equals_a_garage_path_buffer_of_raw_observations(
    env, random_batch, terminal_batch
):
    capacity = 300
    shared = SharedReplayBuffer(N_TASKS, capacity, env.split_observation)
    reference = PathBuffer(capacity)
    for batch in (random_batch, terminal_batch, random_batch):
        shared.add_episodes(batch)
        for episode in batch.split():
            reference.add_path(
                {
                    'observations': episode.observations.astype(np.float32),
                    'actions': episode.actions.astype(np.float32),
                    'rewards': episode.rewards.reshape(-1, 1).astype(np.float32),
                    'next_observations': episode.next_observations.astype(np.float32),
                    'terminals': (episode.step_types == StepType.TERMINAL)
                    .reshape(-1, 1)
                    .astype(np.float32),
                }
            )
    assert shared.size == reference.n_transitions_stored == capacity
    stored_raw = reference._buffer['observations']  # pylint: disable=protected-access
    np.testing.assert_array_equal(
        shared.sizes(), np.bincount(stored_raw[:, STATE_DIM:].argmax(1), minlength=N_TASKS)
    )
    np.random.seed(2)
    sample = shared.sample(64)
    np.random.seed(2)
    expected = reference.sample_transitions(64)
    for key in KEYS:
        np.testing.assert_array_equal(sample[key], expected[key])
    restored = pickle.loads(pickle.dumps(shared))
    for key in KEYS:
        np.testing.assert_array_equal(restored.stored()[key], shared.stored()[key])


def test_observation_whose_one_hot_disagrees_with_task_id_raises(env, timeout_batch):
    observations = timeout_batch.observations.copy()
    observations[3, STATE_DIM:] = np.roll(observations[3, STATE_DIM:], 1)
    broken = EpisodeBatch(
        env_spec=timeout_batch.env_spec,
        episode_infos=timeout_batch.episode_infos,
        observations=observations,
        last_observations=timeout_batch.last_observations,
        actions=timeout_batch.actions,
        rewards=timeout_batch.rewards,
        env_infos=timeout_batch.env_infos,
        agent_infos=timeout_batch.agent_infos,
        step_types=timeout_batch.step_types,
        lengths=timeout_batch.lengths,
    )
    for buffer in (
        PerTaskReplayBuffer(N_TASKS, 1000, env.split_observation),
        SharedReplayBuffer(N_TASKS, 1000, env.split_observation),
    ):
        with pytest.raises(ValueError, match='one-hot'):
            buffer.add_episodes(broken)
