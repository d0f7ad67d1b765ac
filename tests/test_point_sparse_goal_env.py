"""Tests of ``PointSparseGoalMT-v0`` (``environments/point_sparse_goal.py``): rewards, success
without termination, the horizon, the registry row and preset, and the property that makes it a
test of behaviour sharing (the dense tasks' full-speed paths cross the sparse goal's region, the
conflicting task's does not, and untrained-SAC-like random actions almost never get there)."""

import math
import pickle

import numpy as np
import pytest
import torch
from garage import StepType
from gymnasium.utils.env_checker import check_env

from environments import point_shared_path, point_sparse_goal
from environments.point_shared_path import PointSharedPathMT
from environments.point_sparse_goal import GOALS, PointSparseGoalMT
from environments.registry import ENVS, make_env
from experiment_utils import ENV_PRESETS

torch.set_num_threads(1)

ENV_ID = 'PointSparseGoalMT-v0'


def greedy(goal):
    """Full speed straight at ``goal``, slowing down so as not to overshoot."""
    return lambda position: np.clip((goal - position) / 0.1, -1, 1).astype(np.float32)


def place(task_env, position):
    task_env.reset()
    task_env.gymnasium_env._position = np.asarray(position, np.float32)


def run_episode(task_env, controller):
    """(positions, env steps) of one episode under ``controller(position)``."""
    observation, _ = task_env.reset()
    positions, steps = [observation[:2]], []
    while True:
        env_step = task_env.step(controller(observation[:2]))
        observation = env_step.observation
        positions.append(observation[:2])
        steps.append(env_step)
        if env_step.last:
            return np.array(positions), steps


def test_registry_row_and_preset():
    info = ENVS[ENV_ID]
    assert (info.n_tasks, info.max_episode_length) == (4, 50)
    preset = ENV_PRESETS[ENV_ID]
    assert preset['reward_scale'] == 10.0 and preset['n_epochs'] == 30
    env = make_env(ENV_ID)
    assert env.n_tasks == 4 and env.task_names[0] == 'reach-sparse-goal'


def test_sparse_task_rewards_its_region_and_does_not_end_there():
    task_env = make_env(ENV_ID).get_train_envs()[0]
    # (0.35 + 0.25, 0.35): 0.25 from G0, outside the radius 0.2 -> after a zero action, 0
    place(task_env, [0.6, 0.35])
    env_step = task_env.step(np.zeros(2, np.float32))
    assert env_step.reward == 0.0 and env_step.env_info['success'] == 0.0
    # one step of (-0.5, 0) moves by -0.05: 0.2 away, still outside (strict <)
    env_step = task_env.step(np.array([-0.5, 0.0], np.float32))
    assert env_step.env_info['distance_to_goal'] == pytest.approx(0.2, abs=1e-6)
    # another: 0.15 away, inside -> reward 1, success, and the episode goes on
    env_step = task_env.step(np.array([-0.5, 0.0], np.float32))
    assert env_step.reward == 1.0 and env_step.env_info['success'] == 1.0
    assert env_step.step_type == StepType.MID


def test_dense_task_reward_and_success_radius():
    task_env = make_env(ENV_ID).get_train_envs()[1]
    place(task_env, [0.9, 0.4])
    env_step = task_env.step(np.zeros(2, np.float32))  # 0.2 below G1 = (0.9, 0.6)
    assert env_step.reward == pytest.approx(math.exp(-0.2) - 1.0, abs=1e-6)
    assert env_step.env_info['success'] == 0.0
    env_step = task_env.step(np.array([0.0, 1.0], np.float32))  # 0.1 below: not < 0.1
    assert env_step.env_info['success'] == 0.0
    env_step = task_env.step(np.array([0.0, 0.5], np.float32))  # 0.05 below
    assert env_step.env_info['success'] == 1.0 and env_step.step_type == StepType.MID


def test_horizon_ends_with_a_timeout_even_after_success():
    task_env = make_env(ENV_ID).get_train_envs()[3]
    _, steps = run_episode(task_env, greedy(GOALS[3]))
    assert len(steps) == 50 and steps[-1].step_type == StepType.TIMEOUT
    assert all(step.step_type != StepType.TERMINAL for step in steps)
    assert steps[-1].env_info['success'] == 1.0


@pytest.mark.parametrize('task', [1, 2])
def test_the_dense_tasks_full_speed_paths_cross_the_sparse_goal(task):
    """What the Q-switch can share: following task 1's (or 2's) policy from the start, the
    point is within task 0's region for several steps, well inside the horizon."""
    task_env = make_env(ENV_ID).get_train_envs()[0]
    positions, steps = run_episode(task_env, greedy(GOALS[task]))
    inside = [k for k, step in enumerate(steps) if step.reward == 1.0]
    assert len(inside) >= 2 and inside[0] < 20
    assert np.linalg.norm(positions[-1] - GOALS[task]) < 0.05  # and on to its own goal


def test_the_conflicting_tasks_path_never_gets_there():
    task_env = make_env(ENV_ID).get_train_envs()[0]
    _, steps = run_episode(task_env, greedy(GOALS[3]))
    assert sum(step.reward for step in steps) == 0.0


# Both sparse-goal layouts (this one and its successor, the default env) share these two.
SPARSE_LAYOUTS = pytest.mark.parametrize(
    'family, layout',
    [(PointSparseGoalMT, point_sparse_goal), (PointSharedPathMT, point_shared_path)],
    ids=['PointSparseGoalMT-v0', 'PointSharedPathMT-v0'],
)


@SPARSE_LAYOUTS
def test_random_actions_almost_never_reach_the_sparse_goal(family, layout):
    """Separated SAC's task-0 policy starts near uniform (tanh of a unit Gaussian) and has no
    reward to learn from: such actions reach G0's region in well under 1 % of episodes."""
    rng = np.random.default_rng(0)
    n_episodes = 2000
    positions = np.array([-0.8, -0.8]) + rng.uniform(-0.05, 0.05, (n_episodes, 2))
    reached = np.zeros(n_episodes, bool)
    for _ in range(50):
        positions = np.clip(positions + 0.1 * np.tanh(rng.normal(size=(n_episodes, 2))), -1, 1)
        reached |= np.linalg.norm(positions - layout.GOALS[0], axis=1) < layout.GOAL_RADII[0]
    assert reached.mean() < 0.01


@SPARSE_LAYOUTS
def test_pickles_and_passes_the_gymnasium_checker(family, layout):
    env = family()
    task_env = pickle.loads(pickle.dumps(env.get_train_envs()[0]))
    task_env.reset()
    assert task_env.step(np.zeros(2, np.float32)).reward == 0.0  # task 0 stays sparse
    gym_env = family.make_task_gymnasium_env(0, False)
    check_env(gym_env, skip_render_check=True)
    gym_env.reset(seed=0)
    assert gym_env.render().shape == (64, 64, 3)
