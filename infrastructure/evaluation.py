"""Deterministic evaluation on the separately constructed test environments.

Each evaluation runs ``episodes_per_task`` episodes on every task's test env with the policy's
``mean`` action (tanh(μ) of the acting policy), stepped by the collection's lockstep loop
(``infrastructure.vectorized_sampler.run_lockstep_episodes``). Two paths compute the same
statistics:

* ``evaluate``: the N test envs stepped in lockstep, the episodes of a task one after another;
* ``LockstepEvaluator``: ``episodes_per_task`` envs per task (the test env and seeded copies of
  it), so that all episodes of all tasks run in lockstep with one policy call per step
  (``docs/deviations.md`` says how the copies' reset seeds differ from the sequential path's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from garage import Environment
from garage.np.policies import Policy

from infrastructure.metrics import info_episode_stats, per_episode_stats
from infrastructure.vectorized_sampler import LockstepEpisode, run_lockstep_episodes, seeded_copy

# Evaluation copies of task j's test env: copy e resets with the test seed + e times this.
EVALUATION_COPY_SEED_STRIDE = 10_000
# Default cap on the episodes stepped together (each needs its own env; a Meta-World env holds
# about 20 MB and takes seconds to build), used when the number of envs per task is not given.
MAX_LOCKSTEP_EPISODES = 32


def _statistics(episodes: Sequence[LockstepEpisode], discount: float) -> dict[str, np.ndarray]:
    """``per_episode_stats`` plus ``info_episode_stats`` for the env infos every episode
    reports (``stages_completed``: Jaco; ``x_velocity``: Walker)."""
    rewards = [
        np.asarray([step.reward for step in episode.env_steps], dtype=np.float64)
        for episode in episodes
    ]
    successes = [
        np.asarray(
            [step.env_info.get('success', 0.0) for step in episode.env_steps], dtype=np.float64
        )
        for episode in episodes
    ]
    step_types = [
        np.asarray([step.step_type for step in episode.env_steps]) for episode in episodes
    ]
    stats = per_episode_stats(rewards, successes, step_types, discount)
    infos = {
        key: [
            np.asarray([step.env_info[key] for step in episode.env_steps]) for episode in episodes
        ]
        for key in ('stages_completed', 'x_velocity')
        if episodes
        and all(episode.env_steps and key in episode.env_steps[0].env_info for episode in episodes)
    }
    stats.update(info_episode_stats(infos))
    return stats


def _run_deterministic(
    policy: Policy, envs: Sequence[Environment], max_episode_length: int
) -> list[LockstepEpisode]:
    """One deterministic episode (the ``mean`` action) on each env, all in lockstep."""
    return run_lockstep_episodes(policy, envs, max_episode_length, action_key='mean')


def evaluate(
    policy: Policy,
    envs: list[Environment],
    episodes_per_task: int,
    max_episode_length: int,
    discount: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs deterministic episodes; returns per-episode stats and each episode's task id.

    The N test envs are stepped in lockstep, one episode each at a time. The stats include
    ``stages_completed`` (the last step's value) and ``velocity`` (the mean ``x_velocity``)
    when the env reports them.
    """
    episodes = [
        episode
        for _ in range(episodes_per_task)
        for episode in _run_deterministic(policy, envs, max_episode_length)
    ]
    task_ids = np.tile(np.arange(len(envs)), episodes_per_task)
    return _statistics(episodes, discount), task_ids.astype(np.int64)


class LockstepEvaluator:
    """``evaluate`` with all episodes of all tasks in lockstep, one policy call per step.

    Episode e of task j runs on copy ``e % envs_per_task`` of task j's test env; copy 0 is the
    test env itself and copy c > 0 a copy rebuilt from it with its reset seed shifted by
    ``c * EVALUATION_COPY_SEED_STRIDE``, so every copy has its own reproducible stream of
    starts. With ``envs_per_task = 1`` this is exactly ``evaluate``. The statistics come in
    ``evaluate``'s order (episode by episode, tasks in order within each).

    Args:
        test_envs: one test env per task, not reset yet (so that the copies start seeded).
        episodes_per_task: deterministic episodes per task and evaluation.
        envs_per_task: envs per task stepped together (default: ``episodes_per_task``, capped
            so that at most ``MAX_LOCKSTEP_EPISODES`` episodes run at once).
    """

    def __init__(
        self,
        test_envs: Sequence[Environment],
        episodes_per_task: int,
        envs_per_task: int | None = None,
    ) -> None:
        if envs_per_task is None:
            envs_per_task = max(
                1, min(episodes_per_task, MAX_LOCKSTEP_EPISODES // max(len(test_envs), 1))
            )
        if episodes_per_task < 1 or envs_per_task < 1:
            raise ValueError('episodes_per_task and envs_per_task must be at least 1')
        self.episodes_per_task = episodes_per_task
        self.envs_per_task = min(envs_per_task, episodes_per_task)
        self.n_tasks = len(test_envs)
        self.copies = [list(test_envs)] + [
            [seeded_copy(env, index * EVALUATION_COPY_SEED_STRIDE) for env in test_envs]
            for index in range(1, self.envs_per_task)
        ]

    def evaluate(
        self, policy: Policy, max_episode_length: int, discount: float
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``evaluate``'s return contract: per-episode stats and each episode's task id."""
        episodes: list[LockstepEpisode] = []
        for first in range(0, self.episodes_per_task, self.envs_per_task):
            n_copies = min(self.envs_per_task, self.episodes_per_task - first)
            envs = [env for copies in self.copies[:n_copies] for env in copies]
            episodes.extend(_run_deterministic(policy, envs, max_episode_length))
        task_ids = np.tile(np.arange(self.n_tasks), self.episodes_per_task)
        return _statistics(episodes, discount), task_ids.astype(np.int64)

    def close(self) -> None:
        """Closes the copies (the test envs themselves belong to their family)."""
        for copies in self.copies[1:]:
            for env in copies:
                env.close()
