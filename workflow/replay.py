"""Replaying a trained run: its snapshot's policies on its test envs, optionally on video.

The episodes are exactly those of training-time evaluation (``infrastructure.evaluation.evaluate``:
deterministic, tanh of the acting policy's mean); a video is the frames each env renders after
every reset and step, recorded by a thin wrapper around the env.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from configuration import validation
from configuration.flags import ConfigError
from configuration.methods import METHODS


class ReplayError(Exception):
    """A run directory or snapshot that cannot be replayed (reported in one line)."""


@dataclass
class TaskResult:
    """Deterministic episodes of one task."""

    task_id: int
    task_name: str
    success: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray


def check_run_dir(run_dir: str, mixture: bool) -> dict[str, Any]:
    """The run's configuration; raises ``ReplayError`` when the directory cannot be replayed.

    The checks are resume's (``configuration.validation.check_run_dir``) without
    ``progress.csv`` and without the inert read of the snapshot, which ``load_learner``
    unpickles for real right after.
    """
    try:
        config = validation.check_run_dir(
            run_dir, files=('variant.json', 'params.pkl'), where=repr(run_dir), check_snapshot=False
        )
    except ConfigError as error:
        raise ReplayError(str(error)) from None
    if mixture and not METHODS[config.method].uses_qswitch:
        raise ReplayError(
            f'--mixture needs a QMP run (a qmp_* method); this run is {config.method}'
        )
    return dataclasses.asdict(config)


def load_learner(run_dir: str, config: dict[str, Any]) -> Any:
    """The learner pickled in the run's ``params.pkl``, on the CPU."""
    import infrastructure.garage_compat as garage_compat  # pylint: disable=C0415  (before garage and cloudpickle)

    if config.get('sampler_type') == 'ray':
        garage_compat.init_ray()  # the snapshot holds a Ray sampler
    path = os.path.join(run_dir, 'params.pkl')
    try:
        with open(path, 'rb') as file:
            snapshot = pickle.load(file)
        learner = snapshot['algo']
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        KeyError,
        TypeError,
        ValueError,
    ) as error:
        raise ReplayError(
            f'cannot load the snapshot {path}: {type(error).__name__}: {error}'
        ) from error
    return learner.to('cpu')


def replay(
    learner: Any, task_ids: Sequence[int], episodes: int, mixture: bool, record: bool
) -> tuple[list[TaskResult], dict[int, list[np.ndarray]]]:
    """``episodes`` deterministic episodes of each task in ``task_ids`` with the task policies
    (or the Q-switch mixture); returns per-task results and, with ``record``, their frames."""
    from infrastructure.evaluation import evaluate  # pylint: disable=import-outside-toplevel
    from infrastructure.metrics import split_by_task  # pylint: disable=import-outside-toplevel
    from infrastructure.videos import FrameRecorder  # pylint: disable=import-outside-toplevel

    policy = learner.exploration_policy if mixture else learner.policy
    test_envs = learner.test_envs
    envs = [test_envs[task_id] for task_id in task_ids]
    recorders = [FrameRecorder(env) for env in envs] if record else []
    stats, order = evaluate(
        policy, recorders or envs, episodes, learner.max_episode_length, learner.discount
    )
    results = []
    for position, (task_id, task_stats) in enumerate(
        zip(task_ids, split_by_task(stats, order, len(envs)), strict=True)
    ):
        results.append(
            TaskResult(
                task_id,
                getattr(envs[position], 'task_name', str(task_id)),
                task_stats['success'],
                task_stats['return'],
                task_stats['length'],
            )
        )
    # Without recording there are no recorders, hence no frames.
    frames = {
        task_id: recorder.frames for task_id, recorder in zip(task_ids, recorders, strict=False)
    }
    return results, frames


def result_table(results: Sequence[TaskResult]) -> str:
    """A markdown table: per task, its success rate and return over the episodes."""
    lines = [
        '| task | name | episodes | success rate | return (mean ± std) | length |',
        '|---|---|---|---|---|---|',
    ]
    for result in results:
        lines.append(
            f'| {result.task_id} | {result.task_name} | {len(result.returns)} | '
            f'{result.success.mean():.2f} | {result.returns.mean():.2f} ± '
            f'{result.returns.std():.2f} | {result.lengths.mean():.1f} |'
        )
    success = np.concatenate([r.success for r in results])
    returns = np.concatenate([r.returns for r in results])
    lines.append(
        f'| all | | {len(returns)} | {success.mean():.2f} | {returns.mean():.2f} ± '
        f'{returns.std():.2f} | |'
    )
    return '\n'.join(lines)
