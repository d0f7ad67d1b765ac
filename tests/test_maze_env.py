"""Tests of the ``MazeLarge-10-v0`` family (``environments/maze.py``).

The family (10 train + 10 test environments, under two seconds) is built once for the module.
Run as a script to print steps/s of one task environment through the adapter.
"""

from __future__ import annotations

import itertools
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

from conftest import render_offscreen, steps_per_second
from environments.maze import (
    MAZE_MAP,
    TASK_NAMES,
    TASKS,
    MazeLarge10,
    MazeTaskEnv,
    is_free,
    make_maze_task_env,
    shortest_path,
)
from environments.multitask import TaskOneHotWrapper
from environments.registry import select_tasks

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_DIM = 4
N_TASKS = 10
# D4RL's pointmaze LARGE_MAZE ('G' marks D4RL's single-goal cell, a free cell).
D4RL_LARGE_MAZE = (
    '############\\#OOOO#OOOOO#\\#O##O#O#O#O#\\#OOOOOO#OOO#\\#O####O###O#\\'
    '#OO#O#OOOOO#\\##O#O#O#O###\\#OO#OOO#OGO#\\############'
)
# Shortest path lengths in cells (the release's metadata: short <= 9, medium 10-12, long >= 13).
PATH_LENGTHS = (9, 9, 9, 9, 11, 11, 11, 12, 14, 15)
POSITION_TOLERANCE = 1e-5


@pytest.fixture(scope='module')
def maze() -> Iterator[MazeLarge10]:
    env = MazeLarge10(seed=0)
    env.get_train_envs()
    env.get_test_envs()
    yield env
    env.close()


def _one_hot(task_id: int, n_tasks: int = N_TASKS) -> np.ndarray:
    one_hot = np.zeros(n_tasks, dtype=np.float32)
    one_hot[task_id] = 1.0
    return one_hot


def _drive_along_path(env: TaskOneHotWrapper, task: int, max_steps: int = 600) -> list:
    """PD control towards the next cell centre of the BFS path; returns the steps taken."""
    path = shortest_path(*TASKS[task])
    observation, _ = env.reset()
    waypoint = 1
    steps = []
    for _ in range(max_steps):
        position, velocity = observation[:2], observation[2:STATE_DIM]
        target = np.array(path[waypoint], dtype=np.float64)
        if waypoint < len(path) - 1 and np.linalg.norm(target - position) < 0.25:
            waypoint += 1
            target = np.array(path[waypoint], dtype=np.float64)
        env_step = env.step(np.clip(10.0 * (target - position) - velocity, -1.0, 1.0))
        steps.append(env_step)
        observation = env_step.observation
        if env_step.last:
            break
    return steps


@pytest.mark.mujoco
def test_family_facts(maze: MazeLarge10) -> None:
    assert maze.env_id == 'MazeLarge-10-v0'
    assert maze.n_tasks == N_TASKS
    assert maze.task_names == TASK_NAMES
    assert maze.task_names[0] == 'maze-(1,3)->(5,8)'
    assert maze.task_indices == tuple(range(N_TASKS))
    assert maze.observation_dim == STATE_DIM + N_TASKS == 14
    assert maze.network_input_dim == STATE_DIM
    assert maze.action_dim == 2
    assert maze.max_episode_length == 600
    assert maze.split_mode == 'slice'
    assert maze.min_reward == -1.0
    np.testing.assert_array_equal(maze.spec.action_space.low, [-1.0, -1.0])
    np.testing.assert_array_equal(maze.spec.action_space.high, [1.0, 1.0])
    assert len(maze.get_train_envs()) == len(maze.get_test_envs()) == N_TASKS


@pytest.mark.mujoco
def test_map_is_d4rl_large_maze() -> None:
    d4rl = [[1 if tile == '#' else 0 for tile in line] for line in D4RL_LARGE_MAZE.split('\\')]
    assert [list(row) for row in MAZE_MAP] == d4rl
    assert (len(MAZE_MAP), len(MAZE_MAP[0])) == (9, 12)


@pytest.mark.mujoco
def test_task_cells_are_free_and_connected() -> None:
    """(row, column) is the reading under which all 20 cells are free; BFS finds every path."""
    for (start, goal), length in zip(TASKS, PATH_LENGTHS, strict=True):
        assert is_free(start) and is_free(goal), (start, goal)
        path = shortest_path(start, goal)
        assert path[0] == start and path[-1] == goal and len(path) - 1 == length
        assert all(is_free(cell) for cell in path)
        assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in itertools.pairwise(path))
    swapped_free = sum(is_free(cell[::-1]) for task in TASKS for cell in task)
    assert swapped_free == 8  # read as (column, row), 12 of the 20 cells are walls or off the map
    with pytest.raises(ValueError, match='wall'):
        MazeTaskEnv((0, 0), (5, 8))


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', [0, 7])
def test_one_hot_and_task_id(maze: MazeLarge10, task_id: int) -> None:
    for env in (maze.get_train_envs()[task_id], maze.get_test_envs()[task_id]):
        assert env.task_name == TASK_NAMES[task_id]
        observation, episode_info = env.reset()
        assert episode_info == {}
        assert observation.shape == (14,) and observation.dtype == np.float32
        assert env.observation_space.contains(observation)
        np.testing.assert_array_equal(observation[STATE_DIM:], _one_hot(task_id))
        env_step = env.step(env.action_space.sample())
        assert env_step.step_type == StepType.FIRST
        assert env_step.observation.dtype == np.float32
        assert env.observation_space.contains(env_step.observation)
        np.testing.assert_array_equal(env_step.observation[STATE_DIM:], _one_hot(task_id))
        assert env_step.env_info['task_id'] == task_id
        assert env_step.env_info['success'] == 0.0
        assert set(env_step.env_info) == {'task_id', 'success', 'distance_to_goal'}
        assert -1.0 < env_step.reward <= 0.0


@pytest.mark.mujoco
def test_split_observation(maze: MazeLarge10) -> None:
    observations = np.stack([maze.get_train_envs()[i].reset()[0] for i in (2, 9)])
    states, task_ids = maze.split_observation(observations)
    assert states.shape == (2, STATE_DIM)
    np.testing.assert_array_equal(states, observations[:, :STATE_DIM])
    np.testing.assert_array_equal(task_ids, [2, 9])
    torch_states, torch_ids = maze.split_observation(torch.as_tensor(observations))
    np.testing.assert_array_equal(torch_states.numpy(), states)
    np.testing.assert_array_equal(torch_ids.numpy(), [2, 9])

    with_id = MazeLarge10(seed=0, include_task_id=True)
    assert with_id.network_input_dim == 14
    kept, kept_ids = with_id.split_observation(observations)
    np.testing.assert_array_equal(kept, observations)
    np.testing.assert_array_equal(kept_ids, [2, 9])


@pytest.mark.mujoco
def test_reset_near_start_cell_and_goal_not_in_observation(maze: MazeLarge10) -> None:
    for envs in (maze.get_train_envs(), maze.get_test_envs()):
        for task_id, env in enumerate(envs):
            start, goal = TASKS[task_id]
            observation, _ = env.reset()
            offset = observation[:2] - np.array(start, dtype=np.float32)
            assert np.all(np.abs(offset) <= 0.1 + POSITION_TOLERANCE), (task_id, offset)
            assert np.all(np.abs(observation[2:STATE_DIM]) < 0.5)
            # The observation is the point's own state plus the one-hot: nothing else.
            task_env = env.gymnasium_env
            position, velocity = task_env.get_state()
            np.testing.assert_allclose(
                observation[:STATE_DIM], np.concatenate([position, velocity]), atol=1e-6
            )
            np.testing.assert_array_equal(task_env.goal, goal)
    # Tasks 0 and 4 share a start cell: their states are drawn from the same distribution.
    assert TASKS[0][0] == TASKS[4][0] and TASKS[0][1] != TASKS[4][1]


@pytest.mark.mujoco
def test_reset_noise_distribution() -> None:
    env = make_maze_task_env((1, 3), (5, 8))
    env.reset(seed=3)
    states = np.stack([env.reset()[0] for _ in range(300)])
    env.close()
    offsets = states[:, :2] - np.array([1.0, 3.0])
    assert np.abs(offsets).max() <= 0.1 + POSITION_TOLERANCE
    assert np.abs(offsets).max() > 0.09  # uniform over the whole +-0.1 range
    assert 0.08 < states[:, 2:].std() < 0.12  # N(0, 0.1^2) velocities
    assert abs(states[:, 2:].mean()) < 0.03


@pytest.mark.mujoco
def test_actions_move_along_rows_and_columns(maze: MazeLarge10) -> None:
    """action[0] pushes down the map (rows grow), action[1] to the right (columns grow)."""
    env = maze.get_train_envs()[3]  # cell (7, 4) has free cells to its right and above
    for action, axis in (((-1.0, 0.0), 0), ((0.0, 1.0), 1)):
        env.reset()
        env.gymnasium_env.set_state((7.0, 4.0), (0.0, 0.0))
        for _ in range(10):
            observation = env.step(np.array(action)).observation
        moved = observation[:2] - np.array([7.0, 4.0])
        assert moved[axis] * action[axis] > 0.05 and abs(moved[1 - axis]) < 1e-3, moved


@pytest.mark.mujoco
def test_reward_success_and_termination_on_hand_set_states(maze: MazeLarge10) -> None:
    env = maze.get_train_envs()[0]
    goal = np.array(TASKS[0][1], dtype=np.float64)  # (5, 8); cells (5, 7) and (5, 9) are free
    for position, expect_success in (
        ((5.0, 7.0), False),
        ((5.0, 7.45), False),
        ((5.0, 8.4), True),
        ((5.0, 7.6), True),
    ):
        env.reset()
        env.gymnasium_env.set_state(position, (0.0, 0.0))
        env_step = env.step(np.zeros(2))
        distance = float(np.linalg.norm(env_step.observation[:2].astype(np.float64) - goal))
        assert distance == pytest.approx(np.linalg.norm(np.array(position) - goal), abs=1e-3)
        assert env_step.reward == pytest.approx(np.exp(-distance) - 1.0, abs=1e-5)
        assert env_step.env_info['distance_to_goal'] == pytest.approx(distance, abs=1e-5)
        assert env_step.env_info['success'] == float(expect_success)
        assert (env_step.step_type == StepType.TERMINAL) == expect_success
        if not expect_success:
            assert env_step.step_type == StepType.FIRST
    with pytest.raises(RuntimeError):
        env.step(np.zeros(2))  # the episode ended on success


@pytest.mark.mujoco
def test_velocity_is_clipped_before_each_step(maze: MazeLarge10) -> None:
    env = maze.get_train_envs()[8]
    env.reset()
    env.gymnasium_env.set_state((1.0, 6.0), (0.0, 20.0))  # row 1 is free from column 6 to 10
    velocity = env.step(np.zeros(2)).observation[2:STATE_DIM]
    assert 4.5 < velocity[1] <= 5.0 and abs(velocity[0]) < 1e-4


@pytest.mark.mujoco
def test_sparse_tasks() -> None:
    env = make_maze_task_env((1, 3), (5, 8), sparse=True)
    env.reset(seed=0)
    env.set_state((5.0, 7.0), (0.0, 0.0))
    assert env.step(np.zeros(2))[1:3] == (0.0, False)
    env.set_state((5.0, 7.8), (0.0, 0.0))
    assert env.step(np.zeros(2))[1:3] == (1.0, True)
    env.close()
    assert MazeLarge10(sparse_tasks=[1]).min_reward == -1.0
    assert MazeLarge10(task_name='4', sparse_tasks=[0]).min_reward == 0.0
    with pytest.raises(ValueError, match='sparse task 2'):
        MazeLarge10(task_name='3,4', sparse_tasks=[2])


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', [0, 1, 2])
def test_scripted_controller_reaches_the_goal(maze: MazeLarge10, task_id: int) -> None:
    steps = _drive_along_path(maze.get_train_envs()[task_id], task_id)
    assert len(steps) < 600
    assert steps[-1].step_type == StepType.TERMINAL
    assert steps[-1].env_info['success'] == 1.0
    assert steps[-1].env_info['distance_to_goal'] <= 0.5
    assert all(step.env_info['success'] == 0.0 for step in steps[:-1])
    assert steps[-1].reward >= np.exp(-0.5) - 1.0


@pytest.mark.mujoco
def test_zero_actions_time_out_at_the_horizon(maze: MazeLarge10) -> None:
    env = maze.get_train_envs()[9]  # (7, 2) -> (6, 8): 6 cells apart
    env.reset()
    step_types = [env.step(np.zeros(2)).step_type for _ in range(600)]
    assert step_types[0] == StepType.FIRST
    assert step_types[-1] == StepType.TIMEOUT
    assert set(step_types[1:-1]) == {StepType.MID}
    with pytest.raises(RuntimeError):
        env.step(np.zeros(2))


@pytest.mark.mujoco
def test_task_name_selects_a_subset_in_order() -> None:
    subset = MazeLarge10(seed=1, task_name='2,5')
    assert subset.n_tasks == 2 and subset.task_indices == (2, 5)
    assert subset.task_names == (TASK_NAMES[2], TASK_NAMES[5])
    assert subset.observation_dim == STATE_DIM + 2 and subset.network_input_dim == STATE_DIM
    for task_id, env in enumerate(subset.get_train_envs()):
        observation, _ = env.reset()
        np.testing.assert_array_equal(observation[STATE_DIM:], _one_hot(task_id, 2))
        start = np.array(TASKS[subset.task_indices[task_id]][0], dtype=np.float32)
        assert np.all(np.abs(observation[:2] - start) <= 0.1 + POSITION_TOLERANCE)
    subset.close()
    assert MazeLarge10(task_name=' 9, 0 ').task_indices == (9, 0)
    assert select_tasks(None, N_TASKS) == tuple(range(N_TASKS))


@pytest.mark.mujoco
@pytest.mark.parametrize('task_name', ['', '10', '-1', '2,,5', 'a,b', '2.0', '2,2', 3])
def test_bad_task_name_raises(task_name: object) -> None:
    with pytest.raises(ValueError, match='task_name'):
        MazeLarge10(task_name=task_name)


@pytest.mark.mujoco
def test_pickled_env_is_small_and_steps(maze: MazeLarge10) -> None:
    env = maze.get_train_envs()[1]
    data = pickle.dumps(env)
    assert len(data) < 20_000
    clone = pickle.loads(data)
    assert isinstance(clone, TaskOneHotWrapper) and clone.task_id == 1
    assert clone.gymnasium_env is not env.gymnasium_env
    observation, _ = clone.reset()
    assert observation.shape == (14,)
    env_step = clone.step(clone.action_space.sample())
    assert env_step.env_info['task_id'] == 1
    assert clone.observation_space.contains(env_step.observation)
    clone.close()


@pytest.mark.mujoco
def test_test_envs_are_separate_and_seeded_differently(maze: MazeLarge10) -> None:
    train, test = maze.get_train_envs(), maze.get_test_envs()
    assert all(a is not b for a, b in zip(train, test, strict=True))
    assert len({id(env.gymnasium_env) for env in train + test}) == 2 * N_TASKS
    first, again = MazeLarge10(seed=0, task_name='4'), MazeLarge10(seed=0, task_name='4')
    first_train = first.get_train_envs()[0].reset()[0]
    first_test = first.get_test_envs()[0].reset()[0]
    np.testing.assert_array_equal(first_train, again.get_train_envs()[0].reset()[0])
    assert not np.allclose(first_train[:STATE_DIM], first_test[:STATE_DIM])
    first.close()
    again.close()


@pytest.mark.mujoco
def test_gymnasium_env_checker() -> None:
    env = make_maze_task_env(*TASKS[6])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_env(env, skip_render_check=True)
    env.close()
    assert not [str(warning.message) for warning in caught]


@pytest.mark.mujoco
def test_renderer_is_created_lazily(maze: MazeLarge10) -> None:
    env = maze.get_train_envs()[5]
    env.reset()
    env.step(env.action_space.sample())
    renderer = env.gymnasium_env._point_env.mujoco_renderer
    assert renderer.viewer is None and not renderer._viewers


@pytest.mark.mujoco
def test_offscreen_rendering() -> None:
    frame = render_offscreen(
        'from environments.maze import make_maze_task_env\nenv = make_maze_task_env((1, 3), (5, 8))'
    )
    assert frame['shape'] == [400, 400, 3] and frame['dtype'] == 'uint8'
    assert frame['std'] > 10.0  # a picture, not a blank frame


if __name__ == '__main__':
    family = MazeLarge10(seed=0)
    print(
        f'{family.task_names[0]}: {steps_per_second(family.get_train_envs()[0]):.0f} '
        f'steps/s through the adapter (random actions)'
    )
    family.close()
