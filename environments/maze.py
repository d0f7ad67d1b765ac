"""``MazeLarge-10-v0``: ten point-mass navigation tasks in D4RL's large maze.

A point mass moves through the 9 x 12 "large" maze of D4RL. Every task asks it to go from one
cell to another; the ten (start cell, goal cell) pairs are the release's
``large_10t_train_goals.csv``. The goal is *not* in the observation, so a policy must infer its
task from the task id (the family's point: the tasks share corridors, so behaviour can be
shared between them, but they diverge at the junctions).

Tasks, in (row, column) cells of the map, with the length of the shortest 4-connected
path of cells (the release's metadata groups them as short <= 9, medium 10-12, long >= 13):

====  =========  =========  ====
task  start      goal       path
====  =========  =========  ====
0     (1, 3)     (5, 8)     9
1     (1, 10)    (2, 4)     9
2     (4, 1)     (1, 7)     9
3     (7, 4)     (4, 10)    9
4     (1, 3)     (7, 4)     11
5     (1, 7)     (7, 10)    11
6     (5, 4)     (7, 9)     11
7     (7, 1)     (2, 6)     12
8     (1, 2)     (3, 10)    14
9     (7, 2)     (6, 8)     15
====  =========  =========  ====

Coordinates. The pairs are read as (row, column) of the map (row 0 at the top), D4RL's own
convention: D4RL indexes its parsed maze as ``maze_arr[row][col]`` and uses those indices as
the point's (x, y) joint positions. This reading is the only consistent one: all 20 cells are
free under it, while read as (column, row) 12 of the 20 cells are walls or off the 9-row map
(e.g. (1, 10) and (7, 4)). Observations use the same frame, as in the release: the position is
the continuous cell coordinate (row, column), so cell (r, c)'s centre is at (r, c), and the
velocity is d(row, column)/dt; action[0] pushes along the rows (down the map) and action[1]
along the columns (right), like D4RL's x and y motors. Gymnasium-Robotics' own frame (x to the
right, y up, origin at the map's centre, scaled by ``maze_size_scaling``) is converted to and
from this one here, so distances are in cells whatever the scaling.

Per task (release behaviour; differences in docs/deviations.md):

* state ``[row, col, v_row, v_col]`` (float32); the task one-hot is appended by
  ``TaskOneHotWrapper`` and sliced away again before the networks (``split_mode='slice'``,
  network input 4 dims unless ``include_task_id``);
* action: 2 forces in [-1, 1] (clipped; gear 100);
* reset: position = start cell centre + U(-0.1, 0.1) per coordinate, velocity ~ N(0, 0.1^2);
  the goal is the goal cell's centre, without noise;
* step: velocities clipped to +-5 before the simulation step (as D4RL's maze); distance d to the
  goal in cells; success = d <= 0.5, which ends the episode (``terminated=True``, a
  ``StepType.TERMINAL``; the goal is never resampled); dense reward exp(-d) - 1 in (-1, 0], or
  1[success] for a task listed in ``sparse_tasks``; ``info['success']`` (float) and
  ``info['distance_to_goal']``;
* horizon 600 (a ``StepType.TIMEOUT`` from the adapter); ``min_reward`` = min over tasks of
  (sparse - 1): -1.0 unless every task is sparse (0.0);
* train and test environments run the same tasks (as the release) but are separate instances,
  seeded ``seed + task_id`` and ``seed + 100 + task_id``;
* ``task_name="i,j,..."`` (the release's ``--task_name``) keeps only those tasks, in that order;
  task ids, one-hots, seeds and ``sparse_tasks`` then index the selection, as in the release.

Implementation: the simulation is Gymnasium-Robotics 1.4.2's ``PointMazeEnv`` on its
``LARGE_MAZE`` map, which is D4RL's ``LARGE_MAZE`` cell for cell (the tests compare them).
``MazeTaskEnv`` drives it through Gymnasium-Robotics' own ``reset(options={'goal_cell': ...,
'reset_cell': ...})`` (which also places the goal marker), then sets the release's start noise
itself and steps the underlying point model directly, computing the release's reward and
termination instead of Gymnasium-Robotics' (threshold 0.45, reward exp(-d), Dict observations).
Per-task environments reach garage through ``GymnasiumEnv`` and pickle as a
``functools.partial`` of the module-level ``make_maze_task_env`` (a few hundred bytes).

Differences from the release:

* dynamics: the point is Gymnasium-Robotics' point model on MuJoCo 3.3 instead of D4RL's on
  mujoco-py / MuJoCo 2.1. The model parameters are the same (timestep 0.01, Euler, frame skip 1,
  slide joints with damping 1, gear 100, a sphere of radius 0.1 and density 1000, walls of
  height 0.4, zero gravity), but contacts are solved by a different MuJoCo version, so
  trajectories are not bit-identical;
* D4RL's point body sits at (1.2, 1.2) while the wall of cell (r, c) sits at (r + 1, c + 1), so
  in the release the point at joint position (r, c) is physically 0.2 cells past the centre of
  cell (r, c) along both the row and the column; its start and goal (both given in joint
  coordinates) are therefore 0.28 cells off the cells' centres, towards the lower right of the
  map. Here the start and the goal are at the cells' true centres;
* the release seeds each task environment from the global NumPy generator; here the seeds are
  ``seed + task_id`` (+ 100 for evaluation), so runs are reproducible;
* ``task_name`` must list distinct task indices in 0..9 (the release would accept repeats and
  negative indices);
* the rendered picture (400 x 400 pixels, top-down, as the release's) shows Gymnasium-Robotics'
  scene, with the goal marker on the goal (the release draws it at the goal cell's centre,
  0.2 cells from its real goal, because of the offset above);
* the observation space bounds the velocities by +-10 (the release's is unbounded).

Rendering: environments are built with ``render_mode='rgb_array'``; MuJoCo's renderer is created
on the first ``render()`` only, so rendering costs nothing unless used. Off-screen rendering
needs ``MUJOCO_GL=egl`` (or ``osmesa``) set before MuJoCo is first imported.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium_robotics.envs.maze.maps import LARGE_MAZE
from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

from environments.family import GymnasiumTaskFamily
from environments.multitask import sparse_task_set
from environments.registry import ENVS, select_tasks

Cell = tuple[int, int]

ENV_ID = 'MazeLarge-10-v0'
MAX_EPISODE_LENGTH = ENVS[ENV_ID].max_episode_length
SUCCESS_DISTANCE = 0.5
START_NOISE = 0.1
VELOCITY_NOISE = 0.1
MAX_SPEED = 5.0  # per-coordinate velocity clip before each step (D4RL's and the point model's)
VELOCITY_BOUND = 2 * MAX_SPEED
RENDER_SIZE = 400
# MuJoCo free-camera settings: looking straight down at the map's centre; azimuth 90 puts the
# model's +y (row 0) at the top of the image.
TOP_DOWN_CAMERA: dict[str, Any] = {
    'distance': 15.0,
    'elevation': -90.0,
    'azimuth': 90.0,
    'lookat': np.zeros(3),
}
MAZE_MAP: tuple[tuple[int, ...], ...] = tuple(tuple(row) for row in LARGE_MAZE)
# (start cell, goal cell) in (row, column), from the release's large_10t_train_goals.csv.
TASKS: tuple[tuple[Cell, Cell], ...] = (
    ((1, 3), (5, 8)),
    ((1, 10), (2, 4)),
    ((4, 1), (1, 7)),
    ((7, 4), (4, 10)),
    ((1, 3), (7, 4)),
    ((1, 7), (7, 10)),
    ((5, 4), (7, 9)),
    ((7, 1), (2, 6)),
    ((1, 2), (3, 10)),
    ((7, 2), (6, 8)),
)
TASK_NAMES: tuple[str, ...] = tuple(f'maze-({s[0]},{s[1]})->({g[0]},{g[1]})' for s, g in TASKS)


def is_free(cell: Cell) -> bool:
    """Whether ``cell`` (row, column) lies on the map and is not a wall."""
    row, col = cell
    return 0 <= row < len(MAZE_MAP) and 0 <= col < len(MAZE_MAP[0]) and MAZE_MAP[row][col] != 1


def shortest_path(start: Cell, goal: Cell) -> list[Cell]:
    """The shortest 4-connected path of free cells from ``start`` to ``goal`` (both included).

    Used to check that every task is solvable and to script a controller in the tests.

    Raises:
        ValueError: if a cell is a wall or the goal cannot be reached.
    """
    for cell in (start, goal):
        if not is_free(cell):
            raise ValueError(f'cell {cell} is a wall or off the map')
    parents: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            path = [cell]
            while (parent := parents[path[-1]]) is not None:
                path.append(parent)
            return path[::-1]
        for d_row, d_col in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            neighbour = (cell[0] + d_row, cell[1] + d_col)
            if neighbour not in parents and is_free(neighbour):
                parents[neighbour] = cell
                queue.append(neighbour)
    raise ValueError(f'no path from {start} to {goal}')


class MazeTaskEnv(gymnasium.Env):
    """One task of the family: reach ``goal_cell`` from ``start_cell`` (see module docstring).

    Args:
        start_cell: (row, column) of the start cell.
        goal_cell: (row, column) of the goal cell.
        sparse: reward ``1[success]`` instead of ``exp(-d) - 1``.
        render_mode: ``'rgb_array'`` (renderer created on first use) or None.
    """

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 100}

    def __init__(
        self,
        start_cell: Cell,
        goal_cell: Cell,
        sparse: bool = False,
        render_mode: str | None = 'rgb_array',
    ) -> None:
        for cell in (start_cell, goal_cell):
            if not is_free(cell):
                raise ValueError(f'cell {cell} is a wall or off the map')
        self.start_cell = (int(start_cell[0]), int(start_cell[1]))
        self.goal_cell = (int(goal_cell[0]), int(goal_cell[1]))
        self.sparse = sparse
        self.render_mode = render_mode
        self._maze_env = PointMazeEnv(
            maze_map=[list(row) for row in MAZE_MAP],
            render_mode=render_mode,
            continuing_task=False,
            reset_target=False,
            width=RENDER_SIZE,
            height=RENDER_SIZE,
        )
        # Gymnasium-Robotics adds U(+-0.25) noise to the goal and the start; the release has no
        # goal noise and its own start noise (added in ``reset``).
        self._maze_env.position_noise_range = 0.0
        # Gymnasium-Robotics writes the maze's MJCF to a temporary file that it never deletes;
        # the model is loaded, so remove it: otherwise every env leaves one file behind.
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._maze_env.tmp_xml_file_path)
        self._point_env = self._maze_env.point_env
        # A top-down view of the whole map, row 0 at the top (the release renders top-down);
        # applied when the renderer is created, on the first ``render()``.
        self._point_env.mujoco_renderer.default_cam_config = dict(TOP_DOWN_CAMERA)
        self._maze = self._maze_env.maze
        self._scaling = float(self._maze.maze_size_scaling)
        self._goal = np.array(self.goal_cell, dtype=np.float64)
        n_rows, n_cols = len(MAZE_MAP), len(MAZE_MAP[0])
        # The point never leaves the map. Velocities are clipped to +-5 before each step, but the
        # step's force and wall contacts can push them a little beyond (at most 5.9 seen in 12,000
        # steps of bang-bang control into walls), so they are bounded by twice the clip. (The
        # release declares an unbounded space; garage and the networks do not use the bounds.)
        self.observation_space = gymnasium.spaces.Box(
            low=np.array([0.0, 0.0, -VELOCITY_BOUND, -VELOCITY_BOUND], dtype=np.float32),
            high=np.array(
                [n_rows - 1, n_cols - 1, VELOCITY_BOUND, VELOCITY_BOUND], dtype=np.float32
            ),
            dtype=np.float32,
        )
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)

    @property
    def goal(self) -> np.ndarray:
        """The goal position (the goal cell's centre) in (row, column) coordinates."""
        return self._goal.copy()

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) in (row, column) cell coordinates, float64."""
        maze, scaling = self._maze, self._scaling
        x, y = self._point_env.data.qpos
        vx, vy = self._point_env.data.qvel
        position = np.array(
            [(maze.y_map_center - y) / scaling - 0.5, (x + maze.x_map_center) / scaling - 0.5]
        )
        velocity = np.array([-vy / scaling, vx / scaling])
        return position, velocity

    def set_state(
        self, position: Sequence[float] | np.ndarray, velocity: Sequence[float] | np.ndarray
    ) -> None:
        """Puts the point at ``position`` with ``velocity`` (row, column coordinates).

        Used by ``reset`` for the release's start noise, and by tests to set exact states.
        """
        row, col = float(position[0]), float(position[1])
        qpos = self._maze.cell_rowcol_to_xy(np.array([row, col]))
        qvel = np.array([float(velocity[1]), -float(velocity[0])]) * self._scaling
        self._point_env.set_state(qpos, qvel)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._maze_env.reset(
            seed=seed,
            options={
                'goal_cell': np.array(self.goal_cell),
                'reset_cell': np.array(self.start_cell),
            },
        )
        position = np.array(self.start_cell, dtype=np.float64) + self.np_random.uniform(
            -START_NOISE, START_NOISE, size=2
        )
        velocity = self.np_random.normal(0.0, VELOCITY_NOISE, size=2)
        self.set_state(position, velocity)
        return self._observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        # (row, column) forces -> the point model's (x, y) motors: rows grow along -y.
        # The point model clips the velocities to +-5 before simulating (as D4RL's maze).
        self._point_env.step(np.array([action[1], -action[0]]))
        position, _ = self.get_state()
        distance = float(np.linalg.norm(position - self._goal))
        success = distance <= SUCCESS_DISTANCE
        reward = float(success) if self.sparse else float(np.exp(-distance) - 1.0)
        info = {'success': float(success), 'distance_to_goal': distance}
        return self._observation(), reward, success, False, info

    def _observation(self) -> np.ndarray:
        position, velocity = self.get_state()
        return np.concatenate([position, velocity]).astype(np.float32)

    def render(self) -> np.ndarray | None:
        """A 400 x 400 RGB image of the whole maze from above (``render_mode='rgb_array'``)."""
        return self._maze_env.render()

    def close(self) -> None:
        self._maze_env.close()


def make_maze_task_env(start_cell: Cell, goal_cell: Cell, sparse: bool = False) -> MazeTaskEnv:
    """Module-level factory of one task's Gymnasium env (picklable through a partial)."""
    return MazeTaskEnv(start_cell, goal_cell, sparse=sparse, render_mode='rgb_array')


class MazeLarge10(GymnasiumTaskFamily):
    """The ``MazeLarge-10-v0`` family (module docstring).

    Constructing it builds no simulator: task environments are built on the first
    ``get_train_envs`` / ``get_test_envs`` (or ``spec``) call.

    Args:
        seed: train environment ``i`` is seeded ``seed + i``, test environment ``i``
            ``seed + 100 + i`` (start noise and initial velocity).
        include_task_id: keep the task one-hot in the network input.
        task_name: the release's ``--task_name "i,j,..."``: run only these tasks, in this order.
        sparse_tasks: indices (into the selected tasks, as in the release) of tasks rewarded
            ``1[success]`` instead of ``exp(-d) - 1``.
    """

    ENV_ID = ENV_ID
    SPLIT_MODE = 'slice'

    def __init__(
        self,
        seed: int = 0,
        include_task_id: bool = False,
        task_name: str | None = None,
        sparse_tasks: Sequence[int] = (),
    ) -> None:
        self.task_indices = select_tasks(task_name, len(TASKS))
        n_tasks = len(self.task_indices)
        self._sparse_tasks = sparse_task_set(sparse_tasks, n_tasks, ENV_ID)
        all_sparse = len(self._sparse_tasks) == n_tasks
        super().__init__(
            [TASK_NAMES[i] for i in self.task_indices],
            seed,
            include_task_id,
            min_reward=0.0 if all_sparse else -1.0,
        )

    def task_factory(self, task_id: int, split: str, seed: int) -> functools.partial[MazeTaskEnv]:
        start_cell, goal_cell = TASKS[self.task_indices[task_id]]
        return functools.partial(
            make_maze_task_env, start_cell, goal_cell, task_id in self._sparse_tasks
        )
