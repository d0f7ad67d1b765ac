"""Multi-task SAC with shared parameters: the release's ``SAC`` class.

``sac``, ``mtsac`` and ``qmp_sac`` train one multihead (or fully shared) actor and twin critics
on one replay buffer holding every task's data. Each gradient step samples a mixed minibatch;
every sample uses its own task's head and, for ``mtsac``/``qmp_sac``, its own task's temperature
(``sac`` has one temperature). The temperature loss is the release's ``SAC`` form
−α·(log π + H̄) (``sac_losses.alpha_temperature_objective``). ``qmp_sac`` is ``mtsac`` with the
Q-switch mixture over the heads as ``exploration_policy`` (paper §4): the learner is unchanged.
With ``--use_pc_grad`` the critic and actor gradients (and the temperature's, unless
``--skip_alpha_pc_grad``) are combined by PCGrad from per-task losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from garage import Environment, EnvSpec
from garage.np.policies import Policy
from garage.sampler import Sampler

from learning.algorithms import sac_losses
from learning.algorithms.sac_base import SACLearner, SACSettings
from learning.networks import CriticsOnRows, PolicyOnRows
from learning.networks.multihead import MultiheadTanhGaussianPolicy, MultiheadTwinCritics
from learning.optim import TaskAdam
from learning.pcgrad import pcgrad_backward
from learning.replay import SharedReplayBuffer


def _task_sums_and_counts(
    values: torch.Tensor, task_ids: torch.Tensor, n_tasks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., N) sums of ``values`` (..., B) over each task's samples and the (N,) sample
    counts. Counted by ``index_add``, not ``bincount``: on a GPU bincount reads the largest id
    back to the host to size its output, a synchronisation in every gradient step."""
    sums = values.new_zeros(values.shape[:-1] + (n_tasks,)).index_add(-1, task_ids, values)
    counts = task_ids.new_zeros(n_tasks).index_add_(0, task_ids, torch.ones_like(task_ids))
    return sums, counts


def per_task_means(
    values: torch.Tensor, task_ids: torch.Tensor, n_tasks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., N) float64 mean of ``values`` (..., B) over each task's samples (NaN for tasks
    absent from the batch) and the (N,) mask of the tasks present, both on ``values``' device."""
    sums, counts = _task_sums_and_counts(values.detach().double(), task_ids, n_tasks)
    return sums / counts, counts > 0


def task_mean_losses(
    per_sample: torch.Tensor, task_ids: torch.Tensor, n_tasks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) each task's mean of the (B,) ``per_sample`` loss (0 for tasks absent from the
    batch, with a zero gradient) and the (N,) mask of the tasks present: PCGrad's per-task
    losses, without splitting the batch by ``torch.unique`` or a boolean mask (each reads a
    size back from the device).

    Each sample's gradient is 1/count of its task, as from a mean over the task's samples.
    """
    sums, counts = _task_sums_and_counts(per_sample, task_ids, n_tasks)
    return sums / counts.clamp(min=1), counts > 0


class MultiTaskSAC(SACLearner):
    """Parameter-sharing SAC; see the module docstring.

    Args:
        env_spec: spec of the raw per-task observations.
        policies: the multihead (or shared) actor.
        critics: the multihead (or shared) twin critics.
        replay_buffer: one buffer for all tasks.
        sampler: garage sampler over the N training envs.
        policy: the actor as a routing policy (evaluated under ``Evaluation/``).
        test_envs: one evaluation env per task.
        settings: the SAC flags.
        per_task_temperature: one α per task (``mtsac``, ``qmp_sac``) or one for all (``sac``).
        exploration_policy: the data-collection policy (the Q-switch mixture for ``qmp_sac``).
        use_pc_grad, skip_alpha_pc_grad: the CLI flags of the same names.
    """

    policies: MultiheadTanhGaussianPolicy
    critics: MultiheadTwinCritics
    target_critics: MultiheadTwinCritics
    replay_buffer: SharedReplayBuffer

    def __init__(
        self,
        env_spec: EnvSpec,
        policies: MultiheadTanhGaussianPolicy,
        critics: MultiheadTwinCritics,
        replay_buffer: SharedReplayBuffer,
        sampler: Sampler,
        policy: Policy,
        test_envs: list[Environment],
        settings: SACSettings,
        *,
        per_task_temperature: bool,
        exploration_policy: Policy | None = None,
        use_pc_grad: bool = False,
        skip_alpha_pc_grad: bool = True,
    ) -> None:
        super().__init__(
            env_spec,
            policies,
            critics,
            replay_buffer,
            sampler,
            policy,
            test_envs,
            settings,
            n_tasks=policies.n_tasks,
            exploration_policy=exploration_policy,
            n_temperatures=policies.n_tasks if per_task_temperature else 1,
            evaluate_before_training=True,
        )
        self.per_task_temperature = per_task_temperature
        self.use_pc_grad = use_pc_grad
        self.skip_alpha_pc_grad = skip_alpha_pc_grad
        # Fused: one kernel per step instead of a dozen passes per parameter; the same update
        # to float rounding, as for the separated learners' TaskAdam (learning/optim.py).
        self.policy_optimizer = torch.optim.Adam(policies.parameters(), lr=settings.lr, fused=True)
        self.qf1_optimizer = torch.optim.Adam(critics.q1.parameters(), lr=settings.lr, fused=True)
        self.qf2_optimizer = torch.optim.Adam(critics.q2.parameters(), lr=settings.lr, fused=True)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=settings.lr, fused=True)

    def _optimizers(self) -> Sequence[TaskAdam | torch.optim.Optimizer]:
        return [self.policy_optimizer, self.qf1_optimizer, self.qf2_optimizer, self.alpha_optimizer]

    def train_once(self, trainer: Any) -> tuple[Any, np.ndarray, int]:
        """Collect (``min_buffer_size`` steps while the buffer is below it, else ``batch_size``),
        store, then ``gradient_steps_per_itr`` steps once the buffer holds ``min_buffer_size``."""
        warming_up = self.replay_buffer.size < self.min_buffer_size
        episodes = trainer.obtain_episodes(
            trainer.step_itr, self.min_buffer_size if warming_up else None
        )
        collected = self.replay_buffer.add_episodes(episodes)
        self.env_steps += collected
        steps = 0
        if self.replay_buffer.size >= self.min_buffer_size:
            for _ in range(self.gradient_steps_per_itr):
                self._gradient_step()
                steps += 1
        self.flush_step_stats()
        self._log_round(warming_up, collected, steps)
        return episodes, np.full(self.n_tasks, steps, dtype=np.int64), steps

    def _minimize(
        self, task_ids: torch.Tensor, *terms: tuple[torch.Tensor, torch.optim.Optimizer, bool]
    ) -> None:
        """One optimizer step per (per-sample loss, optimizer, PCGrad?) term: on the batch
        mean, or on PCGrad's combination of the task means.

        The terms' optimizers hold disjoint parameters and no loss reaches another term's
        parameters, so the plain terms share one backward pass of their summed means: each
        parameter gets exactly the gradient of its own term's mean (∂(Σ_k L_k)/∂L_k = 1), with
        one autograd traversal instead of one per optimizer.
        """
        plain = []
        for per_sample, optimizer, pc_grad in terms:
            optimizer.zero_grad()
            if pc_grad:
                losses, present = task_mean_losses(per_sample, task_ids, self.n_tasks)
                parameters = [p for group in optimizer.param_groups for p in group['params']]
                pcgrad_backward(list(losses), parameters, present=present)
            else:
                plain.append(per_sample.mean())
        if plain:
            torch.stack(plain).sum().backward()
        for _, optimizer, _ in terms:
            optimizer.step()

    def _gradient_step(self) -> None:
        """One SAC step; its per-task means are kept for the log (tasks absent from the
        minibatch keep their previous values)."""
        values, task_ids = self._update()
        means, present = per_task_means(torch.stack(list(values.values())), task_ids, self.n_tasks)
        self._keep_step_stats(dict(zip(values, means, strict=True)), present)

    def _update(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One SAC step on a mixed minibatch: critics, then actor and temperature (from the same
        actor sample, as in the release), then targets. Returns the per-sample statistics and
        each sample's task."""
        batch = self.replay_buffer.sample_batch(self.buffer_batch_size, self._device())
        task_ids = batch.task_ids
        assert task_ids is not None  # a mixed batch says whose each transition is
        log_alpha = self.log_alpha[
            task_ids if self.per_task_temperature else torch.zeros_like(task_ids)
        ]
        alpha = log_alpha.detach().exp()
        policy = PolicyOnRows(self.policies, task_ids)
        critics = CriticsOnRows(self.critics, task_ids)

        target = sac_losses.td_target(
            batch,
            policy,
            CriticsOnRows(self.target_critics, task_ids),
            alpha,
            self.discount,
            self.reward_scale,
        )
        qf1_errors, qf2_errors, q1, q2 = sac_losses.critic_errors(batch, critics, target)
        pc_grad = self.use_pc_grad
        self._minimize(
            task_ids,
            (qf1_errors, self.qf1_optimizer, pc_grad),
            (qf2_errors, self.qf2_optimizer, pc_grad),
        )

        objective, log_pi, entropy = sac_losses.actor_objective(
            batch.states, policy, critics, alpha
        )
        alpha_objective = sac_losses.alpha_temperature_objective(
            log_alpha, log_pi, self.target_entropy
        )
        self._minimize(
            task_ids,
            (objective, self.policy_optimizer, pc_grad),
            (alpha_objective, self.alpha_optimizer, pc_grad and not self.skip_alpha_pc_grad),
        )
        self._update_targets()
        return (
            {
                'PolicyLoss': objective,
                'Qf1Loss': qf1_errors,
                'Qf2Loss': qf2_errors,
                'AlphaLoss': alpha_objective,
                'AlphaTemperature': alpha,
                'QTarget': target,
                'Qf1': q1,
                'Qf2': q2,
                'LogPi': log_pi,
                'Entropy': entropy,
            },
            task_ids,
        )
