"""Episode statistics and Q-switch selection frequencies, as pure functions of episodes.

Metric names are documented in the README ("Logged metrics"); these functions compute the
values, ``infrastructure/logging_utils.py`` records them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from garage import EpisodeBatch, StepType


def episode_task_ids(episodes: EpisodeBatch) -> np.ndarray:
    """(n_episodes,) task of each episode (its first step's ``task_id`` env info)."""
    starts = np.concatenate([[0], np.cumsum(episodes.lengths)[:-1]])
    return np.asarray(episodes.env_infos['task_id'])[starts].astype(np.int64)


def selection_frequencies(
    task_ids: np.ndarray, selected_policies: np.ndarray, n_tasks: int
) -> np.ndarray:
    """(N, N) matrix F with F[i, j] = share of task i's steps in which π_j acted.

    Rows of tasks without steps are NaN. This backs the paper's mixture-probability analysis
    (the release's ``MixtureProbs`` = F[i, i] and ``Policy{j}Prob`` = F[i, j]).
    """
    counts = np.zeros((n_tasks, n_tasks), dtype=np.float64)
    np.add.at(
        counts, (np.asarray(task_ids, np.int64), np.asarray(selected_policies, np.int64)), 1.0
    )
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(totals > 0, counts / totals, np.nan)


def per_episode_stats(
    rewards: Sequence[np.ndarray],
    successes: Sequence[np.ndarray],
    step_types: Sequence[np.ndarray],
    discount: float,
) -> dict[str, np.ndarray]:
    """Arrays over episodes: return, discounted return, length, any-step success, terminated."""
    returns = np.array([r.sum() for r in rewards], dtype=np.float64)
    discounted = np.array([np.sum(r * discount ** np.arange(len(r))) for r in rewards])
    return {
        'return': returns,
        'discounted_return': discounted,
        'length': np.array([len(r) for r in rewards], dtype=np.float64),
        'success': np.array([float(np.any(s > 0)) for s in successes]),
        'terminated': np.array([float(np.any(t == StepType.TERMINAL)) for t in step_types]),
    }


def info_episode_stats(infos: Mapping[str, Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays over episodes from per-step env infos, for the infos given (each a list over
    episodes of that episode's per-step values), as the release's ``log_performance``:

    * ``stages_completed``: the last step's value (multistage envs: Jaco);
    * ``velocity``: the mean ``x_velocity`` over the episode's steps (Walker; what each task
      reports under that key is its own, see ``environments/walker.py``).
    """
    stats = {}
    if 'stages_completed' in infos:
        stats['stages_completed'] = np.array(
            [float(np.asarray(values)[-1]) for values in infos['stages_completed']]
        )
    if 'x_velocity' in infos:
        stats['velocity'] = np.array([float(np.mean(values)) for values in infos['x_velocity']])
    return stats


# What ``summarize`` reports for every env (the env-specific keys come after these).
EVALUATION_KEYS = (
    'NumEpisodes',
    'AverageReturn',
    'StdReturn',
    'MaxReturn',
    'MinReturn',
    'AverageDiscountedReturn',
    'AverageEpisodeLength',
    'TerminationRate',
    'SuccessRate',
)


def summarize(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """The pooled numbers logged under ``Evaluation/`` (the release's ``log_performance``);
    ``StagesCompleted`` and ``Velocity`` only for envs that report them."""
    returns = stats['return']
    if len(returns) == 0:
        return {key: (0.0 if key == 'NumEpisodes' else np.nan) for key in EVALUATION_KEYS}
    summary = {
        'NumEpisodes': float(len(returns)),
        'AverageReturn': float(returns.mean()),
        'StdReturn': float(returns.std()),
        'MaxReturn': float(returns.max()),
        'MinReturn': float(returns.min()),
        'AverageDiscountedReturn': float(stats['discounted_return'].mean()),
        'AverageEpisodeLength': float(stats['length'].mean()),
        'TerminationRate': float(stats['terminated'].mean()),
        'SuccessRate': float(stats['success'].mean()),
    }
    if 'stages_completed' in stats:
        summary['StagesCompleted'] = float(stats['stages_completed'].mean())
    if 'velocity' in stats:
        summary['Velocity'] = float(stats['velocity'].mean())
    return summary


def split_by_task(
    stats: dict[str, np.ndarray], task_ids: np.ndarray, n_tasks: int
) -> list[dict[str, np.ndarray]]:
    """The per-episode arrays of each task, in task order."""
    return [
        {key: value[task_ids == task] for key, value in stats.items()} for task in range(n_tasks)
    ]


def batch_episode_stats(episodes: EpisodeBatch, discount: float) -> dict[str, np.ndarray]:
    """``per_episode_stats`` and ``info_episode_stats`` of a garage ``EpisodeBatch``."""
    bounds = np.cumsum(episodes.lengths)[:-1]
    success = np.asarray(episodes.env_infos.get('success', np.zeros(len(episodes.rewards))))
    stats = per_episode_stats(
        np.split(episodes.rewards, bounds),
        np.split(success, bounds),
        np.split(episodes.step_types, bounds),
        discount,
    )
    infos = {
        key: np.split(np.asarray(episodes.env_infos[key]), bounds)
        for key in ('stages_completed', 'x_velocity')
        if key in episodes.env_infos
    }
    stats.update(info_episode_stats(infos))
    return stats
