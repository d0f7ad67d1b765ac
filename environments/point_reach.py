"""``PointReachMT-v0``: a pure-numpy multi-task point-reaching environment.

After the QMP project page's illustrative example: a point starts in the bottom-left corner of
the square [-1, 1]^2 and each task asks it to reach a different goal. The goals fan out to the
upper right, so the good behaviours of different tasks overlap (all of them first head up and
to the right) while their endpoints differ: sharing behaviour helps early, blind sharing hurts
late. It needs no simulator and runs tens of thousands of steps per second.

Per task: state (x, y); action = velocity command in [-1, 1]^2, moving the point by
``0.1 * action``; dense reward ``exp(-d) - 1`` in (-1, 0] with d the distance to the goal
(the Maze reward of the release), or ``1[success]`` for a sparse task; success when d < 0.1,
which also ends the episode; horizon 50.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from environments.family import GymnasiumTaskFamily
from environments.multitask import sparse_task_set

START = np.array([-0.8, -0.8], dtype=np.float32)
START_NOISE = 0.05
STEP_SIZE = 0.1
SUCCESS_RADIUS = 0.1
RENDER_SIZE = 64
# Goals on an arc of radius 1.3 around the start, from "mostly right" to "mostly up".
GOAL_ANGLES_DEG = (10.0, 35.0, 55.0, 80.0)
GOALS = tuple(
    START + 1.3 * np.array([np.cos(np.radians(a)), np.sin(np.radians(a))], dtype=np.float32)
    for a in GOAL_ANGLES_DEG
)
TASK_NAMES = tuple(f'reach-{int(a)}deg' for a in GOAL_ANGLES_DEG)


class PointReachTaskEnv(gymnasium.Env):
    """One task: reach ``goal`` from the bottom-left corner.

    ``success_radius`` and ``terminate_on_success`` default to this family's (0.1, success
    ends the episode); other layouts of the point world may change them."""

    metadata = {'render_modes': ['rgb_array']}

    def __init__(
        self,
        goal: Sequence[float] | np.ndarray,
        sparse: bool = False,
        render_mode: str | None = 'rgb_array',
        success_radius: float = SUCCESS_RADIUS,
        terminate_on_success: bool = True,
    ) -> None:
        self.goal = np.asarray(goal, dtype=np.float32)
        self.sparse = sparse
        self.success_radius = success_radius
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._position = START.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        noise = self.np_random.uniform(-START_NOISE, START_NOISE, size=2)
        self._position = (START + noise).astype(np.float32)
        return self._position.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        self._position = self._move(self._position, STEP_SIZE * action)
        distance = float(np.linalg.norm(self._position - self.goal))
        success = distance < self.success_radius
        reward = float(success) if self.sparse else float(np.exp(-distance) - 1.0)
        info = {'success': float(success), 'distance_to_goal': distance}
        return self._position.copy(), reward, success and self.terminate_on_success, False, info

    def _move(self, position: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        """Where ``displacement`` takes the point: the open square, clipped to its border
        (subclasses add obstacles)."""
        return np.clip(position + displacement, -1.0, 1.0).astype(np.float32)

    def render(self) -> np.ndarray:
        """A 64x64 RGB picture: goal in green, point in red."""
        image = np.full((RENDER_SIZE, RENDER_SIZE, 3), 255, dtype=np.uint8)
        self._paint_background(image)
        for xy, color, radius in ((self.goal, (0, 160, 0), 3), (self._position, (200, 0, 0), 2)):
            col, row = to_pixel(xy)
            image[
                max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1
            ] = color
        return image

    def _paint_background(self, image: np.ndarray) -> None:
        """Paints the fixed scenery under the goal and the point (none in the open square)."""


def to_pixel(xy: np.ndarray) -> tuple[int, int]:
    """(column, row) of the point ``xy`` of [-1, 1]^2 in a ``render()`` image (row 0 on top)."""
    col, row = ((np.asarray(xy) + 1.0) / 2.0 * (RENDER_SIZE - 1)).round().astype(int)
    return int(col), int(RENDER_SIZE - 1 - row)


def make_task_gymnasium_env(task_id: int, sparse: bool) -> PointReachTaskEnv:
    """Module-level factory, so that pickled environments stay small (see the adapter)."""
    return PointReachTaskEnv(GOALS[task_id], sparse=sparse)


class PointReachMT(GymnasiumTaskFamily):
    """The ``PointReachMT-v0`` family.

    Subclasses (other layouts of the same point world) override the class attributes.

    Args:
        include_task_id: keep the task one-hot in the network input.
        sparse_tasks: task ids whose reward is ``1[success]`` instead of the dense reward.
        seed: base seed of the start-position noise; test envs use ``seed + 100``.
    """

    ENV_ID = 'PointReachMT-v0'
    SPLIT_MODE = 'slice'
    TASK_NAMES: tuple[str, ...] = TASK_NAMES
    make_task_gymnasium_env = staticmethod(make_task_gymnasium_env)

    def __init__(
        self, include_task_id: bool = False, sparse_tasks: Sequence[int] = (), seed: int = 0
    ) -> None:
        n_tasks = len(self.TASK_NAMES)
        self._sparse_tasks = sparse_task_set(sparse_tasks, n_tasks, self.ENV_ID)
        all_sparse = len(self._sparse_tasks) == n_tasks
        super().__init__(
            self.TASK_NAMES, seed, include_task_id, min_reward=0.0 if all_sparse else -1.0
        )

    def task_factory(
        self, task_id: int, split: str, seed: int
    ) -> functools.partial[PointReachTaskEnv]:
        return functools.partial(
            self.make_task_gymnasium_env, task_id, task_id in self._sparse_tasks
        )
