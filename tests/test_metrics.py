"""The env-info metrics on hand-made episodes: ``StagesCompleted`` (the last step's
``stages_completed``, Jaco) and ``Velocity`` (the mean ``x_velocity``, Walker), in training
episodes (``Train/``), in evaluation (``Evaluation/``) and for the Q-switch mixture
(``Evaluation/Mixture/``). Every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

from typing import Any

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import akro
import numpy as np
import pytest
from dowel import LogOutput, logger, tabular
from garage import EnvSpec, EnvStep, EpisodeBatch, StepType

from infrastructure.evaluation import evaluate
from infrastructure.metrics import batch_episode_stats, info_episode_stats, summarize
from learning.algorithms.base import MultiTaskLearner

SPEC = EnvSpec(
    akro.Box(-np.ones(2, np.float32), np.ones(2, np.float32)),
    akro.Box(-np.ones(1, np.float32), np.ones(1, np.float32)),
    max_episode_length=10,
)


def _batch(
    lengths: list[int], task_ids: list[int], rewards: list[float], infos: dict[str, list[float]]
) -> EpisodeBatch:
    """An ``EpisodeBatch`` of the given per-step rewards and env infos; the last step of each
    episode is TERMINAL."""
    n_steps = sum(lengths)
    step_types = []
    for length in lengths:
        step_types += [StepType.FIRST] + [StepType.MID] * (length - 2) + [StepType.TERMINAL]
    env_infos = {key: np.asarray(values, dtype=np.float64) for key, values in infos.items()}
    env_infos['task_id'] = np.repeat(task_ids, lengths)
    env_infos.setdefault('success', np.zeros(n_steps))
    return EpisodeBatch(
        env_spec=SPEC,
        episode_infos={},
        observations=np.zeros((n_steps, 2), np.float32),
        last_observations=np.zeros((len(lengths), 2), np.float32),
        actions=np.zeros((n_steps, 1), np.float32),
        rewards=np.asarray(rewards, dtype=np.float64),
        env_infos=env_infos,
        agent_infos={},
        step_types=np.array(step_types, dtype=StepType),
        lengths=np.asarray(lengths),
    )


def test_info_episode_stats_last_stage_and_mean_velocity() -> None:
    stats = info_episode_stats(
        {
            'stages_completed': [np.array([0, 1, 1, 2]), np.array([0.0])],
            'x_velocity': [np.array([1.0, 2.0, 6.0]), np.array([-0.5])],
        }
    )
    np.testing.assert_array_equal(stats['stages_completed'], [2.0, 0.0])  # last, not max/mean
    np.testing.assert_allclose(stats['velocity'], [3.0, -0.5])  # (1 + 2 + 6) / 3
    assert info_episode_stats({}) == {}


def test_batch_episode_stats_reads_the_infos_of_each_episode() -> None:
    # Two episodes of 3 and 2 steps; stages (0, 1, 1) then (2, 3); velocities (1, 2, 3), (5, 7).
    batch = _batch(
        [3, 2],
        [0, 1],
        [1.0, 1.0, 1.0, 2.0, 2.0],
        {'stages_completed': [0, 1, 1, 2, 3], 'x_velocity': [1, 2, 3, 5, 7]},
    )
    stats = batch_episode_stats(batch, discount=1.0)
    np.testing.assert_array_equal(stats['stages_completed'], [1.0, 3.0])
    np.testing.assert_allclose(stats['velocity'], [2.0, 6.0])
    np.testing.assert_allclose(stats['return'], [3.0, 4.0])
    without = batch_episode_stats(_batch([2], [0], [0.0, 0.0], {}), discount=1.0)
    assert 'stages_completed' not in without and 'velocity' not in without


def test_summarize_pools_the_episodes() -> None:
    base = {
        'return': np.array([1.0, 3.0]),
        'discounted_return': np.array([1.0, 3.0]),
        'length': np.array([2.0, 4.0]),
        'success': np.array([1.0, 0.0]),
        'terminated': np.array([0.0, 1.0]),
    }
    summary = summarize(
        {**base, 'stages_completed': np.array([3.0, 0.0]), 'velocity': np.array([2.0, 6.0])}
    )
    assert summary['StagesCompleted'] == 1.5 and summary['Velocity'] == 4.0
    assert 'StagesCompleted' not in summarize(base) and 'Velocity' not in summarize(base)


class _ScriptedEnv:
    """A garage-like env whose episode is fixed lists of ``x_velocity`` and stages."""

    def __init__(self, velocities: list[float], stages: list[float]) -> None:
        self._velocities, self._stages, self._t = velocities, stages, 0

    def reset(self) -> tuple[np.ndarray, dict]:
        self._t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: np.ndarray) -> EnvStep:
        t = self._t
        self._t += 1
        step_type = StepType.TERMINAL if self._t == len(self._velocities) else StepType.MID
        info = {
            'x_velocity': self._velocities[t],
            'stages_completed': self._stages[t],
            'success': 0.0,
        }
        return EnvStep(SPEC, action, 1.0, np.zeros(2, np.float32), info, step_type)


class _ZeroPolicy:
    """Deterministic policy: mean action 0 for every observation."""

    def reset(self) -> None:
        pass

    def get_actions(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        actions = np.zeros((len(observations), 1), np.float32)
        return actions, {'mean': actions}


def _scripted_envs() -> list[_ScriptedEnv]:
    # Task 0: velocities (1, 3) -> mean 2, last stage 1. Task 1: (4, 4, 7) -> 5, last stage 3.
    return [_ScriptedEnv([1.0, 3.0], [0.0, 1.0]), _ScriptedEnv([4.0, 4.0, 7.0], [1.0, 2.0, 3.0])]


def test_evaluate_reports_mean_velocity_and_last_stage() -> None:
    stats, task_ids = evaluate(
        _ZeroPolicy(), _scripted_envs(), episodes_per_task=2, max_episode_length=10, discount=1.0
    )
    np.testing.assert_array_equal(task_ids, [0, 1, 0, 1])
    np.testing.assert_allclose(stats['velocity'], [2.0, 5.0, 2.0, 5.0])
    np.testing.assert_array_equal(stats['stages_completed'], [1.0, 3.0, 1.0, 3.0])
    assert summarize(stats)['Velocity'] == 3.5  # (2 + 5) / 2


class _Learner(MultiTaskLearner):
    def replay_sizes(self) -> np.ndarray:
        return np.zeros(self.n_tasks, np.int64)


def _learner(exploration_policy: _ZeroPolicy | None) -> _Learner:
    return _Learner(
        2,
        _ZeroPolicy(),
        exploration_policy,
        sampler=None,
        test_envs=_scripted_envs(),
        max_episode_length=10,
        steps_per_epoch=1,
        discount=1.0,
        num_evaluation_episodes=2,
        evaluation_frequency=1,
        evaluate_before_training=False,
    )


def _clear_tabular() -> None:
    """Empties dowel's tabular; marking the values as read first keeps dowel from warning that
    no output took them (no output is set up here)."""
    tabular.mark_all()
    tabular.clear()


@pytest.fixture
def clean_tabular():
    _clear_tabular()
    yield tabular
    _clear_tabular()


def test_train_stages_completed_is_a_mean_over_tasks(clean_tabular) -> None:
    # Task 0: episodes ending at stages 1 and 3 (mean 2); task 1: one episode ending at 0.
    # Train/StagesCompleted = (2 + 0) / 2 = 1, not the pooled (1 + 3 + 0) / 3.
    rounds = [
        _batch([2, 3], [0, 1], [0.0] * 5, {'stages_completed': [0, 1, 0, 0, 0]}),
        _batch([2], [0], [0.0] * 2, {'stages_completed': [2, 3]}),
    ]
    _learner(None)._record_training(rounds, np.zeros(2, np.int64), 0)
    values = clean_tabular.as_dict
    assert values['Train/StagesCompleted'] == 1.0
    assert values['Train/Task0/StagesCompleted'] == 2.0
    assert values['Train/Task1/StagesCompleted'] == 0.0


def test_no_train_stages_without_the_info(clean_tabular) -> None:
    _learner(None)._record_training([_batch([2], [0], [0.0, 0.0], {})], np.zeros(2, np.int64), 0)
    assert not any('StagesCompleted' in key for key in clean_tabular.as_dict)


class _TextLines(LogOutput):
    """A dowel output that keeps the text lines logged (``_evaluate`` logs its progress)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @property
    def types_accepted(self) -> tuple[type, ...]:
        return (str,)

    def record(self, data: Any, prefix: str = '') -> None:
        self.lines.append(prefix + data)


def test_evaluation_and_mixture_velocity(clean_tabular) -> None:
    text = _TextLines()
    logger.add_output(text)
    learner = _learner(_ZeroPolicy())
    try:
        learner._record_evaluation(learner._evaluate())
    finally:
        logger.remove_output_type(_TextLines)
    assert text.lines == ['Evaluating Evaluation ...', 'Evaluating Evaluation/Mixture ...']
    values = clean_tabular.as_dict
    for prefix in ('Evaluation/', 'Evaluation/Mixture/'):
        assert values[f'{prefix}Velocity'] == 3.5  # one episode per task: (2 + 5) / 2
        assert values[f'{prefix}StagesCompleted'] == 2.0  # (1 + 3) / 2
    # Between evaluations the keys are still recorded, as NaN (dowel fixes its columns).
    _clear_tabular()
    learner._record_evaluation(None)
    assert np.isnan(clean_tabular.as_dict['Evaluation/Mixture/Velocity'])
