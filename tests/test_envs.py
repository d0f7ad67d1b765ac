"""Tests of the toy environment family, the Gymnasium adapter, the multi-task contract and the
registry (``environments/point_reach.py``, ``gymnasium_adapter.py``, ``multitask.py``,
``registry.py``)."""

import dataclasses
import functools
import importlib
import math
import pickle

import gymnasium
import numpy as np
import pytest
import torch
from garage import StepType

from environments import point_reach
from environments.family import GymnasiumTaskFamily
from environments.gymnasium_adapter import GymnasiumEnv, numeric_infos
from environments.multitask import ObservationSplitter, split_observation
from environments.point_reach import GOALS, PointReachTaskEnv
from environments.registry import ENVS, make_env

torch.set_num_threads(1)

N_TASKS = 4


def _scripted_action(observation, task):
    return np.clip((GOALS[task] - observation[:2]) / 0.1, -1, 1).astype(np.float32)


# --------------------------------------------------------------------------- PointReachMT-v0


def test_point_reach_family_facts():
    env = make_env('PointReachMT-v0')
    assert env.env_id == 'PointReachMT-v0'
    assert env.n_tasks == N_TASKS == ENVS['PointReachMT-v0'].n_tasks
    assert len(env.task_names) == N_TASKS and len(set(env.task_names)) == N_TASKS
    assert env.observation_dim == 6
    assert env.network_input_dim == 2
    assert env.action_dim == 2
    assert env.max_episode_length == 50 == ENVS['PointReachMT-v0'].max_episode_length
    assert env.min_reward == -1.0
    assert env.split_mode == 'slice'
    assert make_env('PointReachMT-v0', include_task_id=True).network_input_dim == 6
    train_envs = env.get_train_envs()
    assert len(train_envs) == N_TASKS
    assert env.get_train_envs() is train_envs  # built once
    for task, task_env in enumerate(train_envs):
        assert task_env.spec.observation_space.shape == (6,)
        np.testing.assert_array_equal(task_env.spec.observation_space.low[2:], 0)
        np.testing.assert_array_equal(task_env.spec.observation_space.high[2:], 1)
        assert task_env.spec.action_space.shape == (2,)
        observation, episode_info = task_env.reset()
        assert episode_info == {}
        assert observation.dtype == np.float32 and observation.shape == (6,)
        expected_one_hot = np.eye(N_TASKS, dtype=np.float32)[task]
        np.testing.assert_array_equal(observation[2:], expected_one_hot)
        # start: bottom-left corner +- 0.05
        assert np.all(np.abs(observation[:2] - point_reach.START) <= 0.05 + 1e-6)
        step = task_env.step(np.array([0.5, 0.5], np.float32))
        assert step.observation.dtype == np.float32
        np.testing.assert_array_equal(step.observation[2:], expected_one_hot)
        np.testing.assert_allclose(step.observation[:2], observation[:2] + 0.05, atol=1e-6)
        assert step.env_info['task_id'] == task
        assert step.env_info['success'] == 0.0
        assert step.step_type == StepType.FIRST
    env.close()


def test_goals_differ_per_task():
    assert len(GOALS) == N_TASKS
    for index, goal in enumerate(GOALS):
        angle = math.radians(point_reach.GOAL_ANGLES_DEG[index])
        np.testing.assert_allclose(
            goal, [-0.8 + 1.3 * math.cos(angle), -0.8 + 1.3 * math.sin(angle)], atol=1e-6
        )
        assert np.all(np.abs(goal) <= 1.0)


@pytest.mark.parametrize('task', range(N_TASKS))
def test_dense_reward_on_a_hand_set_state(task):
    env = make_env('PointReachMT-v0')
    task_env = env.get_train_envs()[task]
    task_env.reset()
    gym_env = task_env.gymnasium_env
    # from goal + (0.35, 0.4), action (-0.5, 0) moves to goal + (0.3, 0.4): distance 0.5
    gym_env._position = (GOALS[task] + np.array([0.35, 0.4], np.float32)).astype(np.float32)
    step = task_env.step(np.array([-0.5, 0.0], np.float32))
    assert step.reward == pytest.approx(math.exp(-0.5) - 1.0, abs=1e-6)  # -0.393469...
    assert step.reward == pytest.approx(-0.3934693402873666, abs=1e-6)
    np.testing.assert_allclose(step.observation[:2], GOALS[task] + [0.3, 0.4], atol=1e-6)
    assert step.env_info['distance_to_goal'] == pytest.approx(0.5, abs=1e-6)
    assert step.env_info['success'] == 0.0
    assert step.step_type == StepType.FIRST
    # actions outside [-1, 1] are clipped: (-3, 0) moves by (-0.1, 0) -> goal + (0.2, 0.4)
    step = task_env.step(np.array([-3.0, 0.0], np.float32))
    assert step.reward == pytest.approx(math.exp(-math.hypot(0.2, 0.4)) - 1.0, abs=1e-6)
    assert step.step_type == StepType.MID


def test_sparse_task_reward_and_min_reward():
    env = make_env('PointReachMT-v0', sparse_tasks=[1])
    assert env.min_reward == -1.0
    assert make_env('PointReachMT-v0', sparse_tasks=[0, 1, 2, 3]).min_reward == 0.0
    sparse_env, dense_env = env.get_train_envs()[1], env.get_train_envs()[0]
    for task_env, task in ((sparse_env, 1), (dense_env, 0)):
        task_env.reset()
        task_env.gymnasium_env._position = (GOALS[task] + [0.3, 0.4]).astype(np.float32)
        far = task_env.step(np.zeros(2, np.float32))
        # within the success radius: goal + (0.03, 0.04), distance 0.05
        task_env.gymnasium_env._position = (GOALS[task] + [0.13, 0.04]).astype(np.float32)
        near = task_env.step(np.array([-1.0, 0.0], np.float32))
        assert near.env_info['success'] == 1.0
        assert near.step_type == StepType.TERMINAL
        if task == 1:
            assert far.reward == 0.0
            assert near.reward == 1.0
        else:
            assert far.reward == pytest.approx(math.exp(-0.5) - 1.0, abs=1e-6)
            assert near.reward == pytest.approx(math.exp(-0.05) - 1.0, abs=1e-5)
    with pytest.raises(ValueError, match='sparse task 4'):
        make_env('PointReachMT-v0', sparse_tasks=[4])


@pytest.mark.parametrize('task', range(N_TASKS))
def test_scripted_controller_reaches_every_goal(task):
    task_env = make_env('PointReachMT-v0').get_train_envs()[task]
    observation, _ = task_env.reset()
    step_types = []
    for _ in range(50):
        step = task_env.step(_scripted_action(observation, task))
        step_types.append(step.step_type)
        observation = step.observation
        if step.last:
            break
    assert step_types[-1] == StepType.TERMINAL
    assert StepType.TIMEOUT not in step_types
    assert step.env_info['success'] == 1.0
    assert np.linalg.norm(observation[:2] - GOALS[task]) < 0.1
    # 1.3 units at <= 0.1 * sqrt(2) per step: at least 9 steps, well within the horizon
    assert 9 <= len(step_types) < 50
    with pytest.raises(RuntimeError):
        task_env.step(np.zeros(2, np.float32))  # episode over: must reset


def test_horizon_timeout_and_first_step():
    task_env = make_env('PointReachMT-v0').get_train_envs()[2]
    with pytest.raises(RuntimeError, match='reset'):
        task_env.step(np.zeros(2, np.float32))
    for _ in range(2):  # the second episode behaves the same after reset
        task_env.reset()
        step_types = []
        for _ in range(50):
            step = task_env.step(np.zeros(2, np.float32))
            step_types.append(step.step_type)
            assert step.env_info['success'] == 0.0
        assert step_types[0] == StepType.FIRST
        assert step_types[1:49] == [StepType.MID] * 48
        assert step_types[49] == StepType.TIMEOUT
        assert StepType.TERMINAL not in step_types
        with pytest.raises(RuntimeError):
            task_env.step(np.zeros(2, np.float32))


# --------------------------------------------------------------------------- GymnasiumEnv


class CountingEnv(gymnasium.Env):
    """Terminates (or truncates) at step ``end_step``; reports assorted infos."""

    def __init__(self, end_step=3, truncate=False):
        self.end_step = end_step
        self.truncate = truncate
        self.observation_space = gymnasium.spaces.Box(-10.0, 10.0, (1,), np.float64)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.count = 0
        self.shared = np.zeros(1)
        self.array_info = np.array([1.0, 2.0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        self.shared[0] = self.np_random.uniform()
        return self.shared, {'reset_scalar': 1.0}

    def step(self, action):
        self.count += 1
        self.shared[0] = float(self.count)  # the same array every step
        ended = self.count >= self.end_step
        info = {
            'text': 'hello',
            'listed': [1, 2],
            'int': 3,
            'float': 2.5,
            'flag': True,
            'np_float': np.float32(1.5),
            'array': self.array_info,
            'strings': np.array(['a', 'b']),
            'objects': np.array([None]),
            'success': 1.0,
        }
        return self.shared, 1.0, ended and not self.truncate, ended and self.truncate, info


def _adapter(end_step, max_episode_length, truncate=False, seed=None):
    return GymnasiumEnv(
        functools.partial(CountingEnv, end_step, truncate), max_episode_length, seed=seed
    )


def _run_episode(adapter):
    adapter.reset()
    step_types = []
    while True:
        step = adapter.step(np.zeros(1, np.float32))
        step_types.append(step.step_type)
        if step.last:
            return step_types, step


def test_termination_on_the_horizon_step_is_terminal():
    step_types, _ = _run_episode(_adapter(end_step=3, max_episode_length=3))
    assert step_types == [StepType.FIRST, StepType.MID, StepType.TERMINAL]
    # termination before the horizon
    step_types, _ = _run_episode(_adapter(end_step=3, max_episode_length=5))
    assert step_types == [StepType.FIRST, StepType.MID, StepType.TERMINAL]
    # the horizon before a termination
    step_types, _ = _run_episode(_adapter(end_step=10, max_episode_length=3))
    assert step_types == [StepType.FIRST, StepType.MID, StepType.TIMEOUT]
    # Gymnasium's own truncation is a time-out
    step_types, _ = _run_episode(_adapter(end_step=2, max_episode_length=5, truncate=True))
    assert step_types == [StepType.FIRST, StepType.TIMEOUT]
    # a one-step episode: the single step is the last one
    step_types, _ = _run_episode(_adapter(end_step=1, max_episode_length=1))
    assert step_types == [StepType.TERMINAL]


def test_adapter_infos_observations_and_reset():
    adapter = _adapter(end_step=5, max_episode_length=5)
    observation, episode_info = adapter.reset()
    assert episode_info == {}  # the inner reset's info is dropped
    assert observation.dtype == np.float32
    step = adapter.step(np.zeros(1, np.float32))
    assert set(step.env_info) == {'int', 'float', 'flag', 'np_float', 'array', 'success'}
    assert step.env_info['int'] == 3 and step.env_info['float'] == 2.5
    assert step.env_info['flag'] is True and step.env_info['np_float'] == np.float32(1.5)
    np.testing.assert_array_equal(step.env_info['array'], [1.0, 2.0])
    # arrays and observations are copies, not the env's reused buffers
    gym_env = adapter.unwrapped_env
    assert step.env_info['array'] is not gym_env.array_info
    assert step.observation is not gym_env.shared
    assert step.observation.dtype == np.float32
    first_observation = step.observation
    adapter.step(np.zeros(1, np.float32))
    assert first_observation[0] == 1.0
    assert step.reward == 1.0 and isinstance(step.reward, float)


def test_adapter_refuses_a_non_box_space():
    class DiscreteActionEnv(CountingEnv):
        def __init__(self):
            super().__init__()
            self.action_space = gymnasium.spaces.Discrete(3)

    with pytest.raises(TypeError, match='action space must be a gymnasium Box, got Discrete'):
        GymnasiumEnv(DiscreteActionEnv, max_episode_length=5)


def test_numeric_infos_directly():
    info = {
        's': 'x',
        'l': [1.0],
        't': (1, 2),
        'd': {'a': 1},
        'n': None,
        'i': 1,
        'u8': np.uint8(3),
        'b': np.bool_(True),
        'a': np.arange(3),
        'c': np.array([1 + 2j]),
        'o': np.array([object()]),
    }
    kept = numeric_infos(info)
    assert set(kept) == {'i', 'u8', 'b', 'a'}
    assert kept['a'] is not info['a']
    np.testing.assert_array_equal(kept['a'], [0, 1, 2])


def test_adapter_spec_and_seeding():
    adapter = _adapter(end_step=5, max_episode_length=7, seed=11)
    assert adapter.spec.max_episode_length == 7
    assert adapter.observation_space.dtype == np.float32
    assert adapter.action_space.shape == (1,)
    first, _ = adapter.reset()
    same_seed = _adapter(end_step=5, max_episode_length=7, seed=11)
    np.testing.assert_array_equal(same_seed.reset()[0], first)
    other_seed = _adapter(end_step=5, max_episode_length=7, seed=12)
    assert other_seed.reset()[0][0] != first[0]
    # the seed is used once: the second reset continues the RNG stream
    second, _ = adapter.reset()
    assert second[0] != first[0]
    np.testing.assert_array_equal(same_seed.reset()[0], second)


def test_per_task_env_pickle_is_small_and_reproduces():
    env = make_env('PointReachMT-v0')
    task_env = env.get_train_envs()[1]
    data = pickle.dumps(task_env)
    assert len(data) < 5000
    copy = pickle.loads(data)
    assert copy is not task_env
    assert copy.task_id == 1
    first, _ = task_env.reset()
    copy_first, _ = copy.reset()
    np.testing.assert_array_equal(copy_first, first)
    rng = np.random.default_rng(0)
    for _ in range(10):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        a, b = task_env.step(action), copy.step(action)
        np.testing.assert_array_equal(a.observation, b.observation)
        assert a.reward == b.reward and a.step_type == b.step_type
        assert a.env_info == b.env_info
    # later resets continue identical RNG streams too
    np.testing.assert_array_equal(task_env.reset()[0], copy.reset()[0])


def test_train_and_test_envs_differ():
    env = make_env('PointReachMT-v0')
    train, test = env.get_train_envs(), env.get_test_envs()
    assert len(test) == N_TASKS
    assert env.get_test_envs() is test
    for task in range(N_TASKS):
        assert train[task] is not test[task]
        assert train[task].gymnasium_env is not test[task].gymnasium_env
        assert test[task].task_id == task
        train_obs, _ = train[task].reset()
        test_obs, _ = test[task].reset()
        np.testing.assert_array_equal(train_obs[2:], test_obs[2:])
        assert not np.array_equal(train_obs[:2], test_obs[:2])
    # different family seeds give different training starts; the same seed the same ones
    other = make_env('PointReachMT-v0', seed=5).get_train_envs()[0].reset()[0]
    same = make_env('PointReachMT-v0', seed=0).get_train_envs()[0].reset()[0]
    reference = make_env('PointReachMT-v0').get_train_envs()[0].reset()[0]
    np.testing.assert_array_equal(same, reference)
    assert not np.array_equal(other, reference)
    # per-task start noise differs between tasks of one family
    starts = [e.reset()[0][:2] for e in make_env('PointReachMT-v0').get_train_envs()]
    assert len({tuple(s) for s in starts}) == N_TASKS


# --------------------------------------------------------------------------- split_observation

RAW = np.array(
    [
        [0.1, 0.2, 0.0, 0.0, 1.0, 0.0],
        [0.3, -0.4, 1.0, 0.0, 0.0, 0.0],
        [-0.5, 0.6, 0.0, 0.0, 0.0, 1.0],
    ],
    np.float32,
)
EXPECTED_IDS = [2, 0, 3]


@pytest.mark.parametrize('backend', ['numpy', 'torch'])
@pytest.mark.parametrize('batched', [True, False])
@pytest.mark.parametrize(
    'mode, include, expected',
    [
        ('slice', False, RAW[:, :2]),
        ('zero', False, np.concatenate([RAW[:, :2], np.zeros((3, 4), np.float32)], axis=1)),
        ('slice', True, RAW),
        ('zero', True, RAW),
    ],
)
def test_split_observation(backend, batched, mode, include, expected):
    raw = RAW if batched else RAW[0]
    expected = expected if batched else expected[0]
    expected_ids = EXPECTED_IDS if batched else EXPECTED_IDS[0]
    observations = torch.from_numpy(raw.copy()) if backend == 'torch' else raw.copy()
    original = observations.clone() if backend == 'torch' else observations.copy()
    for splitter in (
        lambda o: split_observation(o, N_TASKS, mode, include),
        ObservationSplitter(N_TASKS, mode, include),
    ):
        states, task_ids = splitter(observations)
        assert type(states) is type(observations)
        if backend == 'torch':
            assert isinstance(task_ids, torch.Tensor)
        else:  # an array when batched, a numpy integer for a single observation
            assert isinstance(task_ids, (np.ndarray, np.integer))
        np.testing.assert_array_equal(np.asarray(states), expected)
        np.testing.assert_array_equal(np.asarray(task_ids), expected_ids)
        # the input is untouched, and the output shares no memory with it
        np.testing.assert_array_equal(np.asarray(observations), np.asarray(original))
        states[...] = 42.0
        np.testing.assert_array_equal(np.asarray(observations), np.asarray(original))


def test_family_splitter_on_real_observations():
    env = make_env('PointReachMT-v0')
    observations = np.stack([e.reset()[0] for e in env.get_train_envs()])
    states, task_ids = env.split_observation(observations)
    np.testing.assert_array_equal(task_ids, np.arange(N_TASKS))
    np.testing.assert_array_equal(states, observations[:, :2])
    assert states.shape[-1] == env.network_input_dim
    splitter = make_env('PointReachMT-v0', include_task_id=True).split_observation
    np.testing.assert_array_equal(splitter(observations)[0], observations)
    assert pickle.loads(pickle.dumps(env.split_observation)) == env.split_observation


# --------------------------------------------------------------------------- gymnasium checks


def test_gymnasium_env_checker_and_render():
    from gymnasium.utils.env_checker import check_env

    env = PointReachTaskEnv(GOALS[0])
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8

    def pixel(xy):
        col, row = np.round((np.asarray(xy) + 1.0) / 2.0 * 63).astype(int)
        return image[63 - row, col]

    np.testing.assert_array_equal(pixel(GOALS[0]), [0, 160, 0])
    np.testing.assert_array_equal(pixel(env._position), [200, 0, 0])
    np.testing.assert_array_equal(image[0, 63], [255, 255, 255])  # top-right corner is empty
    # the adapter forwards rendering
    task_env = make_env('PointReachMT-v0').get_train_envs()[0]
    task_env.reset()
    assert task_env.render('rgb_array').shape == (64, 64, 3)
    assert 'rgb_array' in task_env.render_modes


# --------------------------------------------------------------------------- registry


def test_make_env_unknown_kwarg_raises():
    with pytest.raises(ValueError, match='bogus_flag'):
        make_env('PointReachMT-v0', bogus_flag=1)
    with pytest.raises(ValueError, match='sparse_tasks'):
        make_env('MetaWorldMT10-v2', sparse_tasks=[0])  # a flag of another env, before import
    with pytest.raises(KeyError):
        make_env('NoSuchEnv-v0')


@pytest.mark.mujoco
def test_every_family_takes_its_facts_from_its_registry_row():
    """Importing every family (its simulator too) but building none."""
    for info in ENVS.values():
        module_name, class_name = info.builder.split(':')
        family = getattr(importlib.import_module(module_name), class_name)
        assert issubclass(family, GymnasiumTaskFamily), info.env_id
        assert family.ENV_ID == info.env_id and family.info() is info


def test_a_family_builds_its_tasks_with_the_registry_horizon(monkeypatch):
    monkeypatch.setitem(
        ENVS, 'PointReachMT-v0', dataclasses.replace(ENVS['PointReachMT-v0'], max_episode_length=7)
    )
    env = point_reach.PointReachMT()
    assert env.max_episode_length == 7
    task_env = env.get_train_envs()[2]
    task_env.reset()
    step_types = [task_env.step(np.zeros(2, np.float32)).step_type for _ in range(7)]
    assert step_types == [StepType.FIRST] + [StepType.MID] * 5 + [StepType.TIMEOUT]
