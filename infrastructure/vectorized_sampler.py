"""Lockstep collection: all task envs stepped together, one batched policy call per step.

garage's ``LocalSampler`` runs one episode at a time and calls the policy on one observation
per step, so most of a collection step is the policy's per-call overhead, paid N times where
one batched call would do. ``VectorizedSampler`` collects the *same episodes* (the
"round-robin guarantee" of the release: tasks are visited in order from task 0, one episode per
visit, until the batch holds ``num_samples`` steps) but runs the visits it knows will be needed
side by side:

* the visits form one sequence, cycle by cycle in task order, exactly as ``LocalSampler``'s;
* a *group* is the longest next stretch of that sequence whose visits (a) use distinct envs and
  (b) are certainly needed: the steps of the visits before each one, counted at the horizon,
  are fewer than the steps still missing. A visit of a group is then needed whatever the
  lengths turn out to be, so no episode is ever run and thrown away;
* a group's episodes start together (``policy.reset()``) and are stepped in lockstep with one
  ``get_actions`` call per step: on the rows still running when the policy's rows are
  independent, else on all rows, the finished ones keeping their last observation (their
  action is ignored) so that a policy's per-row memory (the Q-switch's
  ``policy_sampling_freq``) stays aligned with its env;
* each episode is recorded as garage's ``DefaultWorker`` records it (same keys, dtypes,
  ``last_observations`` and ``step_types``), and the episodes are returned in visit order.

Within one collection the policy's parameters are fixed and every env continues its own stream
of episodes, so the batch holds the same episodes as the local sampler's in distribution; only
the order of the policy's random draws differs (``tests/test_vectorized_sampler.py`` checks
equality under a deterministic policy).

``envs_per_task k`` adds k-1 copies of each task env (seeded apart) so that a task's later
visits can run alongside its first; ``n_workers w`` splits the envs over w processes, each
stepping its share in lockstep with its own copy of the policy.
"""

from __future__ import annotations

import copy
import pickle
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from garage import Environment, EnvStep, EpisodeBatch, StepType
from garage.experiment import deterministic
from garage.np.policies import Policy
from garage.sampler import Sampler

from infrastructure.worker_processes import WorkerPool

# Seeds of the extra env copies (``envs_per_task``): copy j adds j times this to its seed.
COPY_SEED_STRIDE = 10_000


def seeded_copy(env: Environment, seed_offset: int) -> Environment:
    """A fresh copy of ``env`` (rebuilt from its factory) whose reset seed is shifted.

    The project's envs pickle through their factory and pending reset seed
    (``environments/gymnasium_adapter.py``), so the copy starts the stream ``env`` would have
    started, or, with ``seed_offset`` > 0, an independent one. An env that was already reset
    has no pending seed, and neither has its copy.
    """
    duplicate = pickle.loads(pickle.dumps(env))
    inner = duplicate.unwrapped
    seed = getattr(inner, '_seed', None)
    if seed is not None and seed_offset:
        inner._seed = seed + seed_offset  # pylint: disable=protected-access
    return duplicate


@dataclass
class LockstepEpisode:
    """One episode's records as ``run_lockstep_episodes`` collects them (see ``run_lockstep``)."""

    episode_info: dict
    observations: list[np.ndarray]
    env_steps: list[EnvStep]
    agent_infos: dict[str, list]
    last_observation: np.ndarray

    def to_batch(self, env_spec: Any) -> EpisodeBatch:
        """The ``EpisodeBatch`` that ``DefaultWorker.collect_episode`` would build."""
        env_infos: dict[str, list] = defaultdict(list)
        for step in self.env_steps:
            for key, value in step.env_info.items():
                env_infos[key].append(value)
        return EpisodeBatch(
            env_spec=env_spec,
            episode_infos={key: np.asarray([value]) for key, value in self.episode_info.items()},
            observations=np.asarray(self.observations),
            last_observations=np.asarray([self.last_observation]),
            actions=np.asarray([step.action for step in self.env_steps]),
            rewards=np.asarray([step.reward for step in self.env_steps]),
            step_types=np.asarray([step.step_type for step in self.env_steps], dtype=StepType),
            env_infos={key: np.asarray(values) for key, values in env_infos.items()},
            agent_infos={key: np.asarray(values) for key, values in self.agent_infos.items()},
            lengths=np.asarray([len(self.env_steps)], dtype='i'),
        )


def _act_on_running_rows(
    policy: Policy, observations: np.ndarray, running: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The running rows' indices, actions and agent infos for one lockstep step.

    A policy whose rows are independent (``rows_are_independent``: no per-row memory between
    calls) is called on the running rows only. Any other policy is called on every row, the
    finished ones holding their last observation, so that its per-row memory (the Q-switch's
    held selection, the random partition's assignment) stays aligned with its env.
    """
    rows = np.flatnonzero(running)
    if len(rows) < len(running) and getattr(policy, 'rows_are_independent', False):
        actions, infos = policy.get_actions(observations[rows])
        return rows, actions, infos
    actions, infos = policy.get_actions(observations)
    if len(rows) == len(running):
        return rows, actions, infos
    return rows, actions[rows], {key: value[rows] for key, value in infos.items()}


def run_lockstep_episodes(
    policy: Policy,
    envs: Sequence[Environment],
    max_episode_length: int,
    action_key: str | None = None,
) -> list[LockstepEpisode]:
    """One episode on every env of ``envs``, all stepped together; one record per env.

    Each episode is recorded as garage's ``DefaultWorker.rollout`` records it: the episode ends
    on a ``TERMINAL`` step (``last_observations`` is then the observation before that step, as
    garage keeps it), on the env's own ``TIMEOUT`` or after ``max_episode_length`` steps (the
    last step's observation). ``action_key`` names the agent info to execute instead of the
    sampled action (deterministic evaluation executes ``'mean'``).
    """
    n_envs = len(envs)
    starts = [env.reset() for env in envs]
    observations = np.stack([observation for observation, _ in starts])
    policy.reset()
    running = np.ones(n_envs, dtype=bool)
    lengths = np.zeros(n_envs, dtype=np.int64)
    recorded_observations: list[list[np.ndarray]] = [[] for _ in envs]
    env_steps: list[list[EnvStep]] = [[] for _ in envs]
    agent_infos: list[dict[str, list]] = [defaultdict(list) for _ in envs]
    last_observations: list[np.ndarray | None] = [None] * n_envs
    while running.any():
        rows, actions, infos = _act_on_running_rows(policy, observations, running)
        executed = actions if action_key is None else infos[action_key]
        for position, row in enumerate(rows.tolist()):
            step = envs[row].step(executed[position])
            recorded_observations[row].append(observations[row].copy())
            env_steps[row].append(step)
            for key, value in infos.items():
                agent_infos[row][key].append(value[position])
            lengths[row] += 1
            if step.terminal:
                last_observations[row] = observations[row].copy()
                running[row] = False
                continue
            observations[row] = step.observation
            if lengths[row] >= max_episode_length or step.step_type == StepType.TIMEOUT:
                last_observations[row] = observations[row].copy()
                running[row] = False
    episodes = []
    for row, (_, episode_info) in enumerate(starts):
        last_observation = last_observations[row]
        assert last_observation is not None  # every row's episode ended in the loop above
        episodes.append(
            LockstepEpisode(
                episode_info,
                recorded_observations[row],
                env_steps[row],
                agent_infos[row],
                last_observation,
            )
        )
    return episodes


def run_lockstep(
    policy: Policy, envs: Sequence[Environment], max_episode_length: int
) -> list[EpisodeBatch]:
    """``run_lockstep_episodes`` as garage batches, one per env, in the order of ``envs``."""
    return [
        episode.to_batch(env.spec)
        for env, episode in zip(
            envs, run_lockstep_episodes(policy, envs, max_episode_length), strict=True
        )
    ]


def plan_group(
    n_tasks: int, envs_per_task: int, first_visit: int, missing_steps: int, max_episode_length: int
) -> list[tuple[int, int]]:
    """The next group of visits: ``(visit index, env row)`` pairs, in visit order.

    Visit ``v`` is task ``v % n_tasks`` in cycle ``v // n_tasks``, run on that task's copy
    ``cycle % envs_per_task`` (row ``copy * n_tasks + task``). The group grows along the visit
    sequence while the next visit's env is free and the visits before it, even at full length,
    leave steps missing (module docstring). The first visit always belongs to the group.
    """
    group: list[tuple[int, int]] = []
    busy: set[int] = set()
    visit = first_visit
    while not group or len(group) * max_episode_length < missing_steps:
        cycle, task = divmod(visit, n_tasks)
        row = (cycle % envs_per_task) * n_tasks + task
        if row in busy:
            break
        group.append((visit, row))
        busy.add(row)
        visit += 1
    return group


class _LockstepRunner:
    """Envs and a policy copy; runs groups of rows. Lives in the sampler or in a worker."""

    def __init__(
        self, policy: Policy, envs: dict[int, Environment], max_episode_length: int
    ) -> None:
        self.policy = policy
        self.envs = envs
        self.max_episode_length = max_episode_length

    def run(self, rows: Sequence[int]) -> list[EpisodeBatch]:
        return run_lockstep(self.policy, [self.envs[row] for row in rows], self.max_episode_length)

    def handle(self, command: str, payload: Any) -> Any:
        """A worker's commands: ``update`` (load parameter values), ``run`` (episodes of rows)."""
        if command == 'update':
            self.policy.set_param_values(payload)
            return None
        if command == 'run':
            return self.run(payload)
        raise ValueError(f'unknown worker command {command!r}')

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


class VectorizedSampler(Sampler):
    """garage ``Sampler`` that collects the local sampler's episodes in lockstep groups.

    Args:
        agent: the sampling policy; the sampler keeps its own copy and loads the parameters
            the trainer passes as ``agent_update`` before each collection (garage's
            ``DefaultWorker`` does the same), so it never acts with the learner's modules.
        envs: one env per task, in task order.
        max_episode_length: the horizon.
        envs_per_task: envs per task (copies seeded ``COPY_SEED_STRIDE`` apart).
        n_workers: processes stepping the envs (1: in this process).
        seed: seed of the worker processes' generators (default: garage's global seed).
    """

    def __init__(
        self,
        agent: Policy,
        envs: Sequence[Environment],
        *,
        max_episode_length: int,
        envs_per_task: int = 1,
        n_workers: int = 1,
        seed: int | None = None,
    ) -> None:
        # pylint: disable=super-init-not-called  (garage's Sampler.__init__ is deprecated)
        if envs_per_task < 1 or n_workers < 1:
            raise ValueError('envs_per_task and n_workers must be at least 1')
        self.n_tasks = len(envs)
        self.envs_per_task = envs_per_task
        self.max_episode_length = max_episode_length
        self.n_rows = self.n_tasks * envs_per_task
        if n_workers > self.n_rows:
            raise ValueError(f'n_workers {n_workers} exceeds the {self.n_rows} envs to step')
        self.n_workers = n_workers
        self._seed = deterministic.get_seed() if seed is None else seed
        self._policy = copy.deepcopy(agent)
        self._envs = [
            env if copy_index == 0 else seeded_copy(env, copy_index * COPY_SEED_STRIDE)
            for copy_index in range(envs_per_task)
            for env in envs
        ]
        self._workers: WorkerPool | None = None
        self._local: _LockstepRunner | None = None
        self.total_env_steps = 0

    def start_worker(self) -> None:
        """Starts the worker processes (or the in-process runner); idempotent."""
        if self.n_workers == 1:
            if self._local is None:
                self._local = _LockstepRunner(
                    self._policy, dict(enumerate(self._envs)), self.max_episode_length
                )
            return
        if self._workers is None:
            self._workers = WorkerPool(
                self.n_rows,
                self.n_workers,
                lambda rows: _LockstepRunner(
                    self._policy, {row: self._envs[row] for row in rows}, self.max_episode_length
                ),
                self._seed,
                'a VectorizedSampler worker',
            )

    def obtain_samples(
        self, itr: int, num_samples: int, agent_update: Any, env_update: Any = None
    ) -> EpisodeBatch:
        """The local sampler's episodes for a batch of at least ``num_samples`` steps.

        Raises:
            ValueError: for an ``env_update`` (not supported: the envs stay fixed).
        """
        del itr  # deprecated in garage's interface
        if env_update is not None:
            raise ValueError('VectorizedSampler does not support env_update')
        self.start_worker()
        self._update_policy(agent_update)
        episodes: list[EpisodeBatch] = []
        completed, visit = 0, 0
        while completed < num_samples:
            group = plan_group(
                self.n_tasks,
                self.envs_per_task,
                visit,
                num_samples - completed,
                self.max_episode_length,
            )
            for episode in self._run_group([row for _, row in group]):
                episodes.append(episode)
                completed += int(episode.lengths.sum())
            visit += len(group)
        samples = EpisodeBatch.concatenate(*episodes)
        self.total_env_steps += int(samples.lengths.sum())
        return samples

    def _update_policy(self, agent_update: Any) -> None:
        if agent_update is None:
            return
        if isinstance(agent_update, Policy):
            agent_update = agent_update.get_param_values()
        if self._workers is None:
            self._policy.set_param_values(agent_update)
            return
        self._workers.broadcast('update', agent_update)

    def _run_group(self, rows: list[int]) -> list[EpisodeBatch]:
        """The episodes of ``rows`` (one each), in the order of ``rows``."""
        if self._workers is None:
            assert self._local is not None  # start_worker() ran
            return self._local.run(rows)
        return self._workers.run_rows('run', rows)

    def shutdown_worker(self) -> None:
        """Closes the worker processes (waiting for them) and the envs."""
        if self._workers is not None:
            workers, self._workers = self._workers, None
            workers.close()
        if self._local is not None:
            self._local.close()
            self._local = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_workers'] = None  # processes do not pickle; restarted on the next collection
        state['_local'] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
