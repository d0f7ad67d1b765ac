"""N separated SAC learners, one per task: the release's ``DnCSAC``.

``dnc_sac`` collects task i's data with π_i; ``qmp_dnc`` is the same learner with the Q-switch
mixture as ``exploration_policy`` (garage's seam for a behaviour policy that only collects data),
so QMP changes who collects data and nothing else (paper §4). The sampling round is
``per_task.py``'s; the gradient step (``_update``) is SAC's, every task's networks stepping
together as one batched update (critics, then actors, then temperatures).

The learner is given its optional parts:

* ``data_sharing`` (UDS, ``uds_dnc``/``qmp_uds_dnc``; ``learning/data_sharing.py``) extends
  each task's minibatch with other tasks' relabelled transitions;
* ``penalty`` (DnC's KL term, a non-zero ``--kl_coeff``; ``learning/dnc_regularization.py``)
  adds the divergence between task policies to the actor losses;
* ``distillation`` (``--distillation_period``; ``learning/distillation.py``) periodically
  distils all task policies into one and copies it back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from garage import Environment, EnvSpec
from garage.sampler import Sampler

from learning.algorithms import sac_losses
from learning.algorithms.per_task import PerTaskSACLearner, allocate_gradient_steps
from learning.algorithms.sac_base import SACSettings
from learning.batches import to_device
from learning.data_sharing import DataSharing
from learning.distillation import Distillation
from learning.dnc_regularization import DnCPenalty
from learning.networks import EACH_TASK, CriticsOnRows, PolicyOnRows
from learning.networks.decaf import DecafTwinCritics
from learning.networks.separate import TaskTanhGaussianPolicies, TaskTwinCritics
from learning.optim import TaskAdam
from learning.policies.base import TorchSamplingPolicy
from learning.replay import PerTaskReplayBuffer

__all__ = ['DnCSAC', 'allocate_gradient_steps']


class DnCSAC(PerTaskSACLearner):
    """Separated per-task SAC; see the module docstring.

    Args:
        env_spec: spec of the raw per-task observations.
        policies: the N task actors.
        critics: the N task twin critics (or DECAF's).
        replay_buffer: one buffer per task.
        sampler: garage sampler over the N training envs.
        policy: the task policies as one routing policy (evaluated under ``Evaluation/``).
        test_envs: one evaluation env per task.
        settings: the SAC flags.
        exploration_policy: the data-collection policy (the Q-switch mixture for QMP); None
            collects with the task policies.
        data_sharing, penalty, distillation: the optional parts (module docstring).
    """

    policies: TaskTanhGaussianPolicies
    critics: TaskTwinCritics | DecafTwinCritics
    target_critics: TaskTwinCritics | DecafTwinCritics

    def __init__(
        self,
        env_spec: EnvSpec,
        policies: TaskTanhGaussianPolicies,
        critics: TaskTwinCritics | DecafTwinCritics,
        replay_buffer: PerTaskReplayBuffer,
        sampler: Sampler,
        policy: TorchSamplingPolicy,
        test_envs: list[Environment],
        settings: SACSettings,
        *,
        exploration_policy: TorchSamplingPolicy | None = None,
        data_sharing: DataSharing | None = None,
        penalty: DnCPenalty | None = None,
        distillation: Distillation | None = None,
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
            n_temperatures=policies.n_tasks,
            evaluate_before_training=False,
        )
        self.data_sharing = data_sharing
        self.penalty = penalty
        self.distillation = distillation
        self.policy_optimizer = TaskAdam(policies.parameters(), self.n_tasks, settings.lr)
        self.critic_optimizer = TaskAdam(critics.parameters(), self.n_tasks, settings.lr)
        self.alpha_optimizer = TaskAdam([self.log_alpha], self.n_tasks, settings.lr)
        parts = (data_sharing, penalty)
        self.method_stats = {
            key: np.full(self.n_tasks, np.nan)
            for part in parts
            if part is not None
            for key in part.stat_keys
        }

    @property
    def regularize(self) -> bool:
        """Whether the actor losses carry DnC's penalty."""
        return self.penalty is not None

    @property
    def central_policy(self) -> TaskTanhGaussianPolicies | None:
        return None if self.distillation is None else self.distillation.central_policy

    @property
    def central_optimizer(self) -> torch.optim.Adam | None:
        return None if self.distillation is None else self.distillation.central_optimizer

    def _optimizers(self) -> Sequence[TaskAdam | torch.optim.Optimizer]:
        return [self.policy_optimizer, self.critic_optimizer, self.alpha_optimizer]

    def _update(self, tasks: np.ndarray, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """One SAC step (critics, then actor, then temperature) for the tasks in ``tasks``."""
        has_data = self.replay_buffer.sizes() > 0
        sampled = has_data if self.penalty is not None else tasks
        batch = self._sample_batch(sampled, self.buffer_batch_size)
        own_states = batch.states  # the penalty's states: the tasks' own, never shared ones
        weights = torch.ones_like(batch.rewards)
        stats: dict[str, torch.Tensor] = {}
        if self.data_sharing is not None:
            batch, weights, sharing_stats = self.data_sharing.extend(
                batch, self.replay_buffer, has_data, self.critics, self.buffer_batch_size
            )
            stats.update(sharing_stats)
        alpha = self.log_alpha.detach().exp()
        row_alpha = alpha[:, None]  # one temperature per task row
        policies = PolicyOnRows(self.policies, EACH_TASK)

        def weighted_mean(values: torch.Tensor) -> torch.Tensor:
            """Per-task mean over each row's kept samples."""
            return (values * weights).sum(1) / weights.sum(1)

        stats.update(self._critic_step(batch, policies, row_alpha, tasks, mask, weighted_mean))

        objective, log_pi, entropy = sac_losses.actor_objective(
            batch.states, policies, CriticsOnRows(self.critics, EACH_TASK), row_alpha
        )
        policy_loss = weighted_mean(objective)
        if self.penalty is not None:
            penalty, penalty_stats = self.penalty(
                self.policies, own_states, to_device(has_data, self._device())
            )
            policy_loss = policy_loss + penalty
            stats.update(penalty_stats)
        self.policy_optimizer.zero_grad()
        (policy_loss * mask.float()).sum().backward()
        self.policy_optimizer.step(tasks)

        alpha_loss = weighted_mean(
            sac_losses.temperature_objective(self.log_alpha[:, None], log_pi, self.target_entropy)
        )
        self.alpha_optimizer.zero_grad()
        (alpha_loss * mask.float()).sum().backward()
        self.alpha_optimizer.step(tasks)

        return {
            'PolicyLoss': policy_loss,
            'AlphaLoss': alpha_loss,
            'AlphaTemperature': alpha,
            'LogPi': weighted_mean(log_pi),
            'Entropy': weighted_mean(entropy),
            **stats,
        }

    def after_epoch(self, epoch: int) -> None:
        """DnC distillation every ``--distillation_period`` epochs (never at epoch 0)."""
        if self.distillation is not None and self.distillation.due(epoch):
            self.distill()

    def distill(self) -> None:
        """Distils the task policies into the central one and copies it back
        (``learning/distillation.py``)."""
        if self.distillation is None:
            raise RuntimeError('distill() needs a learner built with a Distillation')
        self.distillation.distill(self.policies, self.replay_buffer)

    def to(self, device: torch.device | str | None = None) -> DnCSAC:
        super().to(device)
        if self.distillation is not None:
            self.distillation.to(self._device())
        if self.penalty is not None:
            self.penalty.to(self._device())
        return self
