"""The single source of facts about each environment id: task count, horizon, builder.

The registry imports nothing heavy: builders are named by import path and loaded on use, so
``--dry_run``, the CLI's validation and the tests of the config never import a simulator.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry must stay importable without torch and garage
    from environments.multitask import MultiTaskEnv


@dataclass(frozen=True)
class EnvInfo:
    """Facts about one environment id.

    Attributes:
        env_id: the CLI id.
        n_tasks: number of tasks (= policies, critics and buffers).
        max_episode_length: horizon in env steps.
        builder: ``module:Class`` of the ``MultiTaskEnv`` subclass.
        env_kwargs: the CLI flags this env accepts as constructor keyword arguments
            (``task_name`` selects a subset of the tasks, so ``n_tasks`` is then its size;
            ``norm_obs`` is applied by ``make_env`` to any family).
        summary: one line for ``--help`` and the README.
        has_reward_fns: the family offers ``reward_fns()`` (supervised data sharing).
    """

    env_id: str
    n_tasks: int
    max_episode_length: int
    builder: str
    env_kwargs: tuple[str, ...]
    summary: str
    has_reward_fns: bool = False


ENVS: dict[str, EnvInfo] = {
    info.env_id: info
    for info in (
        EnvInfo(
            'PointSharedPathMT-v0',
            4,
            50,
            'environments.point_shared_path:PointSharedPathMT',
            ('include_task_id', 'sparse_tasks'),
            "pure-numpy 2-D point reaching after the QMP project page's illustrative "
            'example: a sparse goal on the shared path of two dense tasks, one conflicting task',
        ),
        EnvInfo(
            'PointSparseGoalMT-v0',
            4,
            50,
            'environments.point_sparse_goal:PointSparseGoalMT',
            ('include_task_id', 'sparse_tasks'),
            "pure-numpy 2-D point reaching after the QMP project page's illustrative "
            "example: a sparse goal on two dense tasks' paths, one conflicting task",
        ),
        EnvInfo(
            'PointWallMT-v0',
            4,
            50,
            'environments.point_wall:PointWallMT',
            ('include_task_id', 'sparse_tasks'),
            'pure-numpy 2-D point reaching with a wall: one goal behind an L-shaped '
            'wall, two open goals, one conflicting task',
        ),
        EnvInfo(
            'PointReachMT-v0',
            4,
            50,
            'environments.point_reach:PointReachMT',
            ('include_task_id', 'sparse_tasks'),
            'pure-numpy 2-D point reaching, 4 goals fanning out from one corner',
        ),
        EnvInfo(
            'JacoReachMT5-v1',
            5,
            200,
            'environments.jaco:JacoReachMT5',
            ('include_task_id', 'norm_obs'),
            'Kinova Jaco multistage reacher: 4 three-subgoal reaching tasks (one sparse) '
            'and a conflicting stay task',
            has_reward_fns=True,
        ),
        EnvInfo(
            'MazeLarge-10-v0',
            10,
            600,
            'environments.maze:MazeLarge10',
            ('include_task_id', 'task_name', 'sparse_tasks'),
            "D4RL's large point maze (Gymnasium-Robotics): 10 start->goal tasks, goal not observed",
        ),
        EnvInfo(
            'Walker2dMT4-v0',
            4,
            1000,
            'environments.walker:Walker2dMT4',
            ('include_task_id', 'norm_obs'),
            'MuJoCo Walker2d: forward, backward, balance, and crawl under a ceiling',
        ),
        EnvInfo(
            'KitchenMTEasy-v0',
            10,
            140,
            'environments.kitchen:KitchenMTEasy',
            ('include_task_id', 'task_name', 'sparse_tasks'),
            'Franka kitchen (FrankaKitchen-v1 model): open/close or on/off of 5 objects, 10 tasks',
        ),
        EnvInfo(
            'MetaWorldCDS-v1',
            4,
            500,
            'environments.metaworld_cds:MetaWorldCDS',
            ('include_task_id',),
            'Meta-World 3 door-open/-close and drawer-open/-close in one scene holding both '
            'objects, 50 goal variations each',
        ),
        EnvInfo(
            'MetaWorldMT10-v2',
            10,
            500,
            'environments.metaworld_mt:MetaWorldMT10',
            ('include_task_id',),
            'Meta-World 3 MT10: 10 manipulation tasks, 50 goal variations each',
        ),
        EnvInfo(
            'MetaWorldMT50-v2',
            50,
            500,
            'environments.metaworld_mt:MetaWorldMT50',
            ('include_task_id',),
            'Meta-World 3 MT50: 50 manipulation tasks, 50 goal variations each',
        ),
    )
}

DEFAULT_ENV = 'PointSharedPathMT-v0'


def select_tasks(task_name: str | None, n_tasks: int) -> tuple[int, ...]:
    """Task indices that the release's ``--task_name "i,j,..."`` selects (all if None).

    Raises:
        ValueError: unless ``task_name`` lists distinct indices in 0..n_tasks-1.
    """
    if task_name is None:
        return tuple(range(n_tasks))
    if not isinstance(task_name, str):
        raise ValueError(f'task_name must be a string like "2,5", got {task_name!r}')
    parts = [part.strip() for part in task_name.split(',')]
    if not all(part.isdigit() for part in parts):
        raise ValueError(
            f'task_name must be comma-separated task indices like "2,5", got {task_name!r}'
        )
    indices = tuple(int(part) for part in parts)
    if len(set(indices)) != len(indices) or max(indices) >= n_tasks:
        raise ValueError(f'task_name {task_name!r} must list distinct tasks in 0..{n_tasks - 1}')
    return indices


def selected_task_count(env_id: str, task_name: str | None) -> int:
    """Tasks in a run of ``env_id``: all, or those that ``--task_name`` selects."""
    return len(select_tasks(task_name, ENVS[env_id].n_tasks))


def make_env(env_id: str, seed: int = 0, **env_kwargs: Any) -> MultiTaskEnv:
    """Builds the multi-task environment family registered under ``env_id``."""
    info = ENVS[env_id]
    unknown = set(env_kwargs) - set(info.env_kwargs)
    if unknown:
        raise ValueError(
            f'{env_id} does not take {sorted(unknown)}; it takes {sorted(info.env_kwargs)}'
        )
    module_name, class_name = info.builder.split(':')
    builder = getattr(importlib.import_module(module_name), class_name)
    # ``norm_obs`` wraps the family's per-task envs (MultiTaskEnv.normalize_observations);
    # the family's own constructor never sees it.
    norm_obs = bool(env_kwargs.pop('norm_obs', False))
    env = builder(seed=seed, **env_kwargs)
    if norm_obs:
        env.normalize_observations()
    if env_kwargs.get('task_name') is None and env.n_tasks != info.n_tasks:
        raise AssertionError(f'{env_id} built {env.n_tasks} tasks, registry says {info.n_tasks}')
    return env
