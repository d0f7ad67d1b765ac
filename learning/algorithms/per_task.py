"""The sampling round of the learners with one replay buffer and one critic per task.

Per sampling round (``train_once``), shared by the separated learner (``dnc_sac.py``) and MCAL
(``mcal.py``):

1. collect ``batch_size`` env steps over the tasks (``min_buffer_size × N`` while any task buffer
   holds fewer than ``min_buffer_size``), route each episode to its task's buffer;
2. split ``gradient_steps_per_itr`` across tasks in proportion to the transitions each task
   collected in this round, at least one per task that collected data
   (``allocate_gradient_steps``);
3. run the gradient step of every task whose buffer holds ``min_buffer_size`` transitions; all
   tasks step together as one batched update, each task for its own number of steps
   (``TaskAdam`` leaves the others untouched); each task's target critics follow its updates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from learning.algorithms import sac_losses
from learning.algorithms.sac_base import SACLearner
from learning.batches import TransitionBatch, to_device
from learning.networks import EACH_TASK, CriticsOnRows, PolicyOnRows
from learning.networks.decaf import DecafTwinCritics
from learning.networks.separate import TaskTwinCritics
from learning.optim import TaskAdam
from learning.replay import PerTaskReplayBuffer


def allocate_gradient_steps(total_steps: int, collected: np.ndarray) -> np.ndarray:
    """Splits ``total_steps`` across tasks in proportion to the data each collected.

    ``steps_i = max(int(G · n_i / Σ_k n_k), 1)`` for a task that collected ``n_i > 0``
    transitions; a task that collected nothing gets no steps (the release stopped in a
    debugger there).
    """
    collected = np.asarray(collected, dtype=np.int64)
    total = collected.sum()
    if total == 0:
        return np.zeros_like(collected)
    steps = np.maximum((total_steps * collected / total).astype(np.int64), 1)
    return np.where(collected > 0, steps, 0)


class PerTaskSACLearner(SACLearner):
    """A SAC learner over per-task buffers and per-task critics; subclasses supply
    ``_update`` and a ``critic_optimizer`` over the critics' task slices."""

    replay_buffer: PerTaskReplayBuffer
    critics: TaskTwinCritics | DecafTwinCritics
    target_critics: TaskTwinCritics | DecafTwinCritics
    critic_optimizer: TaskAdam

    def train_once(self, trainer: Any) -> tuple[Any, np.ndarray, int]:
        """One sampling round and its gradient steps (see ``MultiTaskLearner.train_once``);
        a task's gradient step counts once per task, as in the release's per-task loop."""
        warming_up = bool((self.replay_buffer.sizes() < self.min_buffer_size).any())
        batch_size = self.min_buffer_size * self.n_tasks if warming_up else None
        episodes = trainer.obtain_episodes(trainer.step_itr, batch_size)
        collected = self.replay_buffer.add_episodes(episodes, self.sampling_policy.replay_key)
        self.env_steps += collected
        allocated = allocate_gradient_steps(self.gradient_steps_per_itr, collected)
        trainable = self.replay_buffer.sizes() >= self.min_buffer_size  # fixed until next round
        taken = np.zeros(self.n_tasks, dtype=np.int64)
        for step in range(int(allocated.max(initial=0))):
            active = allocated > step
            ready = active & trainable
            if ready.any():
                self._gradient_step(ready)
                taken += ready
            self._update_targets(active)
        self.flush_step_stats()
        self._log_round(warming_up, collected, int(taken.sum()))
        return episodes, taken, int(taken.sum())

    def _sample_batch(self, tasks: np.ndarray, batch_size: int) -> TransitionBatch:
        """(N, ``batch_size``) transitions, row i from task i's buffer (zeros where ``tasks``
        is false)."""
        return self.replay_buffer.sample_batch(batch_size, tasks, self._device())

    def _gradient_step(self, tasks: np.ndarray) -> None:
        """One gradient step of the tasks in ``tasks``; its statistics are kept for the log.

        The mask of the tasks that train goes to the device once here, for every loss of the
        step and for the statistics."""
        mask = to_device(tasks, self._device())
        stats = self._update(tasks, mask)
        self._keep_step_stats(stats, mask)

    def _update(self, tasks: np.ndarray, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The gradient step of the tasks in ``tasks`` (bool (N,) on the host; ``mask``: the
        same on the device); returns (N,) per-task statistics."""
        raise NotImplementedError

    def _critic_step(
        self,
        batch: TransitionBatch,
        policy: PolicyOnRows,
        alpha: torch.Tensor,
        tasks: np.ndarray,
        mask: torch.Tensor,
        per_task_mean: Callable[[torch.Tensor], torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """SAC's critic step of the tasks where ``tasks`` (bool (N,), on the host; ``mask``:
        the same on the device) is true on an (N, B) batch (row i task i's), each task's
        losses averaged over its row by ``per_task_mean``; returns the (N,) critic
        statistics."""
        target = sac_losses.td_target(
            batch,
            policy,
            CriticsOnRows(self.target_critics, EACH_TASK),
            alpha,
            self.discount,
            self.reward_scale,
        )
        qf1_errors, qf2_errors, q1, q2 = sac_losses.critic_errors(
            batch, CriticsOnRows(self.critics, EACH_TASK), target
        )
        qf1_loss, qf2_loss = per_task_mean(qf1_errors), per_task_mean(qf2_errors)
        self.critic_optimizer.zero_grad()
        ((qf1_loss + qf2_loss) * mask.float()).sum().backward()
        self.critic_optimizer.step(tasks)
        return {
            'Qf1Loss': qf1_loss,
            'Qf2Loss': qf2_loss,
            'QTarget': per_task_mean(target),
            'Qf1': per_task_mean(q1),
            'Qf2': per_task_mean(q2),
        }
