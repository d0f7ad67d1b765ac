"""Tests of ``PointSharedPathMT-v0`` (``environments/point_shared_path.py``): the registry row and
preset, the sparse and dense rewards, and the properties that make it a test of behaviour
sharing: both dense tasks' full-speed paths cross the sparse goal's region early, the
conflicting task's path does not, and neither random actions nor any constant drift of an
untrained policy gets there (random actions, and pickling with the Gymnasium checker, are tested
for both sparse-goal layouts in ``tests/test_point_sparse_goal_env.py``)."""

import math

import numpy as np
import pytest
import torch
from garage import StepType

from environments.point_shared_path import (
    CONFLICTING_TASK,
    GOALS,
    STUCK_TASK,
)
from environments.registry import DEFAULT_ENV, ENVS, make_env
from experiment_utils import ENV_PRESETS
from test_point_sparse_goal_env import greedy, place, run_episode

torch.set_num_threads(1)

ENV_ID = 'PointSharedPathMT-v0'


def test_registry_row_preset_and_default():
    assert DEFAULT_ENV == ENV_ID
    info = ENVS[ENV_ID]
    assert (info.n_tasks, info.max_episode_length) == (4, 50)
    preset = ENV_PRESETS[ENV_ID]
    assert preset['reward_scale'] == 10.0 and preset['n_epochs'] == 30
    env = make_env(ENV_ID)
    assert env.n_tasks == 4 and env.task_names[STUCK_TASK] == 'reach-sparse-goal'
    assert env.task_names[CONFLICTING_TASK] == 'reach-top-left'


def test_sparse_task_rewards_its_region_and_does_not_end_there():
    task_env = make_env(ENV_ID).get_train_envs()[STUCK_TASK]
    place(task_env, GOALS[0] + [0.0, 0.25])  # 0.25 above G0: outside the radius 0.2
    env_step = task_env.step(np.zeros(2, np.float32))
    assert env_step.reward == 0.0 and env_step.env_info['success'] == 0.0
    env_step = task_env.step(np.array([0.0, -0.5], np.float32))  # 0.2 away: not < 0.2
    assert env_step.env_info['distance_to_goal'] == pytest.approx(0.2, abs=1e-6)
    assert env_step.reward == 0.0
    env_step = task_env.step(np.array([0.0, -0.5], np.float32))  # 0.15 away: inside
    assert env_step.reward == 1.0 and env_step.env_info['success'] == 1.0
    assert env_step.step_type == StepType.MID


def test_dense_task_reward():
    task_env = make_env(ENV_ID).get_train_envs()[1]
    place(task_env, GOALS[1] - [0.3, 0.0])
    env_step = task_env.step(np.zeros(2, np.float32))
    assert env_step.reward == pytest.approx(math.exp(-0.3) - 1.0, abs=1e-6)
    assert env_step.env_info['success'] == 0.0


@pytest.mark.parametrize('task', [1, 2])
def test_the_dense_tasks_full_speed_paths_cross_the_sparse_goal_early(task):
    """What the Q-switch can share: following task 1's (or 2's) policy from the start, the
    point is within task 0's region for two steps or more, within the first 20 of 50."""
    task_env = make_env(ENV_ID).get_train_envs()[STUCK_TASK]
    positions, steps = run_episode(task_env, greedy(GOALS[task]))
    inside = [k for k, step in enumerate(steps) if step.reward == 1.0]
    assert len(inside) >= 2 and inside[0] < 20
    assert np.linalg.norm(positions[-1] - GOALS[task]) < 0.05  # and on to its own goal


def test_the_conflicting_tasks_path_never_gets_there():
    task_env = make_env(ENV_ID).get_train_envs()[STUCK_TASK]
    positions, steps = run_episode(task_env, greedy(GOALS[CONFLICTING_TASK]))
    assert sum(step.reward for step in steps) == 0.0
    assert np.linalg.norm(positions[-1] - GOALS[CONFLICTING_TASK]) < 0.05


def test_no_corner_or_axis_drift_reaches_the_sparse_goal():
    """An untrained policy without reward drifts along one direction; the goal is off the
    paths of the box's corners and axes, and only a narrow cone of directions crosses it."""
    task_env = make_env(ENV_ID).get_train_envs()[STUCK_TASK]

    def reaches(angle_deg: float) -> bool:
        angle = math.radians(angle_deg)
        action = np.clip(1.5 * np.array([math.cos(angle), math.sin(angle)]), -1, 1)
        _, steps = run_episode(task_env, lambda _: action.astype(np.float32))
        return any(step.reward > 0 for step in steps)

    hits = [angle for angle in range(0, 360, 5) if reaches(angle)]
    assert 0 < len(hits) <= 4, hits
    assert not set(hits) & set(range(0, 360, 45))
