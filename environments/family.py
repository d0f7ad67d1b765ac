"""The build template every environment family shares.

A family's task ``i`` is one Gymnasium env, adapted to garage (``GymnasiumEnv``), seeded with
``task_seed`` (train: ``seed + i``, test: ``seed + 100 + i``) and given its task one-hot
(``TaskOneHotWrapper``). The family's id, task count and horizon are its row of
``environments/registry.py``; a family only names its tasks and says how to build the
Gymnasium env of one (``task_factory``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import gymnasium

from environments.gymnasium_adapter import GymnasiumEnv
from environments.multitask import MultiTaskEnv, SplitMode, TaskOneHotWrapper, task_seed
from environments.registry import ENVS, EnvInfo


class GymnasiumTaskFamily(MultiTaskEnv):
    """A ``MultiTaskEnv`` of one Gymnasium env per task, built on first use.

    Subclasses set ``ENV_ID`` (their registry id) and ``SPLIT_MODE`` and implement
    ``task_factory``.

    Args:
        task_names: the names of this run's tasks, in task-id order (a subset of the family's
            tasks where the family selects them).
        seed: base seed of the task envs (module docstring).
        include_task_id: keep the task one-hot in the network input.
        min_reward: the reward that relabels other tasks' transitions in unsupervised data
            sharing.
    """

    ENV_ID: ClassVar[str]
    SPLIT_MODE: ClassVar[SplitMode]

    def __init__(
        self,
        task_names: Sequence[str],
        seed: int = 0,
        include_task_id: bool = False,
        min_reward: float = 0.0,
    ) -> None:
        self._seed = seed
        super().__init__(
            self.ENV_ID,
            task_names,
            self._make,
            split_mode=self.SPLIT_MODE,
            include_task_id=include_task_id,
            min_reward=min_reward,
        )

    @classmethod
    def info(cls) -> EnvInfo:
        """The family's registry row: its id, task count and horizon."""
        return ENVS[cls.ENV_ID]

    def task_factory(self, task_id: int, split: str, seed: int) -> Callable[[], gymnasium.Env]:
        """A picklable factory (a module-level function or a partial of one) of task
        ``task_id``'s Gymnasium env for ``split`` (``'train'`` or ``'test'``); ``seed`` is the
        env's ``task_seed``."""
        raise NotImplementedError

    def _make(self, task_id: int, split: str) -> TaskOneHotWrapper:
        seed = task_seed(self._seed, task_id, split)
        env = GymnasiumEnv(
            self.task_factory(task_id, split, seed), self.info().max_episode_length, seed=seed
        )
        return TaskOneHotWrapper(env, task_id, self.n_tasks, self.task_names[task_id])
