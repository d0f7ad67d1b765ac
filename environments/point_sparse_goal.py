"""``PointSparseGoalMT-v0``: a sparse goal on the paths of other tasks (the second attempt at the
illustrative example; its successor ``PointSharedPathMT-v0`` is the default env).

The QMP project page illustrates the method with 2-D point reaching from the bottom-left
towards the top-right, where plain SAC "converges to a suboptimal policy that cannot reach the
goal" while the Q-switch "often selects other policies, filling the suboptimality", most often
the one whose behaviour is most relevant. This family builds that setting in the point world of
``environments/point_reach.py`` (same start (-0.8, -0.8) +- 0.05, step 0.1 * action, horizon
50), with the stuck task made so by a sparse reward, one of the two settings the paper names for
a suboptimality gap:

    +--------------------------+
    |                 G2       |   G0 (0.35, 0.35), radius 0.2, sparse: the stuck task
    |                          |   G1 (0.9, 0.6), G2 (0.6, 0.9): dense, their paths
    |                       G1 |       from the start cross G0's region
    |          (G0)            |   G3 (-0.95, -0.95): dense, retreat into the start corner
    |                          |
    | S                        |
    |G3                        |
    +--------------------------+

0. ``reach-sparse-goal``: reward 1 at every step within 0.2 of G0, else 0. About 1.6 away from
   the start, the region is out of reach of the near-uniform actions of an untrained SAC
   policy (``tests/test_point_sparse_goal_env.py`` measures well under 1 % of 50-step episodes),
   so separated SAC sees no reward within the preset budget and its policy stays where its
   critic's noise puts it.
1. ``reach-far-right`` and 2. ``reach-far-top``: dense ``exp(-d) - 1`` reaches of goals beyond
   G0, learned in a few epochs; their paths from the start pass through G0's region, so their
   behaviour is task 0's first part (the shareable behaviour of the paper). Full-speed actions
   in the box [-1, 1]^2 make those paths diagonal first (the corner (1, 1) of the action box
   gains distance fastest), then straight at the goal: G0 sits on that 45-degree diagonal.
3. ``retreat-to-corner``: dense reach of the start corner, the opposite of the others (the
   conflicting task, as the stay task of the paper's multistage reacher).

Success (within the goal's radius: 0.2 for task 0, 0.1 for the others) does not end an
episode here: with SAC's entropy bonus a terminal goal would be worth less than wandering until
the temperature has dropped, which slows every task for reasons that have nothing to do with
sharing. The env's preset multiplies rewards by 10 (``--reward_scale``) so that the dense tasks
are competent within the first epochs, while task 0 still knows nothing.

What QMP can do here: while task 0's critic is uninformed, the Q-switch (paper Eq. 3) picks
among the proposals by that critic's noise; when it picks task 1's or 2's policy for a stretch
of an episode, the point crosses G0's region, task 0's critic sees reward and from then on rates
those policies' proposals highest, and task 0's own policy learns from that data. What limits it
(measured, see ``docs/illustrative_example.md``): task 0's own policy climbs its own critic, so
the uninformed critic often ends up preferring the own proposal (or the retreat's), and then
nothing reaches G0 either. And a flaw the measurements showed: G0 lies on the diagonal from the
start to the top-right corner, and an untrained policy with no reward drifts into a corner of
the square; when task 0's own policy happens to pick that corner it crosses G0 without any
sharing (``docs/illustrative_example.md`` reports the run where this happened). The next layout
should move G0 off that diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from environments.point_reach import PointReachMT, PointReachTaskEnv

GOALS = (
    np.array([0.35, 0.35], np.float32),
    np.array([0.9, 0.6], np.float32),
    np.array([0.6, 0.9], np.float32),
    np.array([-0.95, -0.95], np.float32),
)
GOAL_RADII = (0.2, 0.1, 0.1, 0.1)
TASK_NAMES = ('reach-sparse-goal', 'reach-far-right', 'reach-far-top', 'retreat-to-corner')
STUCK_TASK = 0
CONFLICTING_TASK = 3
WALLS = np.zeros((0, 4), np.float32)  # no obstacles (the layout other point worlds draw)


def sparse_goal_task_env(
    goals: Sequence[np.ndarray],
    radii: Sequence[float],
    stuck_task: int,
    task_id: int,
    sparse: bool,
) -> PointReachTaskEnv:
    """Task ``task_id`` of a sparse-goal layout: ``stuck_task`` is sparse by design, ``sparse``
    (``--sparse_tasks``) makes another task sparse too; success within the task's radius does
    not end the episode."""
    return PointReachTaskEnv(
        goals[task_id],
        sparse=sparse or task_id == stuck_task,
        success_radius=radii[task_id],
        terminate_on_success=False,
    )


def make_task_gymnasium_env(task_id: int, sparse: bool) -> PointReachTaskEnv:
    """Module-level factory, so that pickled environments stay small (see the adapter)."""
    return sparse_goal_task_env(GOALS, GOAL_RADII, STUCK_TASK, task_id, sparse)


class PointSparseGoalMT(PointReachMT):
    """The ``PointSparseGoalMT-v0`` family (module docstring); arguments as ``PointReachMT``
    (``sparse_tasks`` adds sparse tasks to task 0)."""

    ENV_ID = 'PointSparseGoalMT-v0'
    TASK_NAMES = TASK_NAMES
    make_task_gymnasium_env = staticmethod(make_task_gymnasium_env)
