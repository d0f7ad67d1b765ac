"""The multi-task contract every environment of this project follows.

A multi-task environment is a family of N per-task garage environments (index = ``task_id``).
Every per-task observation is ``[state, one_hot(task_id)]`` (float32), and every step's env info
carries ``task_id`` and ``success``. Episodes end with ``StepType.TERMINAL`` only on a real
termination and with ``StepType.TIMEOUT`` at the horizon.

Networks never see the raw observation directly: ``split_observation`` turns it into the input
the networks get and the task id, following the release:

* ``split_mode='zero'`` (Meta-World, Walker, Jaco): the one-hot is zeroed, the width is kept;
* ``split_mode='slice'`` (Maze, Kitchen, the toy env): the one-hot is cut off;
* ``include_task_id=True``: the observation is passed unchanged (the one-hot stays visible).

The task id is always the argmax of the one-hot in the raw observation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from garage import Environment, EnvSpec, EnvStep

from environments.normalization import ObservationNormalizer
from environments.observation_space import ObservationSpaceWrapper

SplitMode = Literal['zero', 'slice']
Array = TypeVar('Array', np.ndarray, torch.Tensor)


def split_observation(
    observations: Array, n_tasks: int, split_mode: SplitMode, include_task_id: bool
) -> tuple[Array, Array]:
    """Splits raw observations (..., obs_dim) into (network input, task ids).

    Works on numpy arrays and torch tensors, batched or not. The task ids are the argmax of the
    trailing one-hot; the network input is a new array (the raw observation is never modified).
    """
    one_hot = observations[..., -n_tasks:]
    task_ids = one_hot.argmax(-1)
    if include_task_id:
        states = (
            observations.clone() if isinstance(observations, torch.Tensor) else observations.copy()
        )
    elif split_mode == 'slice':
        states = observations[..., :-n_tasks]
        states = states.clone() if isinstance(states, torch.Tensor) else states.copy()
    else:
        states = (
            observations.clone() if isinstance(observations, torch.Tensor) else observations.copy()
        )
        states[..., -n_tasks:] = 0
    return states, task_ids


TEST_SEED_OFFSET = 100


def task_seed(seed: int, task_id: int, split: str) -> int:
    """The seed of task ``task_id``'s env: ``seed + task_id`` for training and ``seed + 100 +
    task_id`` for evaluation, so train and test envs are reproducible and never identical."""
    return seed + task_id + (TEST_SEED_OFFSET if split == 'test' else 0)


def sparse_task_set(sparse_tasks: Sequence[int], n_tasks: int, env_id: str) -> frozenset[int]:
    """Validated ``--sparse_tasks``: indices of tasks (of this run) rewarded ``1[success]``."""
    for task_id in sparse_tasks:
        if not 0 <= task_id < n_tasks:
            raise ValueError(
                f'sparse task {task_id} is not a task of this {env_id} (tasks 0..{n_tasks - 1})'
            )
    return frozenset(int(task_id) for task_id in sparse_tasks)


@dataclass(frozen=True)
class ObservationSplitter:
    """``split_observation`` bound to one family's settings; small and picklable."""

    n_tasks: int
    split_mode: SplitMode
    include_task_id: bool

    def __call__(self, observations: Array) -> tuple[Array, Array]:
        return split_observation(observations, self.n_tasks, self.split_mode, self.include_task_id)


class TaskOneHotWrapper(ObservationSpaceWrapper):
    """Appends ``one_hot(task_id)`` to observations and puts ``task_id``/``success`` in infos.

    Args:
        env: the per-task garage environment (state observations only).
        task_id: this environment's task index.
        n_tasks: number of tasks in the family.
        task_name: human-readable task name (kept for logs and videos).
    """

    def __init__(self, env: Environment, task_id: int, n_tasks: int, task_name: str) -> None:
        super().__init__(env)
        self.task_id = task_id
        self.task_name = task_name
        self._one_hot = np.zeros(n_tasks, dtype=np.float32)
        self._one_hot[task_id] = 1.0
        inner = env.observation_space
        self._set_observation_space(
            np.concatenate([inner.low, np.zeros(n_tasks)]),
            np.concatenate([inner.high, np.ones(n_tasks)]),
        )

    @property
    def gymnasium_env(self) -> Any:
        """The Gymnasium env this per-task env adapts (for reward functions and tests)."""
        return self.unwrapped.unwrapped_env

    def widen_observation_space(self, low: np.ndarray, high: np.ndarray) -> None:
        """Replaces the observation bounds (see ``share_observation_space``)."""
        self._set_observation_space(low, high)

    def _with_task(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation.astype(np.float32), self._one_hot])

    def reset(self) -> tuple[np.ndarray, dict]:
        observation, episode_info = self._env.reset()
        return self._with_task(observation), episode_info

    def step(self, action: np.ndarray) -> EnvStep:
        env_step = self._env.step(action)
        env_info = dict(env_step.env_info)
        env_info['task_id'] = self.task_id
        env_info['success'] = float(env_info.get('success', 0.0))
        return EnvStep(
            env_spec=self._spec,
            action=env_step.action,
            reward=env_step.reward,
            observation=self._with_task(env_step.observation),
            env_info=env_info,
            step_type=env_step.step_type,
        )


def share_observation_space(envs: Sequence[TaskOneHotWrapper]) -> None:
    """Gives every task env the union of their observation bounds.

    Tasks of one family can declare different bounds (Meta-World's goal ranges differ per task),
    but garage checks a batch of episodes from all tasks against one spec (the first episode's)
    and would report the other tasks' observations as out of bounds.
    """
    low = np.min([env.observation_space.low for env in envs], axis=0)
    high = np.max([env.observation_space.high for env in envs], axis=0)
    for env in envs:
        env.widen_observation_space(low, high)


class MultiTaskEnv:
    """A family of N per-task environments plus the facts the learners need about them.

    Args:
        env_id: registry id (e.g. ``PointReachMT-v0``).
        task_names: one name per task, in task-id order.
        make_task_env: ``make_task_env(task_id, split)`` returns the per-task garage env with
            one-hot observations, for ``split`` in ``('train', 'test')``; test envs are
            constructed separately (and, where the env is random, seeded differently).
        split_mode: how ``split_observation`` hides the one-hot (module docstring).
        include_task_id: keep the one-hot in the network input.
        min_reward: the reward used to relabel other tasks' transitions in unsupervised data
            sharing (``learning/data_sharing.py``).
    """

    def __init__(
        self,
        env_id: str,
        task_names: Sequence[str],
        make_task_env: Callable[[int, str], Environment],
        split_mode: SplitMode,
        include_task_id: bool = False,
        min_reward: float = 0.0,
    ) -> None:
        self.env_id = env_id
        self.task_names = tuple(task_names)
        self.n_tasks = len(self.task_names)
        self.split_mode = split_mode
        self.include_task_id = include_task_id
        self.min_reward = min_reward
        self._make_task_env = make_task_env
        self._train_envs: list[Environment] | None = None
        self._test_envs: list[Environment] | None = None
        self._normalize_observations = False

    def normalize_observations(self) -> None:
        """``--norm_obs``: every train and test env gets its own running observation
        normalisation (``environments/normalization.py``). Call before the envs are built."""
        if self._train_envs is not None or self._test_envs is not None:
            raise RuntimeError('normalize_observations() must precede building the envs')
        self._normalize_observations = True

    def _finish(self, envs: list[Environment]) -> list[Environment]:
        share_observation_space(envs)
        if self._normalize_observations:
            envs = [ObservationNormalizer(env, self.n_tasks) for env in envs]
        return envs

    def get_train_envs(self) -> list[Environment]:
        """One training environment per task (built on first use)."""
        if self._train_envs is None:
            self._train_envs = self._finish(
                [self._make_task_env(i, 'train') for i in range(self.n_tasks)]
            )
        return self._train_envs

    def get_test_envs(self) -> list[Environment]:
        """One evaluation environment per task, distinct instances from the training ones."""
        if self._test_envs is None:
            self._test_envs = self._finish(
                [self._make_task_env(i, 'test') for i in range(self.n_tasks)]
            )
        return self._test_envs

    @property
    def spec(self) -> EnvSpec:
        """Spec of the raw per-task observations (state + one-hot) and actions."""
        return self.get_train_envs()[0].spec

    @property
    def max_episode_length(self) -> int:
        return self.spec.max_episode_length

    @property
    def observation_dim(self) -> int:
        """Width of a raw observation (state + one-hot)."""
        return int(self.spec.observation_space.flat_dim)

    @property
    def network_input_dim(self) -> int:
        """Width of the observations the actors and critics receive."""
        sliced = self.split_mode == 'slice' and not self.include_task_id
        return self.observation_dim - (self.n_tasks if sliced else 0)

    @property
    def action_dim(self) -> int:
        return int(self.spec.action_space.flat_dim)

    @property
    def split_observation(self) -> ObservationSplitter:
        """(network input, task ids) of raw observations; see ``split_observation``."""
        return ObservationSplitter(self.n_tasks, self.split_mode, self.include_task_id)

    def close(self) -> None:
        for env in (self._train_envs or []) + (self._test_envs or []):
            env.close()


def describe(env: MultiTaskEnv) -> dict[str, Any]:
    """A small summary for logs and ``--dry_run``."""
    return {
        'env_id': env.env_id,
        'n_tasks': env.n_tasks,
        'tasks': list(env.task_names),
        'max_episode_length': env.max_episode_length,
        'observation_dim': env.observation_dim,
        'network_input_dim': env.network_input_dim,
        'action_dim': env.action_dim,
    }
