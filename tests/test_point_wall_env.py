"""Tests of ``PointWallMT-v0`` (``environments/point_wall.py``): the wall blocks motion, rewards,
success and horizon, the multi-task contract, and the property that makes it a test of
behaviour sharing (a greedy reach of the goal behind the wall gets stuck; another task's
behaviour followed by the greedy reach gets there)."""

import math
import pickle

import numpy as np
import pytest
import torch
from garage import StepType
from gymnasium.utils.env_checker import check_env

from environments import point_wall
from environments.point_reach import START
from environments.point_wall import GOALS, WALLS, PointWallTaskEnv, inside_wall
from environments.registry import ENVS, make_env
from experiment_utils import ENV_PRESETS

torch.set_num_threads(1)

ENV_ID = 'PointWallMT-v0'
N_TASKS = 4


def greedy(goal):
    """Full speed straight at ``goal``, slowing down so as not to overshoot."""
    return lambda position: np.clip((goal - position) / 0.1, -1, 1).astype(np.float32)


def run_episode(task, controller, task_env=None):
    """(positions, last env step) of one episode of ``task`` under ``controller(position)``."""
    task_env = task_env or make_env(ENV_ID).get_train_envs()[task]
    observation, _ = task_env.reset()
    positions = [observation[:2]]
    while True:
        env_step = task_env.step(controller(observation[:2]))
        observation = env_step.observation
        positions.append(observation[:2])
        if env_step.last:
            return np.array(positions), env_step


def place(task_env, xy):
    task_env.reset()
    task_env.gymnasium_env._position = np.array(xy, np.float32)


# --------------------------------------------------------------------------- family and contract


def test_registry_row_and_preset():
    info = ENVS[ENV_ID]
    assert (info.n_tasks, info.max_episode_length) == (N_TASKS, 50)
    assert ENV_PRESETS[ENV_ID]['n_policies'] == N_TASKS
    # batch_size holds whole episodes of every task
    assert ENV_PRESETS[ENV_ID]['batch_size'] >= N_TASKS * info.max_episode_length


def test_family_facts_one_hot_and_infos():
    env = make_env(ENV_ID)
    assert env.env_id == ENV_ID and env.n_tasks == N_TASKS
    assert env.task_names == point_wall.TASK_NAMES
    assert (env.observation_dim, env.network_input_dim, env.action_dim) == (6, 2, 2)
    assert env.max_episode_length == 50
    assert env.min_reward == -1.0  # the dense reward's minimum (data-sharing relabel)
    assert env.split_mode == 'slice'
    assert make_env(ENV_ID, include_task_id=True).network_input_dim == 6
    assert make_env(ENV_ID, sparse_tasks=[0, 1, 2, 3]).min_reward == 0.0
    observations = []
    for task, task_env in enumerate(env.get_train_envs()):
        observation, _ = task_env.reset()
        assert observation.dtype == np.float32 and observation.shape == (6,)
        np.testing.assert_array_equal(observation[2:], np.eye(N_TASKS)[task])
        assert np.all(np.abs(observation[:2] - START) <= 0.05 + 1e-6)
        env_step = task_env.step(np.array([0.0, 0.5], np.float32))
        np.testing.assert_allclose(env_step.observation[:2], observation[:2] + [0, 0.05], atol=1e-6)
        assert env_step.env_info['task_id'] == task
        assert env_step.env_info['success'] == 0.0
        assert env_step.step_type == StepType.FIRST
        observations.append(observation)
    states, task_ids = env.split_observation(np.stack(observations))
    np.testing.assert_array_equal(task_ids, np.arange(N_TASKS))
    np.testing.assert_array_equal(states, np.stack(observations)[:, :2])
    with pytest.raises(ValueError, match='sparse task 4'):
        make_env(ENV_ID, sparse_tasks=[4])


def test_test_envs_are_separate_and_seeded_differently():
    env = make_env(ENV_ID)
    train, test = env.get_train_envs(), env.get_test_envs()
    assert all(a is not b for a, b in zip(train, test, strict=True))
    assert not np.allclose(train[0].reset()[0], test[0].reset()[0])
    np.testing.assert_array_equal(
        make_env(ENV_ID).get_train_envs()[0].reset()[0],
        make_env(ENV_ID).get_train_envs()[0].reset()[0],
    )


def test_task_env_pickles_through_its_factory():
    task_env = make_env(ENV_ID).get_train_envs()[2]
    clone = pickle.loads(pickle.dumps(task_env))
    assert isinstance(clone.gymnasium_env, PointWallTaskEnv)
    np.testing.assert_array_equal(clone.gymnasium_env.goal, GOALS[2])
    assert clone.reset()[0][2:].tolist() == [0, 0, 1, 0]


# --------------------------------------------------------------------------- dynamics


def test_geometry_of_the_layout():
    np.testing.assert_allclose(WALLS, [[-0.2, 0.2, 0.3, 0.3], [0.2, -0.5, 0.3, 0.3]])
    assert not inside_wall(START) and not any(inside_wall(goal) for goal in GOALS)
    assert inside_wall(np.array([0.0, 0.25])) and inside_wall(np.array([0.25, -0.3]))
    assert inside_wall(np.array([0.2, 0.2], np.float32))  # the border counts as wall
    assert not inside_wall(np.array([0.0, 0.19])) and not inside_wall(np.array([-0.21, 0.25]))


def test_wall_blocks_motion_in_sub_steps():
    task_env = make_env(ENV_ID).get_train_envs()[0]
    # straight up from (0, 0.1): sub-steps of 0.025 reach 0.175; the next one would be at 0.2
    place(task_env, [0.0, 0.1])
    env_step = task_env.step(np.array([0.0, 1.0], np.float32))
    np.testing.assert_allclose(env_step.observation[:2], [0.0, 0.175], atol=1e-6)
    # straight right from (0.1, -0.2): stopped at x = 0.175 by the vertical bar
    place(task_env, [0.1, -0.2])
    env_step = task_env.step(np.array([1.0, 0.0], np.float32))
    np.testing.assert_allclose(env_step.observation[:2], [0.175, -0.2], atol=1e-6)
    # diagonally from (0, 0.15): one free sub-step to (0.025, 0.175), then it slides along x
    place(task_env, [0.0, 0.15])
    env_step = task_env.step(np.array([1.0, 1.0], np.float32))
    np.testing.assert_allclose(env_step.observation[:2], [0.1, 0.175], atol=1e-6)
    # the square's border clips as in PointReachMT-v0
    place(task_env, [0.95, -0.6])
    env_step = task_env.step(np.array([1.0, 0.0], np.float32))
    np.testing.assert_allclose(env_step.observation[:2], [1.0, -0.6], atol=1e-6)


def test_far_from_the_wall_a_step_is_the_open_square_step():
    assert not point_wall.near_wall(START) and point_wall.near_wall(np.array([0.0, 0.1]))
    task_env = make_env(ENV_ID).get_train_envs()[0]
    place(task_env, [-0.5, -0.5])
    env_step = task_env.step(np.array([1.0, 0.6], np.float32))
    np.testing.assert_allclose(env_step.observation[:2], [-0.4, -0.44], atol=1e-6)


def test_random_motion_never_enters_the_wall():
    task_env = make_env(ENV_ID).get_train_envs()[0]
    rng = np.random.default_rng(0)
    task_env.reset()
    for _ in range(3000):
        env_step = task_env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        assert not inside_wall(env_step.observation[:2])
        if env_step.last:
            task_env.reset()


# --------------------------------------------------------------------------- reward and horizon


def test_dense_reward_success_and_termination():
    task_env = make_env(ENV_ID).get_train_envs()[0]
    # from (0.95, 0.3), action (-0.5, 0) moves by -0.05 in x
    place(task_env, [0.95, 0.3])
    env_step = task_env.step(np.array([-0.5, 0.0], np.float32))
    # at (0.9, 0.3): distance to (0.7, 0.7) is sqrt(0.2^2 + 0.4^2)
    assert env_step.reward == pytest.approx(math.exp(-math.hypot(0.2, 0.4)) - 1.0, abs=1e-6)
    assert env_step.env_info['distance_to_goal'] == pytest.approx(math.hypot(0.2, 0.4), abs=1e-6)
    assert env_step.step_type == StepType.FIRST
    # into the success radius: (0.78, 0.7) -> (0.73, 0.7), distance 0.03
    place(task_env, [0.78, 0.7])
    env_step = task_env.step(np.array([-0.5, 0.0], np.float32))
    assert env_step.env_info['success'] == 1.0
    assert env_step.reward == pytest.approx(math.exp(-0.03) - 1.0, abs=1e-5)
    assert env_step.step_type == StepType.TERMINAL


def test_sparse_task_reward():
    task_env = make_env(ENV_ID, sparse_tasks=[0]).get_train_envs()[0]
    place(task_env, [0.9, 0.3])
    assert task_env.step(np.zeros(2, np.float32)).reward == 0.0
    place(task_env, [0.75, 0.7])
    assert task_env.step(np.zeros(2, np.float32)).reward == 1.0


def test_horizon_ends_with_a_timeout():
    task_env = make_env(ENV_ID).get_train_envs()[1]
    task_env.reset()
    step_types = [task_env.step(np.zeros(2, np.float32)).step_type for _ in range(50)]
    assert step_types[0] == StepType.FIRST and step_types[1:49] == [StepType.MID] * 48
    assert step_types[49] == StepType.TIMEOUT
    with pytest.raises(RuntimeError):
        task_env.step(np.zeros(2, np.float32))


# --------------------------------------------------------------------------- why it tests sharing


def test_greedy_reach_of_the_goal_behind_the_wall_gets_stuck_in_the_corner():
    positions, last = run_episode(0, greedy(GOALS[0]))
    assert last.step_type == StepType.TIMEOUT and last.env_info['success'] == 0.0
    # it ends in the wall's inside corner, just below-left of (0.2, 0.2)
    np.testing.assert_allclose(positions[-1], [0.2, 0.2], atol=0.03)
    assert last.env_info['distance_to_goal'] == pytest.approx(math.hypot(0.5, 0.5), abs=0.04)
    # a local optimum of the dense reward: from near the corner, (0.175, 0.175), no step gets
    # closer to the goal than the corner (0.2, 0.2) itself
    corner_distance = math.hypot(0.5, 0.5)
    task_env = make_env(ENV_ID).get_train_envs()[0]
    for angle in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        place(task_env, [0.175, 0.175])
        env_step = task_env.step(np.array([np.cos(angle), np.sin(angle)], np.float32))
        assert env_step.env_info['distance_to_goal'] >= corner_distance - 1e-6
    place(task_env, [0.175, 0.175])
    env_step = task_env.step(np.array([1.0, 1.0], np.float32))  # straight at the goal: blocked
    np.testing.assert_allclose(env_step.observation[:2], [0.175, 0.175], atol=1e-6)


@pytest.mark.parametrize('task', [1, 2, 3])
def test_greedy_reach_solves_the_open_tasks(task):
    positions, last = run_episode(task, greedy(GOALS[task]))
    assert last.step_type == StepType.TERMINAL and last.env_info['success'] == 1.0
    assert len(positions) - 1 <= 20


@pytest.mark.parametrize(
    'helper_task, leg_done',
    [
        (1, lambda position: position[1] > 0.3),  # up the left side until above the bar
        (2, lambda position: position[0] > 0.3),  # right along the bottom until past the bar
    ],
)
def test_another_tasks_behaviour_then_the_greedy_reach_gets_behind_the_wall(helper_task, leg_done):
    """What QMP's Q-switch can do: act with task 1's (or 2's) policy first, then task 0's."""
    switched = []

    def mixture(position):
        if not switched and not leg_done(position):
            return greedy(GOALS[helper_task])(position)
        switched.append(True)
        return greedy(GOALS[0])(position)

    positions, last = run_episode(0, mixture)
    assert last.step_type == StepType.TERMINAL and last.env_info['success'] == 1.0
    assert len(positions) - 1 <= 35  # well within the horizon of 50


# --------------------------------------------------------------------------- gymnasium and render


def test_gymnasium_env_checker_and_render():
    env = PointWallTaskEnv(GOALS[0])
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8

    def pixel(xy):
        col, row = np.round((np.asarray(xy) + 1.0) / 2.0 * 63).astype(int)
        return image[63 - row, col]

    np.testing.assert_array_equal(pixel([0.0, 0.25]), [90, 90, 90])  # the horizontal bar
    np.testing.assert_array_equal(pixel([0.25, -0.2]), [90, 90, 90])  # the vertical bar
    np.testing.assert_array_equal(pixel(GOALS[0]), [0, 160, 0])
    np.testing.assert_array_equal(pixel([-0.5, 0.5]), [255, 255, 255])
