"""``MetaWorldMT10-v2`` and ``MetaWorldMT50-v2``: the Meta-World multi-task benchmarks.

The ids are the release's; the tasks are Meta-World 3's ``-v3`` environments (the ``-v2`` ones
no longer exist in ``metaworld>=3``). Following the release:

* one task per environment class of the benchmark, numbered as the release numbered them
  (``TASK_ORDER``: MT10 in the benchmark's order, MT50 in Meta-World V2's ``MT50_V2`` order);
  each task cycles through the 50 goal variations (``Task`` objects) that the benchmark drew for
  its class, a new variation on every reset, so a policy must read the goal from the observation;
* training environments use the goal variations of ``metaworld.MT10(seed=seed)`` (or ``MT50``),
  evaluation environments are separate instances over a benchmark drawn with ``seed + 100``;
* observation: Meta-World's 39-d state (hand, gripper, objects, previous frame, goal) plus the
  task one-hot, i.e. 49 (MT10) or 89 (MT50) dims; ``split_mode='zero'`` (the one-hot is zeroed,
  the width is kept); action ``Box(-1, 1, (4,))``; horizon 500; reward in [0, 10], so the reward
  used to relabel other tasks' transitions is ``min_reward=0.0``;
* ``info['success']`` is Meta-World's own success flag (the per-task success rate is the
  benchmark's metric).

Two details of Meta-World 3.1.1 are handled here (the project's stack notes, B10, B11, B13):

* garage's ``MetaWorldTaskSampler`` / ``MetaWorldSetTaskEnv`` need gym<=0.21, so the per-task
  environment is built by ``make_metaworld_env`` and reaches garage through ``GymnasiumEnv``;
* after ``set_task`` with an MT task (goal visible), ``env.observation_space`` keeps the goal
  dims bounded to [0, 0] although ``obs[36:39]`` holds the goal; ``GoalVariationWrapper``
  refreshes it from ``sawyer_observation_space`` (against which Meta-World clips its step
  observations; reset observations were checked to lie inside it for all 2,500 MT50 goals).

Pickling stays small (no MuJoCo state): ``GymnasiumEnv`` pickles its factory, a
``functools.partial`` of the module-level ``make_metaworld_env`` holding the task name, its 50
goal variations (about 16 kB) and the goal-order seed. Building a benchmark draws its goals by
simulating every class (seconds for MT10, over half a minute for MT50), so it happens once per
process and seed (``get_benchmark``) in the process that builds the family; a process that
unpickles an environment (a Ray worker) needs no benchmark at all.

Meta-World never terminates an episode: it truncates at step 500 (and raises if stepped
further), where the adapter emits ``StepType.TIMEOUT`` and the sampler resets.

Rendering: every environment is built with ``render_mode='rgb_array'`` (Meta-World's default
camera, 480x480); the renderer is created lazily on the first ``render()``, so this costs
nothing otherwise. Off-screen rendering needs ``MUJOCO_GL=egl`` (or ``osmesa``) set before
MuJoCo is first imported.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar, Final, cast

import gymnasium
import metaworld
import metaworld.env_dict
import numpy as np
from gymnasium.utils import seeding
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.types import Task

from environments.family import GymnasiumTaskFamily
from environments.multitask import TEST_SEED_OFFSET

RENDER_MODE: Final = 'rgb_array'
BENCHMARKS: dict[str, type[metaworld.MT10] | type[metaworld.MT50]] = {
    'MT10': metaworld.MT10,
    'MT50': metaworld.MT50,
}
# The benchmarks' class dictionaries (``-v3`` name -> class); reading them builds nothing.
BENCHMARK_CLASSES: dict[str, dict[str, type[SawyerXYZEnv]]] = {
    'MT10': metaworld.env_dict.MT10_V3,
    'MT50': metaworld.env_dict.MT50_V3,
}
# The task order, i.e. which task each one-hot position and each ``Task<i>`` log key names.
# The release numbered tasks by their position in its Meta-World's benchmark dictionary
# (garage's ``MetaWorldTaskSampler`` enumerates ``benchmark.train_classes``). MT10 is that
# dictionary's order, the same in Meta-World V2 and 3. MT50 follows Meta-World V2's
# ``MT50_V2`` (``metaworld/envs/mujoco/env_dict.py``), an ``OrderedDict`` built from 53 pairs
# in which ``peg-insert-side``, ``push`` and ``reach`` appear twice, so each of the 50 tasks
# sits at its first listed position. Meta-World 3's ``MT50_V3`` lists them in another order
# (from index 28 on), which would rename ``Task28``-``Task43``; see docs/deviations.md.
MT10_TASK_ORDER = (
    'reach',
    'push',
    'pick-place',
    'door-open',
    'drawer-open',
    'drawer-close',
    'button-press-topdown',
    'peg-insert-side',
    'window-open',
    'window-close',
)
MT50_V2_TASK_ORDER = (
    'assembly',
    'basketball',
    'bin-picking',
    'box-close',
    'button-press-topdown',
    'button-press-topdown-wall',
    'button-press',
    'button-press-wall',
    'coffee-button',
    'coffee-pull',
    'coffee-push',
    'dial-turn',
    'disassemble',
    'door-close',
    'door-lock',
    'door-open',
    'door-unlock',
    'hand-insert',
    'drawer-close',
    'drawer-open',
    'faucet-open',
    'faucet-close',
    'hammer',
    'handle-press-side',
    'handle-press',
    'handle-pull-side',
    'handle-pull',
    'lever-pull',
    'peg-insert-side',
    'pick-place-wall',
    'pick-out-of-hole',
    'reach',
    'push-back',
    'push',
    'pick-place',
    'plate-slide',
    'plate-slide-side',
    'plate-slide-back',
    'plate-slide-back-side',
    'peg-unplug-side',
    'soccer',
    'stick-push',
    'stick-pull',
    'push-wall',
    'reach-wall',
    'shelf-place',
    'sweep-into',
    'sweep',
    'window-open',
    'window-close',
)
TASK_ORDER: dict[str, tuple[str, ...]] = {
    'MT10': tuple(f'{name}-v3' for name in MT10_TASK_ORDER),
    'MT50': tuple(f'{name}-v3' for name in MT50_V2_TASK_ORDER),
}


@functools.lru_cache(maxsize=8)
def get_benchmark(benchmark_name: str, seed: int) -> metaworld.Benchmark:
    """``metaworld.MT10(seed=seed)`` (or ``MT50``), built once per process and seed."""
    return BENCHMARKS[benchmark_name](seed=seed)


def task_names(benchmark_name: str) -> tuple[str, ...]:
    """The benchmark's environment names (``reach-v3``, ...) in the release's task order."""
    return TASK_ORDER[benchmark_name]


def goal_variations(benchmark_name: str, seed: int, env_name: str) -> tuple[Task, ...]:
    """The 50 goal variations the benchmark drew for ``env_name``, in the benchmark's order."""
    benchmark = get_benchmark(benchmark_name, seed)
    tasks = tuple(task for task in benchmark.train_tasks if task.env_name == env_name)
    if not tasks:
        raise ValueError(f'{env_name} is not a task of Meta-World {benchmark_name}')
    return tasks


class GoalVariationWrapper(gymnasium.Wrapper):
    """Sets a new goal variation of one Meta-World environment on every reset (as the release).

    The variations are visited in a random permutation, reshuffled after each full pass; the
    first variation of a new pass is never the last one of the previous pass, so consecutive
    episodes always have different goals. The order comes from the wrapper's own generator,
    seeded at construction and re-seeded by ``reset(seed=...)`` (Meta-World itself ignores the
    reset seed and, with fixed goal variations, draws nothing at reset).

    Args:
        env: a Meta-World environment (built with its class's constructor, no task set yet).
        tasks: its goal variations.
        seed: seed of the visiting order.
    """

    def __init__(self, env: SawyerXYZEnv, tasks: Sequence[Task], seed: int | None) -> None:
        super().__init__(env)
        if not tasks:
            raise ValueError('GoalVariationWrapper needs at least one goal variation')
        self._tasks = tuple(tasks)
        self._rng = np.random.default_rng(seed)
        self._order = np.empty(0, dtype=np.int64)
        self._position = 0
        self._goal_index: int | None = None
        # A task must be set before the spaces are read (and before any step or reset).
        self._set_goal(0)
        self._goal_index = None

    @property
    def goal_index(self) -> int | None:
        """Index of the current episode's goal variation (``None`` before the first reset)."""
        return self._goal_index

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:  # a reseeded env repeats its goal order from the start
            self._rng = np.random.default_rng(seed)
            self._order = np.empty(0, dtype=np.int64)
            self._position = 0
            self._goal_index = None
            # Meta-World's reset ignores its seed argument; seed its generator here instead.
            self.env.unwrapped._np_random, _ = seeding.np_random(seed)  # pylint: disable=W0212
        self._set_goal(self._next_goal_index())
        return self.env.reset(seed=seed, options=options)

    def get_random_state(self) -> dict[str, Any]:
        """The goal order's generator and position, for snapshots (``GymnasiumEnv``)."""
        return {
            'rng': self._rng,
            'order': self._order,
            'position': self._position,
            'goal_index': self._goal_index,
        }

    def set_random_state(self, state: dict[str, Any]) -> None:
        """Restores ``get_random_state``'s result; the next reset takes the next goal."""
        self._rng, self._order = state['rng'], state['order']
        self._position, self._goal_index = state['position'], state['goal_index']

    def _next_goal_index(self) -> int:
        if self._position >= len(self._order):
            order = self._rng.permutation(len(self._tasks))
            if len(order) > 1 and order[0] == self._goal_index:
                order[[0, 1]] = order[[1, 0]]
            self._order = order
            self._position = 0
        index = int(self._order[self._position])
        self._position += 1
        return index

    def _set_goal(self, index: int) -> None:
        """``set_task`` plus the stale-observation-space fix (stack.md B11)."""
        # gymnasium's Wrapper types its env as a plain Env; ``__init__`` takes a SawyerXYZEnv.
        metaworld_env = cast(SawyerXYZEnv, self.env.unwrapped)
        metaworld_env.set_task(self._tasks[index])
        metaworld_env.observation_space = metaworld_env.sawyer_observation_space
        self._goal_index = index


def make_metaworld_env(
    benchmark_name: str, env_name: str, tasks: tuple[Task, ...], seed: int | None
) -> GoalVariationWrapper:
    """Module-level factory of one task's Gymnasium environment (picklable through a partial).

    Args:
        benchmark_name: ``'MT10'`` or ``'MT50'``.
        env_name: the task, e.g. ``'reach-v3'``.
        tasks: its goal variations (from ``goal_variations``).
        seed: seed of the order in which the goal variations are visited.
    """
    env_cls = BENCHMARK_CLASSES[benchmark_name][env_name]
    return GoalVariationWrapper(env_cls(render_mode=RENDER_MODE), tasks, seed)


class MetaWorldMT(GymnasiumTaskFamily):
    """A Meta-World multi-task benchmark as a ``MultiTaskEnv`` (subclasses fix the benchmark).

    Constructing it builds nothing: the benchmark and the environments are built on the first
    ``get_train_envs`` / ``get_test_envs`` (or ``spec``) call.

    Args:
        seed: seed of the training benchmark's goal variations; evaluation environments use
            ``seed + 100`` (as in the release), and each environment's goal order is seeded by
            ``seed + task_id`` (plus 100 for evaluation).
        include_task_id: keep the task one-hot in the network input.
    """

    BENCHMARK: ClassVar[str]
    SPLIT_MODE = 'zero'

    def __init__(self, seed: int = 0, include_task_id: bool = False) -> None:
        super().__init__(task_names(self.BENCHMARK), seed, include_task_id, min_reward=0.0)

    def task_factory(self, task_id: int, split: str, seed: int) -> functools.partial[Any]:
        offset = TEST_SEED_OFFSET if split == 'test' else 0  # the test benchmark's seed
        name = self.task_names[task_id]
        tasks = goal_variations(self.BENCHMARK, self._seed + offset, name)
        return functools.partial(make_metaworld_env, self.BENCHMARK, name, tasks, seed)


class MetaWorldMT10(MetaWorldMT):
    """``MetaWorldMT10-v2``: Meta-World 3's MT10 (10 tasks, 50 goal variations each)."""

    BENCHMARK = 'MT10'
    ENV_ID = 'MetaWorldMT10-v2'


class MetaWorldMT50(MetaWorldMT):
    """``MetaWorldMT50-v2``: Meta-World 3's MT50 (50 tasks, 50 goal variations each), with the
    tasks numbered in Meta-World V2's ``MT50_V2`` order as in the release."""

    BENCHMARK = 'MT50'
    ENV_ID = 'MetaWorldMT50-v2'
