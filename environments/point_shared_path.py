"""``PointSharedPathMT-v0``: a sparse goal on the shared first leg of two dense tasks' paths,
the illustrative example and the default environment.

The QMP project page illustrates the method with 2-D point reaching where plain SAC "converges to
a suboptimal policy that cannot reach the goal" while the Q-switch "often selects other
policies, filling the suboptimality", most often the one whose behaviour is most relevant. This
family builds that setting in the point world of ``environments/point_reach.py`` (start
(-0.8, -0.8) +- 0.05, step 0.1 * action, horizon 50), with the stuck task made so by a sparse
reward, one of the two settings the paper names for a suboptimality gap, as the sparse task 3
of its Multistage Reacher:

    +--------------------------+
    | G3                       |   G0 (0.45, -0.45), radius 0.2, sparse: the stuck task
    |                          |   G1 (0.9, -0.3), G2 (0.9, -0.6): dense; from the start both
    |                          |       go diagonally up-right, then right, through G0
    |                          |   G3 (-0.8, 0.8): dense, straight up the left side (the
    |                          |       conflicting task)
    |                G0    G1  |
    |                      G2  |
    | S                        |
    +--------------------------+

0. ``reach-sparse-goal``: reward 1 at every step within 0.2 of G0, else 0; 1.3 from the start,
   out of reach of an untrained SAC policy's near-uniform actions (under 1 % of 50-step
   episodes, ``tests/test_point_shared_path_env.py``) and off every path that a constant action
   would take (an untrained policy without reward drifts along one): of 72 directions 5 degrees
   apart, only those within about 10 degrees of G0's bearing get there, none of the box's
   corners or axes.
1. ``reach-right-high`` and 2. ``reach-right-low``: dense ``exp(-d) - 1`` reaches of goals
   beyond G0. The fastest way to reduce the distance with actions in the box [-1, 1]^2 is the
   box corner (1, 1) until the goal is level, then straight right, so both paths run along
   G0's row and cross its region: their behaviour is task 0's whole way (the shareable
   behaviour of the paper), and they are learned in a few epochs.
3. ``reach-top-left``: dense reach straight up from the start, a behaviour task 0 never needs
   (the conflicting task; as Jaco's stay task, its policy should rarely be selected). Unlike
   ``PointSparseGoalMT-v0``'s retreat into the start corner, its goal is not the start.

Success (within the goal's radius: 0.2 for task 0, 0.1 for the others) does not end an
episode; the preset multiplies rewards by 10 (``--reward_scale``) so that the dense tasks are
competent within the first epochs. Both as in ``PointSparseGoalMT-v0``, whose module docstring
says why.

Why this layout, from the mechanism measured on the earlier layouts (``docs/
illustrative_example.md``): the Q-switch (paper Eq. 3) runs π_j where Q_0 rates π_j's proposal
above π_0's, and π_0 is trained to climb Q_0, so once π_0 has converged on its uninformed
critic's maximum its own proposal wins everywhere. Sharing can only start in the window before
that, while the argmax is still spread over the proposals: the mixture must reach G0 within the
first epochs, so G0 lies on the dense tasks' common path, at a distance that their directed
full-speed steps cover in a dozen steps and random steps do not, and the conflicting proposal
is not the one that keeps the point at the start.
"""

from __future__ import annotations

import numpy as np

from environments.point_reach import PointReachMT, PointReachTaskEnv
from environments.point_sparse_goal import sparse_goal_task_env

GOALS = (
    np.array([0.45, -0.45], np.float32),
    np.array([0.9, -0.3], np.float32),
    np.array([0.9, -0.6], np.float32),
    np.array([-0.8, 0.8], np.float32),
)
GOAL_RADII = (0.2, 0.1, 0.1, 0.1)
TASK_NAMES = ('reach-sparse-goal', 'reach-right-high', 'reach-right-low', 'reach-top-left')
STUCK_TASK = 0
CONFLICTING_TASK = 3
WALLS = np.zeros((0, 4), np.float32)  # no obstacles (the layout other point worlds draw)


def make_task_gymnasium_env(task_id: int, sparse: bool) -> PointReachTaskEnv:
    """Module-level factory, so that pickled environments stay small (see the adapter)."""
    return sparse_goal_task_env(GOALS, GOAL_RADII, STUCK_TASK, task_id, sparse)


class PointSharedPathMT(PointReachMT):
    """The ``PointSharedPathMT-v0`` family (module docstring); arguments as ``PointReachMT``
    (``sparse_tasks`` adds sparse tasks to task 0)."""

    ENV_ID = 'PointSharedPathMT-v0'
    TASK_NAMES = TASK_NAMES
    make_task_gymnasium_env = staticmethod(make_task_gymnasium_env)
