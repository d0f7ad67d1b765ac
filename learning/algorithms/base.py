"""What every multi-task learner here shares: the epoch loop, evaluation, and logging.

A learner supplies ``train_once`` (one sampling round and its gradient steps) and keeps the
per-task statistics its gradient steps return in ``self.last_stats`` (SAC's) and
``self.method_stats`` (its parts'); this base runs ``steps_per_epoch`` rounds per epoch,
evaluates the task policies (and, for QMP, the mixture) on the test envs, and records the
metrics documented in the README. QMP enters only as ``exploration_policy``, garage's seam for a
policy that collects data but is not trained (paper §4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from dowel import logger, tabular
from garage import Environment
from garage.np.algos import RLAlgorithm
from garage.np.policies import Policy
from garage.sampler import Sampler

from infrastructure.evaluation import LockstepEvaluator
from infrastructure.logging_utils import nanmean, record, record_per_task
from infrastructure.metrics import (
    EVALUATION_KEYS,
    batch_episode_stats,
    episode_task_ids,
    selection_frequencies,
    split_by_task,
    summarize,
)
from infrastructure.torch_threads import acting_threads
from infrastructure.videos import TrainingVideos

# Per-task SAC diagnostics of each task's last gradient step of the epoch.
SAC_STAT_KEYS = (
    'PolicyLoss',
    'Qf1Loss',
    'Qf2Loss',
    'AlphaLoss',
    'AlphaTemperature',
    'QTarget',
    'Qf1',
    'Qf2',
    'LogPi',
    'Entropy',
)


# The epoch phases that act in envs (per-step policy calls) rather than train.
ACTING_PHASES = frozenset({'Collect', 'Eval'})


class EpochClock:
    """Wall-clock seconds of an epoch's phases, logged as ``Time/...`` (README, "Logged
    metrics").

    Collection happens inside each learner's ``train_once`` (``trainer.obtain_episodes``) and
    the snapshot inside garage's epoch generator (``trainer.save``, after the epoch's body and
    before the row is written), so the clock wraps those two trainer methods for the duration
    of ``train`` and restores them afterwards: ``Time/Update`` is the rounds' time less their
    collection, ``Time/Snapshot`` and ``Time/Epoch`` (everything from the epoch's start to the
    end of its snapshot) are recorded by the wrapped ``save``.

    The acting phases (``ACTING_PHASES``) run inside ``acting_threads()``: one torch thread
    for their per-step policy calls, the gradient steps keep ``--torch_threads``
    (``infrastructure/torch_threads.py``).
    """

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer
        self._seconds: dict[str, float] = {}
        self._epoch_start = time.perf_counter()
        self._wrapped = {
            name: getattr(trainer, name)
            for name in ('obtain_episodes', 'save')
            if hasattr(trainer, name)
        }
        if 'obtain_episodes' in self._wrapped:
            trainer.obtain_episodes = self._timed_obtain_episodes
        if 'save' in self._wrapped:
            trainer.save = self._timed_save

    def start_epoch(self) -> None:
        self._seconds = {'Collect': 0.0, 'Rounds': 0.0, 'Eval': 0.0}
        self._epoch_start = time.perf_counter()

    def time(self, phase: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, its seconds added to ``phase`` (an acting phase on
        one torch thread)."""
        start = time.perf_counter()
        try:
            if phase in ACTING_PHASES:
                with acting_threads():
                    return function(*args, **kwargs)
            return function(*args, **kwargs)
        finally:
            self._seconds[phase] = self._seconds.get(phase, 0.0) + time.perf_counter() - start

    def _timed_obtain_episodes(self, *args: Any, **kwargs: Any) -> Any:
        return self.time('Collect', self._wrapped['obtain_episodes'], *args, **kwargs)

    def _timed_save(self, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        self._wrapped['save'](*args, **kwargs)
        end = time.perf_counter()
        tabular.record('Time/Snapshot', end - start)
        tabular.record('Time/Epoch', end - self._epoch_start)

    def record(self, env_steps: int) -> None:
        """Records the epoch's phase times and its collection speed."""
        collect = self._seconds['Collect']
        tabular.record('Time/Collect', collect)
        tabular.record('Time/Update', self._seconds['Rounds'] - collect)
        tabular.record('Time/Eval', self._seconds['Eval'])
        tabular.record('Train/EnvStepsPerSecond', env_steps / collect if collect > 0 else np.nan)

    def detach(self) -> None:
        """Gives the trainer its own methods back."""
        for name in self._wrapped:
            delattr(self._trainer, name)
        self._wrapped = {}


class MultiTaskLearner(RLAlgorithm):
    """Epoch loop, evaluation and logging of a multi-task off-policy learner.

    Args:
        n_tasks: number of tasks.
        policy: the task policies as one routing policy (evaluated under ``Evaluation/``).
        exploration_policy: the data-collection policy (the Q-switch mixture for QMP), or None
            to collect with ``policy``.
        sampler: garage sampler over the N training envs.
        test_envs: one evaluation env per task.
        evaluate_before_training: evaluate at epoch 0 before training (the release's SAC
            family) instead of after it (its DnC family).
        evaluation_workers: processes stepping the evaluation envs (``--n_workers``).
        Remaining arguments are the CLI flags of the same names.
    """

    def __init__(
        self,
        n_tasks: int,
        policy: Policy,
        exploration_policy: Policy | None,
        sampler: Sampler,
        test_envs: list[Environment],
        *,
        max_episode_length: int,
        steps_per_epoch: int,
        discount: float,
        num_evaluation_episodes: int,
        evaluation_frequency: int,
        evaluate_before_training: bool,
        evaluation_workers: int = 1,
    ) -> None:
        self.n_tasks = n_tasks
        self.policy = policy
        self.exploration_policy = exploration_policy
        self._sampler = sampler
        self._test_envs = test_envs
        self.max_episode_length = max_episode_length
        self.steps_per_epoch = steps_per_epoch
        self.discount = discount
        self.num_evaluation_episodes = num_evaluation_episodes
        self.evaluation_frequency = evaluation_frequency
        self.evaluate_before_training = evaluate_before_training
        self.evaluation_workers = evaluation_workers
        self.env_steps = np.zeros(n_tasks, dtype=np.int64)
        self.last_stats = {key: np.full(n_tasks, np.nan) for key in SAC_STAT_KEYS}
        # Method-specific per-task diagnostics (e.g. UDS's kept share), logged like last_stats.
        self.method_stats: dict[str, np.ndarray] = {}
        self._evaluation_keys: tuple[str, ...] = EVALUATION_KEYS  # fixed by the first evaluation
        # All evaluation episodes in lockstep; its env copies are built at the first evaluation
        # (from the test envs, not reset before it), so a learner that never evaluates pays none.
        self._evaluator: LockstepEvaluator | None = None
        # ``--vis_*``: set by the experiment when videos are asked for.
        self.videos: TrainingVideos | None = None

    @property
    def sampling_policy(self) -> Policy:
        """The policy that collects the training data: the Q-switch mixture with QMP
        (``exploration_policy``), else the task policies."""
        return self.policy if self.exploration_policy is None else self.exploration_policy

    def train_once(self, trainer: Any) -> tuple[Any, np.ndarray, int]:
        """One sampling round and its gradient steps; returns the episodes, the (N,) gradient
        steps each task's networks took, and the number of gradient steps in all."""
        raise NotImplementedError

    def replay_sizes(self) -> np.ndarray:
        """(N,) transitions stored per task."""
        raise NotImplementedError

    def after_epoch(self, epoch: int) -> None:
        """Hook run at the end of every epoch, after evaluation (DnC's distillation)."""

    @property
    def test_envs(self) -> list[Environment]:
        """The per-task evaluation envs (``run_policy.py`` replays on them)."""
        return self._test_envs

    def shutdown_sampler(self) -> None:
        """Stops the sampler's workers (Ray actors, worker processes). garage leaves them running
        when training raises; the experiment calls this then. The attribute keeps garage's name,
        ``_sampler``, which garage's ``Trainer`` reads."""
        self._sampler.shutdown_worker()
        self._stop_evaluation_workers()

    def _stop_evaluation_workers(self) -> None:
        evaluator = getattr(self, '_evaluator', None)  # (older snapshots lack the attribute)
        if evaluator is not None:
            evaluator.stop_workers()

    def train(self, trainer: Any) -> float:
        """garage's entry point: per epoch, ``steps_per_epoch`` rounds, then evaluation."""
        average_return = float('nan')
        clock = EpochClock(trainer)
        try:
            for epoch in trainer.step_epochs():
                clock.start_epoch()
                evaluation = None
                if self.evaluate_before_training and epoch == 0:
                    evaluation = clock.time('Eval', self._evaluate)
                rounds, gradient_steps, total_steps = [], np.zeros(self.n_tasks, np.int64), 0
                for _ in range(self.steps_per_epoch):
                    episodes, steps, total = clock.time('Rounds', self.train_once, trainer)
                    rounds.append(episodes)
                    gradient_steps += steps
                    total_steps += total
                due = epoch % self.evaluation_frequency == 0
                if due and not (self.evaluate_before_training and epoch == 0):
                    evaluation = clock.time('Eval', self._evaluate)
                videos = getattr(self, 'videos', None)  # (older snapshots lack the attribute)
                if evaluation is not None and videos is not None and videos.settings.due(epoch):
                    clock.time(
                        'Eval',
                        videos.record,
                        epoch,
                        int(self.env_steps.sum()),
                        self._evaluation_modes(),
                        self._test_envs,
                        self.max_episode_length,
                        self.discount,
                    )
                average_return = self._record_training(rounds, gradient_steps, total_steps)
                self._record_evaluation(evaluation)
                clock.time('Rounds', self.after_epoch, epoch)  # DnC's distillation: an update
                clock.record(sum(int(np.sum(episodes.lengths)) for episodes in rounds))
                trainer.step_itr += 1
        finally:
            clock.detach()
            self._stop_evaluation_workers()
        return average_return

    def _log_round(self, warming_up: bool, collected: np.ndarray, total_steps: int) -> None:
        logger.log(
            f'{"warm-up " if warming_up else ""}round: {collected.sum()} env steps, '
            f'{total_steps} gradient steps'
        )

    def _record_training(
        self, rounds: list[Any], gradient_steps: np.ndarray, total_steps: int
    ) -> float:
        """Records this epoch's training metrics; returns the mean per-task return."""
        task_returns = np.full(self.n_tasks, np.nan)
        task_success = np.full(self.n_tasks, np.nan)
        task_stages = np.full(self.n_tasks, np.nan)
        round_stats = [batch_episode_stats(episodes, self.discount) for episodes in rounds]
        stats = {key: np.concatenate([s[key] for s in round_stats]) for key in round_stats[0]}
        task_ids = np.concatenate([episode_task_ids(episodes) for episodes in rounds])
        for task_id, task_stats in enumerate(split_by_task(stats, task_ids, self.n_tasks)):
            if len(task_stats['return']):
                task_returns[task_id] = task_stats['return'].mean()
                task_success[task_id] = task_stats['success'].mean()
                if 'stages_completed' in task_stats:
                    task_stages[task_id] = task_stats['stages_completed'].mean()
        # Multistage envs (Jaco): the release's Train/StagesCompleted, a mean over tasks.
        stages = {'StagesCompleted': task_stages} if 'stages_completed' in stats else {}
        average_return = nanmean(task_returns)
        replay_sizes = self.replay_sizes()
        record(
            'Train/',
            {
                'AverageReturn': average_return,
                'SuccessRate': nanmean(task_success),
                **{key: nanmean(values) for key, values in stages.items()},
                'GradientSteps': total_steps,
                'ReplayBufferSize': replay_sizes.sum(),
                **{
                    key: nanmean(self.last_stats[key])
                    for key in ('PolicyLoss', 'Qf1Loss', 'Qf2Loss', 'AlphaTemperature', 'Entropy')
                },
                **{key: nanmean(values) for key, values in self.method_stats.items()},
            },
        )
        per_task = {
            'AverageReturn': task_returns,
            'SuccessRate': task_success,
            **stages,
            'EnvSteps': self.env_steps,
            'GradientSteps': gradient_steps,
            'ReplayBufferSize': replay_sizes,
            **self.last_stats,
            **self.method_stats,
        }
        if self.exploration_policy is not None:
            frequencies = selection_frequencies(
                np.concatenate([e.env_infos['task_id'] for e in rounds]),
                np.concatenate([e.agent_infos['selected_policy'] for e in rounds]),
                self.n_tasks,
            )
            per_task['OwnPolicyFreq'] = np.diag(frequencies)
            for policy_id in range(self.n_tasks):
                per_task[f'Policy{policy_id}Freq'] = frequencies[:, policy_id]
            record('Train/', {'OwnPolicyFreq': nanmean(np.diag(frequencies))})
        record_per_task('Train/', per_task)
        return average_return

    def _episodes_per_task(self) -> int:
        return max(self.num_evaluation_episodes // self.n_tasks, 1)

    def _evaluation_modes(self) -> dict[str, Policy]:
        modes = {'Evaluation/': self.policy}
        if self.exploration_policy is not None:
            modes['Evaluation/Mixture/'] = self.exploration_policy
        return modes

    def _evaluate(self) -> dict[str, tuple[dict[str, float], np.ndarray, np.ndarray]]:
        """Deterministic episodes of every evaluation mode: summary and per-task arrays."""
        results = {}
        evaluator = getattr(self, '_evaluator', None)  # (older snapshots lack the attribute)
        if evaluator is None:
            evaluator = self._evaluator = LockstepEvaluator(
                self._test_envs,
                self._episodes_per_task(),
                n_workers=getattr(self, 'evaluation_workers', 1),
            )
        for prefix, policy in self._evaluation_modes().items():
            logger.log(f'Evaluating {prefix[:-1]} ...')
            stats, task_ids = evaluator.evaluate(policy, self.max_episode_length, self.discount)
            per_task = split_by_task(stats, task_ids, self.n_tasks)
            summary = summarize(stats)
            self._evaluation_keys = tuple(summary)
            results[prefix] = (
                summary,
                np.array([t['success'].mean() for t in per_task]),
                np.array([t['return'].mean() for t in per_task]),
            )
        return results

    def _record_evaluation(self, results: dict | None) -> None:
        """Records ``results``, or NaN for every evaluation key when there was none."""
        for prefix in self._evaluation_modes():
            if results is None:
                summary = {key: np.nan for key in self._evaluation_keys}
                task_success = task_return = np.full(self.n_tasks, np.nan)
            else:
                summary, task_success, task_return = results[prefix]
            record(prefix, summary)
            record_per_task(prefix, {'SuccessRate': task_success, 'AverageReturn': task_return})
        tabular.record('Evaluation/Evaluated', float(results is not None))
