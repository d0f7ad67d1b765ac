"""Tests of the ``KitchenMTEasy-v0`` family (``environments/kitchen.py``).

Building one task environment loads the whole kitchen model (~0.6 s), so the ten training
environments are built once for the module and the other tests build as few as they can.
Run as a script to print steps/s of one task environment through the adapter.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Iterator

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import numpy as np
import pytest
import torch
from garage import StepType
from gymnasium.utils.env_checker import check_env
from gymnasium_robotics.envs.franka_kitchen import kitchen_env as gr_kitchen

from conftest import render_offscreen, steps_per_second
from environments.kitchen import (
    INIT_QPOS,
    OBS_ELEMENT_GOALS,
    OBS_ELEMENT_INDICES,
    TASK_NAMES,
    TASKS,
    KitchenMTEasy,
    goal_vector,
    make_kitchen_task_env,
    object_noise_amplitudes,
    tolerance,
)
from environments.multitask import TaskOneHotWrapper
from environments.registry import select_tasks

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_DIM = 60
N_TASKS = 10
HORIZON = 140
EXPECTED_TASK_NAMES = (
    'slide cabinet-open',
    'slide cabinet-close',
    'hinge cabinet-open',
    'hinge cabinet-close',
    'bottom burner-on',
    'bottom burner-off',
    'top burner-on',
    'top burner-off',
    'light switch-on',
    'light switch-off',
)
EXPECTED_THRESHOLDS = (0.1, 0.1, 0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3)
# pos_noise_amp of franka_config.xml's joints 9..29 (D4RL's object-noise amplitudes).
EXPECTED_OBJECT_NOISE = (
    (0.005, 0.005)
    + (0.0005,) * 6
    + (0.005,) * 3
    + (0.1,) * 3
    + (0.005,) * 3
    + (0.1,) * 3
    + (0.005,)
)
ROBOT_NOISE = 0.1 * 0.1  # robot_noise_ratio x pos_noise_amp of the arm joints


@pytest.fixture(scope='module')
def kitchen() -> Iterator[KitchenMTEasy]:
    env = KitchenMTEasy(seed=0)
    env.get_train_envs()
    yield env
    env.close()


@pytest.fixture(scope='module')
def pair() -> Iterator[KitchenMTEasy]:
    """Bottom burner on/off only (train and test environments)."""
    env = KitchenMTEasy(seed=3, task_name='4,5')
    env.get_train_envs()
    env.get_test_envs()
    yield env
    env.close()


def _one_hot(task_id: int, n_tasks: int = N_TASKS) -> np.ndarray:
    one_hot = np.zeros(n_tasks, dtype=np.float32)
    one_hot[task_id] = 1.0
    return one_hot


def _gaussian_tolerance(distance: float, upper: float, margin: float) -> float:
    """tolerance(distance, (0, upper), margin) written out: 0.1 ** ((d - upper) / margin) ** 2."""
    if distance <= upper:
        return 1.0
    return 0.1 ** (((distance - upper) / margin) ** 2)


@pytest.mark.mujoco
def test_family_facts(kitchen: KitchenMTEasy) -> None:
    assert kitchen.env_id == 'KitchenMTEasy-v0'
    assert kitchen.n_tasks == N_TASKS
    assert kitchen.task_names == TASK_NAMES == EXPECTED_TASK_NAMES
    assert tuple(task.threshold for task in TASKS) == EXPECTED_THRESHOLDS
    assert kitchen.task_indices == tuple(range(N_TASKS))
    assert kitchen.observation_dim == STATE_DIM + N_TASKS == 70
    assert kitchen.network_input_dim == STATE_DIM
    assert kitchen.action_dim == 9
    assert kitchen.max_episode_length == HORIZON
    assert kitchen.split_mode == 'slice'
    assert kitchen.min_reward == -20.0
    assert kitchen.spec.observation_space.dtype == np.float32
    np.testing.assert_array_equal(kitchen.spec.action_space.low, -np.ones(9))
    np.testing.assert_array_equal(kitchen.spec.action_space.high, np.ones(9))
    assert len(kitchen.get_train_envs()) == N_TASKS


@pytest.mark.mujoco
def test_tables_are_d4rl_as_repeated_by_gymnasium_robotics() -> None:
    for element, indices in OBS_ELEMENT_INDICES.items():
        np.testing.assert_array_equal(indices, gr_kitchen.OBS_ELEMENT_INDICES[element])
        np.testing.assert_array_equal(
            OBS_ELEMENT_GOALS[element], gr_kitchen.OBS_ELEMENT_GOALS[element]
        )
    assert set(OBS_ELEMENT_INDICES) == set(gr_kitchen.OBS_ELEMENT_INDICES)
    np.testing.assert_array_equal(object_noise_amplitudes(), EXPECTED_OBJECT_NOISE)
    # Each reverse task starts where its forward twin ends, and the other way round.
    for forward, backward in zip(TASKS[0::2], TASKS[1::2], strict=True):
        assert forward.element == backward.element
        assert forward.init == backward.goal and forward.goal == backward.init
        np.testing.assert_array_equal(forward.init, INIT_QPOS[forward.indices])
        np.testing.assert_array_equal(forward.goal, OBS_ELEMENT_GOALS[forward.element])


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', [0, 9])
def test_one_hot_and_task_id(kitchen: KitchenMTEasy, task_id: int) -> None:
    env = kitchen.get_train_envs()[task_id]
    assert env.task_name == TASK_NAMES[task_id]
    observation, episode_info = env.reset()
    assert episode_info == {}
    assert observation.shape == (70,) and observation.dtype == np.float32
    assert env.observation_space.contains(observation)
    np.testing.assert_array_equal(observation[STATE_DIM:], _one_hot(task_id))
    env_step = env.step(env.action_space.sample())
    assert env_step.step_type == StepType.FIRST
    assert env_step.observation.dtype == np.float32
    assert env.observation_space.contains(env_step.observation)
    np.testing.assert_array_equal(env_step.observation[STATE_DIM:], _one_hot(task_id))
    assert env_step.env_info['task_id'] == task_id
    assert env_step.env_info['success'] == 0.0
    assert set(env_step.env_info) == {
        'task_id',
        'success',
        'distance_to_goal',
        'distance_to_object',
    }
    assert all(isinstance(value, (int, float)) for value in env_step.env_info.values())
    assert -20.0 <= env_step.reward <= 0.0


@pytest.mark.mujoco
def test_split_observation(kitchen: KitchenMTEasy) -> None:
    observations = np.stack([kitchen.get_train_envs()[i].reset()[0] for i in (2, 7)])
    states, task_ids = kitchen.split_observation(observations)
    assert states.shape == (2, STATE_DIM)
    np.testing.assert_array_equal(states, observations[:, :STATE_DIM])
    np.testing.assert_array_equal(task_ids, [2, 7])
    torch_states, torch_ids = kitchen.split_observation(torch.as_tensor(observations))
    np.testing.assert_array_equal(torch_states.numpy(), states)
    np.testing.assert_array_equal(torch_ids.numpy(), [2, 7])

    with_id = KitchenMTEasy(seed=0, include_task_id=True)  # builds no simulator
    kept, kept_ids = with_id.split_observation(observations)
    np.testing.assert_array_equal(kept, observations)
    np.testing.assert_array_equal(kept_ids, [2, 7])


@pytest.mark.mujoco
def test_each_task_starts_in_the_opposite_configuration(kitchen: KitchenMTEasy) -> None:
    for task_id, (env, task) in enumerate(zip(kitchen.get_train_envs(), TASKS, strict=True)):
        observation, _ = env.reset()
        qpos = env.gymnasium_env.data.qpos
        np.testing.assert_allclose(qpos[task.indices], task.init, atol=1e-9)
        # Every other object is in D4RL's initial (closed, off) configuration.
        others = np.setdiff1d(np.arange(9, 30), task.indices)
        np.testing.assert_allclose(qpos[others], INIT_QPOS[others], atol=1e-9)
        # Not solved at the start: the start is the goal of the opposite task, far from this one.
        assert np.linalg.norm(np.subtract(task.init, task.goal)) > 2 * task.threshold
        opposite = TASKS[task_id ^ 1]
        assert task.init == opposite.goal
        # The observation carries D4RL's noise: robot qpos within 0.01, objects within 0.1 x amp.
        robot_error = observation[:9] - qpos[:9]
        assert np.all(np.abs(robot_error) <= ROBOT_NOISE + 1e-6) and np.any(robot_error != 0)
        object_error = np.abs(observation[9:30] - qpos[9:30])
        assert np.all(object_error <= 0.1 * np.array(EXPECTED_OBJECT_NOISE) + 1e-6)
    light_off = kitchen.get_train_envs()[9].gymnasium_env
    assert light_off.data.qpos[17] == pytest.approx(-0.69)  # the light-switch-off task: switch on


@pytest.mark.mujoco
def test_goal_vector(kitchen: KitchenMTEasy) -> None:
    fixed = {
        'microwave': (-0.75,),
        'kettle': (-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06),
        'bottom burner': (-0.88, -0.01),
        'light switch': (-0.69, -0.05),
    }
    vectors = []
    for env, task in zip(kitchen.get_train_envs(), TASKS, strict=True):
        observation, _ = env.reset()
        vector = observation[30:STATE_DIM]
        np.testing.assert_array_equal(vector, goal_vector(task).astype(np.float32))
        np.testing.assert_array_equal(vector, env.gymnasium_env.goal_vector.astype(np.float32))
        for element, goal in fixed.items():
            np.testing.assert_allclose(vector[list(OBS_ELEMENT_INDICES[element])], goal, rtol=1e-6)
        if task.element not in fixed:
            np.testing.assert_allclose(vector[task.indices], task.goal, rtol=1e-6)
        untouched = np.setdiff1d(
            np.arange(30), np.concatenate([OBS_ELEMENT_INDICES[e] for e in (*fixed, task.element)])
        )
        assert not vector[untouched].any()
        vectors.append(vector)
    # Burner-on and burner-off (and light on/off) share their goal vector, as in the release;
    # the top burner is not overwritten, so its two tasks differ, as do the cabinets'.
    np.testing.assert_array_equal(vectors[4], vectors[5])
    np.testing.assert_array_equal(vectors[8], vectors[9])
    for task_id in (0, 2, 6):
        assert not np.array_equal(vectors[task_id], vectors[task_id + 1])


@pytest.mark.mujoco
def test_tolerance_known_values() -> None:
    assert tolerance(0.0, (0.0, 0.3), 0.5) == 1.0
    assert tolerance(0.3, (0.0, 0.3), 0.5) == 1.0  # bounds are inclusive
    assert tolerance(0.8, (0.0, 0.3), 0.5) == pytest.approx(0.1)  # at the margin
    assert tolerance(0.55, (0.0, 0.3), 0.5) == pytest.approx(0.1**0.25)  # half the margin
    assert tolerance(-0.5, (0.0, 0.3), 0.5) == pytest.approx(0.1)  # below the lower bound
    assert tolerance(1.3, (0.0, 0.3), 0.5) == pytest.approx(0.1**4)
    assert tolerance(0.2, (0.0, 0.1), 0.0) == 0.0  # no margin: a step
    assert tolerance(0.2, (0.0, 0.1), 0.1, value_at_margin=0.5) == pytest.approx(0.5)
    for bad in (
        {'bounds': (1.0, 0.0), 'margin': 1.0},
        {'bounds': (0.0, 1.0), 'margin': -1.0},
        {'bounds': (0.0, 1.0), 'margin': 1.0, 'value_at_margin': 1.0},
    ):
        with pytest.raises(ValueError):
            tolerance(2.0, **bad)


@pytest.mark.mujoco
def test_dense_reward_on_a_hand_set_state(kitchen: KitchenMTEasy) -> None:
    env = kitchen.get_train_envs()[8]  # light switch-on, threshold 0.3
    task_env = env.gymnasium_env
    task = TASKS[8]
    env.reset()
    data = task_env.data
    site = data.site('light_site').xpos.copy()
    hand_margin = abs(np.linalg.norm(site - data.site('end_effector').xpos) - 0.08)
    goal_margin = abs(np.linalg.norm(np.subtract(task.init, task.goal)) - 0.3)
    assert task_env.hand_margin == pytest.approx(hand_margin)
    assert task_env.goal_margin == pytest.approx(goal_margin)
    task_env.set_qpos(task.indices, (-0.25, -0.02))  # half-way: outside the success threshold
    env_step = env.step(np.zeros(9))
    element = env_step.observation[task.indices].astype(np.float64)  # noisy, as the release
    distance_to_goal = np.linalg.norm(element - np.array(task.goal))
    gripper = (data.body('panda0_leftfinger').xpos + data.body('panda0_rightfinger').xpos) / 2
    distance_to_object = np.linalg.norm(data.site('light_site').xpos - gripper)
    assert 0.3 < distance_to_goal < 0.3 + goal_margin  # the in-place term is partial
    in_place = _gaussian_tolerance(distance_to_goal, 0.3, goal_margin)
    reach = _gaussian_tolerance(distance_to_object, 0.08, hand_margin)
    assert 0.1 < in_place < 1.0 and 0.0 < reach < 1.0
    expected = 20.0 * (0.4 * in_place + 0.6 * reach - 1.0)
    assert env_step.reward == pytest.approx(expected, abs=1e-4)
    assert env_step.env_info['distance_to_goal'] == pytest.approx(distance_to_goal, abs=1e-5)
    assert env_step.env_info['distance_to_object'] == pytest.approx(distance_to_object)
    assert env_step.env_info['success'] == 0.0 and env_step.step_type == StepType.FIRST


@pytest.mark.mujoco
def test_success_at_the_goal_ends_the_episode(kitchen: KitchenMTEasy) -> None:
    for env, task in zip(kitchen.get_train_envs(), TASKS, strict=True):
        env.reset()
        env.gymnasium_env.set_qpos(task.indices, task.goal)
        env_step = env.step(np.zeros(9))
        assert env_step.env_info['success'] == 1.0, task.name
        assert env_step.env_info['distance_to_goal'] < task.threshold
        assert env_step.reward == 2800.0
        assert env_step.step_type == StepType.TERMINAL
        with pytest.raises(RuntimeError):
            env.step(np.zeros(9))  # the episode ended on success


@pytest.mark.mujoco
def test_zero_actions_time_out_at_the_horizon(kitchen: KitchenMTEasy) -> None:
    env = kitchen.get_train_envs()[0]  # slide cabinet-open: nothing opens it by itself
    env.reset()
    steps = [env.step(np.zeros(9)) for _ in range(HORIZON)]
    step_types = [step.step_type for step in steps]
    assert step_types[0] == StepType.FIRST
    assert step_types[-1] == StepType.TIMEOUT
    assert set(step_types[1:-1]) == {StepType.MID}
    assert all(step.env_info['success'] == 0.0 for step in steps)
    assert all(-20.0 <= step.reward <= 0.0 for step in steps)
    with pytest.raises(RuntimeError):
        env.step(np.zeros(9))


@pytest.mark.mujoco
def test_sparse_tasks() -> None:
    env = make_kitchen_task_env('bottom burner-off', sparse=True)
    env.reset(seed=0)
    assert env.step(np.zeros(9, dtype=np.float32))[1:3] == (0.0, False)
    env.set_qpos(env.task.indices, env.task.goal)
    assert env.step(np.zeros(9, dtype=np.float32))[1:3] == (1.0, True)
    env.close()
    assert KitchenMTEasy(sparse_tasks=[1]).min_reward == -20.0
    assert KitchenMTEasy(task_name='4', sparse_tasks=[0]).min_reward == 0.0
    with pytest.raises(ValueError, match='sparse task 2'):
        KitchenMTEasy(task_name='3,4', sparse_tasks=[2])


@pytest.mark.mujoco
def test_task_name_selects_a_subset_in_order(pair: KitchenMTEasy) -> None:
    assert pair.n_tasks == 2 and pair.task_indices == (4, 5)
    assert pair.task_names == ('bottom burner-on', 'bottom burner-off')
    assert pair.observation_dim == STATE_DIM + 2 and pair.network_input_dim == STATE_DIM
    for task_id, env in enumerate(pair.get_train_envs()):
        observation, _ = env.reset()
        np.testing.assert_array_equal(observation[STATE_DIM:], _one_hot(task_id, 2))
        task = TASKS[pair.task_indices[task_id]]
        np.testing.assert_allclose(env.gymnasium_env.data.qpos[task.indices], task.init)
    assert KitchenMTEasy(task_name=' 9, 0 ').task_indices == (9, 0)
    assert select_tasks(None, N_TASKS) == tuple(range(N_TASKS))
    assert select_tasks('1', 2) == (1,)


@pytest.mark.mujoco
@pytest.mark.parametrize('task_name', ['', '10', '-1', '2,,5', 'a,b', '2.0', '2,2', 3])
def test_bad_task_name_raises(task_name: object) -> None:
    with pytest.raises(ValueError, match='task_name'):
        KitchenMTEasy(task_name=task_name)


@pytest.mark.mujoco
def test_pickled_env_is_small_and_steps(pair: KitchenMTEasy) -> None:
    env = pair.get_train_envs()[1]
    data = pickle.dumps(env)
    assert len(data) < 20_000
    clone = pickle.loads(data)
    assert isinstance(clone, TaskOneHotWrapper) and clone.task_id == 1
    assert clone.gymnasium_env is not env.gymnasium_env
    assert clone.gymnasium_env.task.name == 'bottom burner-off'
    observation, _ = clone.reset()
    assert observation.shape == (STATE_DIM + 2,)
    env_step = clone.step(clone.action_space.sample())
    assert env_step.env_info['task_id'] == 1
    assert clone.observation_space.contains(env_step.observation)
    clone.close()


@pytest.mark.mujoco
def test_test_envs_are_separate_and_seeded_differently(pair: KitchenMTEasy) -> None:
    train, test = pair.get_train_envs(), pair.get_test_envs()
    assert len({id(env.gymnasium_env) for env in train + test}) == 4
    for train_env, test_env in zip(train, test, strict=True):
        assert train_env.gymnasium_env.task == test_env.gymnasium_env.task
        train_state = train_env.reset()[0][:STATE_DIM]
        test_state = test_env.reset()[0][:STATE_DIM]
        assert not np.array_equal(train_state, test_state)  # different observation noise
    # The same seed gives the same episode.
    first = KitchenMTEasy(seed=5, task_name='7').get_train_envs()[0]
    again = KitchenMTEasy(seed=5, task_name='7').get_train_envs()[0]
    np.testing.assert_array_equal(first.reset()[0], again.reset()[0])
    action = np.full(9, 0.3, dtype=np.float32)
    np.testing.assert_array_equal(first.step(action).observation, again.step(action).observation)
    first.close()
    again.close()


@pytest.mark.mujoco
def test_gymnasium_env_checker() -> None:
    env = make_kitchen_task_env('hinge cabinet-close')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_env(env, skip_render_check=True)
    renderer = env._robot.mujoco_renderer
    assert renderer.viewer is None and not renderer._viewers  # no renderer unless rendering
    env.close()
    assert not [str(warning.message) for warning in caught]


@pytest.mark.mujoco
def test_offscreen_rendering() -> None:
    frame = render_offscreen(
        'from environments.kitchen import make_kitchen_task_env\n'
        "env = make_kitchen_task_env('light switch-off')"
    )
    assert frame['shape'] == [400, 400, 3] and frame['dtype'] == 'uint8'
    assert frame['std'] > 10.0  # a picture, not a blank frame


if __name__ == '__main__':
    family = KitchenMTEasy(seed=0, task_name='0')
    print(
        f'{family.task_names[0]}: {steps_per_second(family.get_train_envs()[0]):.0f} '
        f'steps/s through the adapter (random actions)'
    )
    family.close()
