"""Deterministic evaluation on the separately constructed test environments (spec §3.10).

Each evaluation runs ``episodes_per_task`` episodes on every task's test env with the policy's
``mean`` action (tanh(μ) of the acting policy). Two paths compute the same statistics:

* ``evaluate``: the N test envs stepped in lockstep, the episodes of a task one after another;
* ``LockstepEvaluator``: ``episodes_per_task`` envs per task (the test env and seeded copies of
  it), so that all episodes of all tasks run in lockstep with one policy call per step
  (``docs/deviations.md`` says how the copies' reset seeds differ from the sequential path's).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from garage import Environment, StepType
from garage.np.policies import Policy

from learning.metrics import info_episode_stats, per_episode_stats
from learning.vectorized_sampler import seeded_copy

# Evaluation copies of task j's test env: copy e resets with the test seed + e times this.
EVALUATION_COPY_SEED_STRIDE = 10_000
# Default cap on the episodes stepped together (each needs its own env; a Meta-World env holds
# about 20 MB and takes seconds to build), used when the number of envs per task is not given.
MAX_LOCKSTEP_EPISODES = 32

Episodes = dict[str, list]


def _run_episodes(policy: Policy, envs: Sequence[Environment], max_episode_length: int,
                  episodes: Episodes) -> None:
    """One deterministic episode on each of ``envs``, all stepped together; appends each
    episode's per-step records to ``episodes`` in the order of ``envs``."""
    policy.reset()
    observations = np.stack([env.reset()[0] for env in envs])
    running = np.ones(len(envs), dtype=bool)
    episode_rewards: list[list[float]] = [[] for _ in envs]
    episode_success: list[list[float]] = [[] for _ in envs]
    episode_types: list[list[StepType]] = [[] for _ in envs]
    last_stage = [np.nan for _ in envs]
    episode_velocities: list[list[float]] = [[] for _ in envs]
    for _ in range(max_episode_length):
        _, infos = policy.get_actions(observations)
        for index in np.flatnonzero(running).tolist():
            step = envs[index].step(infos['mean'][index])
            episode_rewards[index].append(step.reward)
            episode_success[index].append(step.env_info.get('success', 0.0))
            episode_types[index].append(step.step_type)
            last_stage[index] = step.env_info.get('stages_completed', np.nan)
            if 'x_velocity' in step.env_info:  # Walker
                episode_velocities[index].append(step.env_info['x_velocity'])
            observations[index] = step.observation
            if step.step_type in (StepType.TERMINAL, StepType.TIMEOUT):
                running[index] = False
        if not running.any():
            break
    for index in range(len(envs)):
        episodes['rewards'].append(np.asarray(episode_rewards[index], dtype=np.float64))
        episodes['successes'].append(np.asarray(episode_success[index], dtype=np.float64))
        episodes['step_types'].append(np.asarray(episode_types[index]))
        episodes['stages'].append(last_stage[index])
        episodes['velocities'].append(episode_velocities[index])


def _statistics(episodes: Episodes, discount: float) -> dict[str, np.ndarray]:
    stats = per_episode_stats(episodes['rewards'], episodes['successes'],
                              episodes['step_types'], discount)
    stages, velocities = episodes['stages'], episodes['velocities']
    if not np.all(np.isnan(stages)):  # multistage envs report ``stages_completed`` (Jaco)
        stats['stages_completed'] = np.asarray(stages, dtype=np.float64)
    if velocities and all(velocities):  # Walker reports ``x_velocity`` at every step
        stats.update(info_episode_stats({'x_velocity': velocities}))
    return stats


def _empty_episodes() -> Episodes:
    return {key: [] for key in ('rewards', 'successes', 'step_types', 'stages', 'velocities')}


def evaluate(policy: Policy, envs: list[Environment], episodes_per_task: int,
             max_episode_length: int, discount: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs deterministic episodes; returns per-episode stats and each episode's task id.

    The N test envs are stepped in lockstep, one episode each at a time. The stats include
    ``stages_completed`` (the last step's value) and ``velocity`` (the mean ``x_velocity``)
    when the env reports them.
    """
    episodes = _empty_episodes()
    for _ in range(episodes_per_task):
        _run_episodes(policy, envs, max_episode_length, episodes)
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

    def __init__(self, test_envs: Sequence[Environment], episodes_per_task: int,
                 envs_per_task: int | None = None) -> None:
        if envs_per_task is None:
            envs_per_task = max(1, min(episodes_per_task,
                                       MAX_LOCKSTEP_EPISODES // max(len(test_envs), 1)))
        if episodes_per_task < 1 or envs_per_task < 1:
            raise ValueError('episodes_per_task and envs_per_task must be at least 1')
        self.episodes_per_task = episodes_per_task
        self.envs_per_task = min(envs_per_task, episodes_per_task)
        self.n_tasks = len(test_envs)
        self.copies = [list(test_envs)] + [
            [seeded_copy(env, index * EVALUATION_COPY_SEED_STRIDE) for env in test_envs]
            for index in range(1, self.envs_per_task)]

    def evaluate(self, policy: Policy, max_episode_length: int,
                 discount: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``evaluate``'s return contract: per-episode stats and each episode's task id."""
        episodes = _empty_episodes()
        for first in range(0, self.episodes_per_task, self.envs_per_task):
            n_copies = min(self.envs_per_task, self.episodes_per_task - first)
            envs = [env for copies in self.copies[:n_copies] for env in copies]
            _run_episodes(policy, envs, max_episode_length, episodes)
        task_ids = np.tile(np.arange(self.n_tasks), self.episodes_per_task)
        return _statistics(episodes, discount), task_ids.astype(np.int64)

    def close(self) -> None:
        """Closes the copies (the test envs themselves belong to their family)."""
        for copies in self.copies[1:]:
            for env in copies:
                env.close()
