"""Deterministic evaluation on the separately constructed test environments.

Each evaluation runs ``episodes_per_task`` episodes on every task's test env with the policy's
``mean`` action (tanh(μ) of the acting policy), stepped by the collection's lockstep loop
(``infrastructure.vectorized_sampler.run_lockstep_episodes``). Two paths compute the same
statistics:

* ``evaluate``: the N test envs stepped in lockstep, the episodes of a task one after another;
* ``LockstepEvaluator``: ``episodes_per_task`` envs per task (the test env and seeded copies of
  it), so that all episodes of all tasks run in lockstep with one policy call per step
  (``docs/deviations.md`` says how the copies' reset seeds differ from the sequential path's);
  with ``n_workers`` > 1 (``--n_workers``) those envs are split over worker processes, each
  stepping its share in lockstep with a copy of the policy, and the statistics are the same.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from garage import Environment
from garage.experiment import deterministic
from garage.np.policies import Policy

from infrastructure.metrics import info_episode_stats, per_episode_stats
from infrastructure.vectorized_sampler import LockstepEpisode, run_lockstep_episodes, seeded_copy
from infrastructure.worker_processes import WorkerPool

# Evaluation copies of task j's test env: copy e resets with the test seed + e times this.
EVALUATION_COPY_SEED_STRIDE = 10_000
# Default cap on the episodes stepped together (each needs its own env; a Meta-World env holds
# about 20 MB and takes seconds to build), used when the number of envs per task is not given.
MAX_LOCKSTEP_EPISODES = 32


# The env infos summarised per episode when every episode reports them (Jaco, Walker).
INFO_KEYS = ('stages_completed', 'x_velocity')


@dataclass
class EpisodeRecord:
    """What the statistics need of one episode: per-step rewards, successes, step types and
    the ``INFO_KEYS`` infos it reports (small enough to come back from a worker process)."""

    rewards: np.ndarray
    successes: np.ndarray
    step_types: np.ndarray
    infos: dict[str, np.ndarray]


def _record(episode: LockstepEpisode) -> EpisodeRecord:
    steps = episode.env_steps
    return EpisodeRecord(
        rewards=np.asarray([step.reward for step in steps], dtype=np.float64),
        successes=np.asarray([step.env_info.get('success', 0.0) for step in steps], np.float64),
        step_types=np.asarray([step.step_type for step in steps]),
        infos={
            key: np.asarray([step.env_info[key] for step in steps])
            for key in INFO_KEYS
            if steps and key in steps[0].env_info
        },
    )


def _statistics(records: Sequence[EpisodeRecord], discount: float) -> dict[str, np.ndarray]:
    """``per_episode_stats`` plus ``info_episode_stats`` for the env infos every episode
    reports (``stages_completed``: Jaco; ``x_velocity``: Walker)."""
    stats = per_episode_stats(
        [record.rewards for record in records],
        [record.successes for record in records],
        [record.step_types for record in records],
        discount,
    )
    infos = {
        key: [record.infos[key] for record in records]
        for key in INFO_KEYS
        if records and all(key in record.infos for record in records)
    }
    stats.update(info_episode_stats(infos))
    return stats


def _run_deterministic(
    policy: Policy, envs: Sequence[Environment], max_episode_length: int
) -> list[EpisodeRecord]:
    """One deterministic episode (the ``mean`` action) on each env, all in lockstep."""
    return [
        _record(episode)
        for episode in run_lockstep_episodes(policy, envs, max_episode_length, action_key='mean')
    ]


class _EvaluationRunner:
    """A worker process's share of the evaluation envs, keyed by row (``copy * N + task``).

    ``sources`` maps each row to its task's test env and its copy index. The envs are built in
    the worker when the first policy arrives, all before any is reset (copy c > 0 reset-seeded
    ``c * EVALUATION_COPY_SEED_STRIDE`` apart from its source, as ``LockstepEvaluator``'s
    in-process copies are; copy 0 is the source itself). Commands: ``policy`` (the pickled
    policy to evaluate and the horizon), ``run`` (rows: one deterministic episode on each row's
    env, in lockstep; answers their ``EpisodeRecord``).
    """

    def __init__(self, sources: dict[int, tuple[Environment, int]]) -> None:
        self.sources = sources
        self.envs: dict[int, Environment] = {}
        self.policy: Policy | None = None
        self.max_episode_length = 0

    def _build_envs(self) -> None:
        for row, (env, copy_index) in self.sources.items():
            offset = copy_index * EVALUATION_COPY_SEED_STRIDE
            self.envs[row] = seeded_copy(env, offset) if copy_index else env

    def handle(self, command: str, payload: Any) -> Any:
        if command == 'policy':
            if not self.envs:
                self._build_envs()
            policy_bytes, self.max_episode_length = payload
            self.policy = pickle.loads(policy_bytes)
            return None
        if command == 'run':
            assert self.policy is not None, 'a policy must be sent before episodes are run'
            return _run_deterministic(
                self.policy, [self.envs[row] for row in payload], self.max_episode_length
            )
        raise ValueError(f'unknown evaluation worker command {command!r}')

    def close(self) -> None:
        """Closes every env once (a copy-0 row's env is its source)."""
        distinct = {id(env): env for env in self.envs.values()}
        distinct.update((id(env), env) for env, _ in self.sources.values())
        for env in distinct.values():
            env.close()


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
    records = [
        record
        for _ in range(episodes_per_task)
        for record in _run_deterministic(policy, envs, max_episode_length)
    ]
    task_ids = np.tile(np.arange(len(envs)), episodes_per_task)
    return _statistics(records, discount), task_ids.astype(np.int64)


class LockstepEvaluator:
    """``evaluate`` with all episodes of all tasks in lockstep, one policy call per step.

    Episode e of task j runs on copy ``e % envs_per_task`` of task j's test env; copy 0 is the
    test env itself and copy c > 0 a copy rebuilt from it with its reset seed shifted by
    ``c * EVALUATION_COPY_SEED_STRIDE``, so every copy has its own reproducible stream of
    starts. With ``envs_per_task = 1`` this is exactly ``evaluate``. The statistics come in
    ``evaluate``'s order (episode by episode, tasks in order within each).

    With ``n_workers`` > 1 the envs (rows ``copy * N + task``) are dealt round-robin to worker
    processes, started at the first evaluation: each builds its rows from the pickled test envs
    (copy 0 a duplicate that starts the test env's stream), receives the policy pickled once
    per evaluation and runs its share of each lockstep group, so the cores each step part of
    the simulation. The episodes are those of the one-process path: every episode depends only
    on its env's stream and on the policy's deterministic ``mean`` action (with
    ``--qmp_score_action sample`` the Q-switch's choices draw from the workers' generators
    instead). The workers' envs do not go into snapshots, so a resumed run restarts their
    streams (as it does the collection workers', README "Resume").

    Args:
        test_envs: one test env per task, not reset yet (so that the copies start seeded).
        episodes_per_task: deterministic episodes per task and evaluation.
        envs_per_task: envs per task stepped together (default: ``episodes_per_task``, capped
            so that at most ``MAX_LOCKSTEP_EPISODES`` episodes run at once).
        n_workers: processes stepping the envs (1: this process; at most the envs per group).
        seed: seed of the worker processes' generators (default: garage's global seed).
    """

    def __init__(
        self,
        test_envs: Sequence[Environment],
        episodes_per_task: int,
        envs_per_task: int | None = None,
        n_workers: int = 1,
        seed: int | None = None,
    ) -> None:
        if envs_per_task is None:
            envs_per_task = max(
                1, min(episodes_per_task, MAX_LOCKSTEP_EPISODES // max(len(test_envs), 1))
            )
        if episodes_per_task < 1 or envs_per_task < 1 or n_workers < 1:
            raise ValueError('episodes_per_task, envs_per_task and n_workers must be at least 1')
        self.episodes_per_task = episodes_per_task
        self.envs_per_task = min(envs_per_task, episodes_per_task)
        self.n_tasks = len(test_envs)
        self.n_workers = min(n_workers, self.envs_per_task * self.n_tasks)
        self._test_envs = list(test_envs)
        self._seed = deterministic.get_seed() if seed is None else seed
        self._workers: WorkerPool | None = None
        # In-process copies; with workers, each builds its own rows instead.
        self.copies = [self._test_envs] + [
            [seeded_copy(env, index * EVALUATION_COPY_SEED_STRIDE) for env in self._test_envs]
            for index in range(1, self.envs_per_task if self.n_workers == 1 else 1)
        ]

    def evaluate(
        self, policy: Policy, max_episode_length: int, discount: float
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``evaluate``'s return contract: per-episode stats and each episode's task id."""
        if self.n_workers > 1:
            self._start_workers().broadcast('policy', (pickle.dumps(policy), max_episode_length))
        records: list[EpisodeRecord] = []
        for first in range(0, self.episodes_per_task, self.envs_per_task):
            n_copies = min(self.envs_per_task, self.episodes_per_task - first)
            if self.n_workers > 1:
                records.extend(
                    self._start_workers().run_rows('run', range(n_copies * self.n_tasks))
                )
                continue
            envs = [env for copies in self.copies[:n_copies] for env in copies]
            records.extend(_run_deterministic(policy, envs, max_episode_length))
        task_ids = np.tile(np.arange(self.n_tasks), self.episodes_per_task)
        return _statistics(records, discount), task_ids.astype(np.int64)

    def _source(self, row: int) -> tuple[Environment, int]:
        """Row ``copy * N + task``'s test env and copy index."""
        return self._test_envs[row % self.n_tasks], row // self.n_tasks

    def _start_workers(self) -> WorkerPool:
        if self._workers is None:
            self._workers = WorkerPool(
                self.envs_per_task * self.n_tasks,
                self.n_workers,
                lambda rows: _EvaluationRunner(
                    {
                        row: (self._test_envs[row % self.n_tasks], row // self.n_tasks)
                        for row in rows
                    }
                ),
                self._seed,
                'an evaluation worker',
            )
        return self._workers

    def stop_workers(self) -> None:
        """Closes the worker processes (a later evaluation starts them again)."""
        if self._workers is not None:
            workers, self._workers = self._workers, None
            workers.close()

    def close(self) -> None:
        """Closes the workers and the copies (the test envs themselves belong to their family)."""
        self.stop_workers()
        for copies in self.copies[1:]:
            for env in copies:
                env.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_workers'] = None  # processes do not pickle; restarted at the next evaluation
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault('n_workers', 1)  # (snapshots from before evaluation workers)
        state.setdefault('_test_envs', state['copies'][0])
        state.setdefault('_seed', None)
        state.setdefault('_workers', None)
        self.__dict__.update(state)
