"""``PointWallMT-v0``: a goal behind a wall, the first attempt at the QMP project page's
illustrative example (the default env is now ``PointSharedPathMT-v0``).

Measured (``docs/illustrative_example.md``): with separated networks QMP shows no effect here,
because task 0's critic never sees data of the way around the wall; with parameter sharing the
difference is within seed noise. The project page illustrates QMP with 2-D point reaching
from the bottom-left to a goal at the top-right, where plain SAC "converges to a suboptimal
policy that cannot reach the goal" and QMP's Q-switch fills that suboptimality with other
tasks' policies. This family builds that setting in the point world of
``environments/point_reach.py`` (same start, step size, dense reward ``exp(-d) - 1``, success
radius 0.1 that ends the episode), with one obstacle:

    +--------------------------+
    | G1                    G0 |      an L-shaped wall (two bars, 0.1 thick) around the
    |            _______       |      bottom-left of goal G0, its corner facing the start:
    |                   |      |        horizontal bar x in [-0.2, 0.3], y in [0.2, 0.3]
    |                   |      |        vertical bar   x in [0.2, 0.3],  y in [-0.5, 0.3]
    |                   |      |
    | S                        |
    | G3                    G2 |
    +--------------------------+

Tasks (all dense ``exp(-d) - 1``, horizon 50, start (-0.8, -0.8) +- 0.05):

0. ``reach-behind-wall`` (G0 = (0.7, 0.7)): the straight line to the goal runs into the
   inside corner of the wall, and a point that heads for the goal from below the horizontal
   bar slides along it into that corner. There the distance to the goal is about 0.71, and
   every way around first increases it: to about 1.0 past the horizontal bar's left end, to
   about 1.3 past the vertical bar's lower end. The corner is a local optimum of the dense
   reward; the way around over the top (up the left side, then right) reaches the goal in
   about 25 steps, the way along the bottom in about 30. This is the task separated SAC gets
   stuck on.
1. ``reach-top-left`` (G1 = (-0.7, 0.7)): straight up the left side, past the horizontal
   bar's left end: the first half of task 0's shorter detour (the most relevant behaviour).
2. ``reach-bottom-right`` (G2 = (0.7, -0.7)): straight right along the bottom, past the
   vertical bar's lower end: the first half of the longer detour.
3. ``retreat-to-corner`` (G3 = (-0.95, -0.95)): back into the bottom-left corner, the
   opposite of every other task's behaviour (a conflicting task, as the stay task of the
   paper's multistage reacher); task 0's critic should rarely select it.

Tasks 1 to 3 are easy straight-line reaches. The good behaviours of tasks 1 and 2 overlap with
task 0's optimal behaviour in part of the state space (the left column, the bottom row), which
is the paper's condition for behaviour sharing to help (its stated limitation: gains depend on
"the degree of shareable behaviors and the suboptimality gap"). Task 0's actor is trained by
gradient ascent on its critic, so it settles on the nearby maximum of Q_0(s, .) (head for the
goal, into the corner); the Q-switch (paper Eq. 3) compares whole proposals, so once Q_0 rates
"up the left side" higher, task 1's proposal wins where task 0's own policy is stuck.

The wall blocks motion: a step is taken in four sub-steps; a sub-step that would enter a bar
keeps only its component that does not (the point slides along the bar), or stays put.
"""

from __future__ import annotations

import numpy as np

from environments.point_reach import PointReachMT, PointReachTaskEnv, to_pixel

# Bars as (x_min, y_min, x_max, y_max).
WALLS = np.array([[-0.2, 0.2, 0.3, 0.3], [0.2, -0.5, 0.3, 0.3]], dtype=np.float32)
GOALS = (
    np.array([0.7, 0.7], np.float32),
    np.array([-0.7, 0.7], np.float32),
    np.array([0.7, -0.7], np.float32),
    np.array([-0.95, -0.95], np.float32),
)
TASK_NAMES = ('reach-behind-wall', 'reach-top-left', 'reach-bottom-right', 'retreat-to-corner')
STUCK_TASK = 0
CONFLICTING_TASK = 3
SUBSTEPS = 4


_WALL_BOUNDS = tuple(tuple(float(v) for v in bar) for bar in WALLS)
# Farther than this from every bar, no step (at most 0.1 * sqrt(2) long) can reach the wall.
_CLEARANCE = 0.15


def inside_wall(position: np.ndarray) -> bool:
    """Whether ``position`` lies in (or on the border of) a bar of the wall."""
    x, y = float(position[0]), float(position[1])
    return any(
        x_min <= x <= x_max and y_min <= y <= y_max for x_min, y_min, x_max, y_max in _WALL_BOUNDS
    )


def near_wall(position: np.ndarray) -> bool:
    """Whether ``position`` is within ``_CLEARANCE`` of a bar (a step might reach it)."""
    x, y = float(position[0]), float(position[1])
    return any(
        x_min - _CLEARANCE <= x <= x_max + _CLEARANCE
        and y_min - _CLEARANCE <= y <= y_max + _CLEARANCE
        for x_min, y_min, x_max, y_max in _WALL_BOUNDS
    )


class PointWallTaskEnv(PointReachTaskEnv):
    """One task of ``PointWallMT-v0``: the point world of ``PointReachTaskEnv`` plus the wall."""

    def _move(self, position: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        if not near_wall(position):
            return super()._move(position, displacement)
        substep = (displacement / SUBSTEPS).astype(np.float32)
        along_x = np.array([substep[0], 0.0], np.float32)
        along_y = np.array([0.0, substep[1]], np.float32)
        for _ in range(SUBSTEPS):
            for candidate in (substep, along_x, along_y):
                moved = np.clip(position + candidate, -1.0, 1.0).astype(np.float32)
                if not inside_wall(moved):
                    position = moved
                    break
        return position

    def _paint_background(self, image: np.ndarray) -> None:
        for x_min, y_min, x_max, y_max in WALLS:
            col_min, row_max = to_pixel(np.array([x_min, y_min]))
            col_max, row_min = to_pixel(np.array([x_max, y_max]))
            image[row_min : row_max + 1, col_min : col_max + 1] = (90, 90, 90)


def make_task_gymnasium_env(task_id: int, sparse: bool) -> PointWallTaskEnv:
    """Module-level factory, so that pickled environments stay small (see the adapter)."""
    return PointWallTaskEnv(GOALS[task_id], sparse=sparse)


class PointWallMT(PointReachMT):
    """The ``PointWallMT-v0`` family (module docstring); arguments as ``PointReachMT``."""

    ENV_ID = 'PointWallMT-v0'
    TASK_NAMES = TASK_NAMES
    make_task_gymnasium_env = staticmethod(make_task_gymnasium_env)
