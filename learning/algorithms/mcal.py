"""Multi-critic actor learning (MCAL; the release's ``mcal`` and ``qmp_mcal``).

One multihead actor (a head per task) learns against N separate per-task critics, each critic
trained on its own task's buffer. The sampling round is ``per_task.py``'s (the steps are split
across tasks as in the separated learner). Per gradient step of task t: critic t takes a SAC
critic step on a batch of task t; then the actor and the single temperature take one step on a
batch with ``buffer_batch_size // N`` states of every task, each state acting through its
task's head and scored by its task's critic.

``qmp_mcal`` adds the Q-switch over the actor's heads, scored by the task's own critic (the
release could not construct it). Unlike the release, critics always see the same split
observations they were trained on (docs/deviations.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from garage import Environment, EnvSpec
from garage.sampler import Sampler

from learning.algorithms import sac_losses
from learning.algorithms.per_task import PerTaskSACLearner
from learning.algorithms.sac_base import SACSettings
from learning.batches import to_device
from learning.networks import EACH_TASK, CriticsOnRows, PolicyOnRows
from learning.networks.multihead import MultiheadTanhGaussianPolicy
from learning.networks.separate import TaskTwinCritics
from learning.optim import TaskAdam
from learning.policies.base import TorchSamplingPolicy
from learning.replay import PerTaskReplayBuffer


class MultiCriticActorLearning(PerTaskSACLearner):
    """MCAL; the arguments are ``DnCSAC``'s without its parts, ``policies`` a multihead
    actor."""

    policies: MultiheadTanhGaussianPolicy
    critics: TaskTwinCritics
    target_critics: TaskTwinCritics

    def __init__(
        self,
        env_spec: EnvSpec,
        policies: MultiheadTanhGaussianPolicy,
        critics: TaskTwinCritics,
        replay_buffer: PerTaskReplayBuffer,
        sampler: Sampler,
        policy: TorchSamplingPolicy,
        test_envs: list[Environment],
        settings: SACSettings,
        *,
        exploration_policy: TorchSamplingPolicy | None = None,
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
            n_temperatures=1,  # one temperature for the one actor
            evaluate_before_training=False,
        )
        self.policy_optimizer = torch.optim.Adam(policies.parameters(), lr=settings.lr)
        self.critic_optimizer = TaskAdam(critics.parameters(), self.n_tasks, settings.lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=settings.lr)

    def _optimizers(self) -> Sequence[TaskAdam | torch.optim.Optimizer]:
        return [self.policy_optimizer, self.critic_optimizer, self.alpha_optimizer]

    def _update(self, tasks: np.ndarray, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Critic steps of the tasks in ``tasks``, then one actor and temperature step per
        task that trained (the release's per-task loop performs that many)."""
        batch = self._sample_batch(tasks, self.buffer_batch_size)
        alpha = self.log_alpha.detach().exp()
        policy = PolicyOnRows(self.policies, EACH_TASK)  # row k acts through head k
        critic_stats = self._critic_step(
            batch, policy, alpha, tasks, mask, lambda values: values.mean(1)
        )

        has_data = self.replay_buffer.sizes() > 0
        rows = to_device(np.flatnonzero(has_data), self._device())  # the tasks with data
        per_task = max(self.buffer_batch_size // self.n_tasks, 1)
        for _ in range(int(tasks.sum())):
            states = self._sample_batch(has_data, per_task).states
            objective, log_pi, entropy = sac_losses.actor_objective(
                states, policy, CriticsOnRows(self.critics, EACH_TASK), alpha
            )
            policy_loss = objective.index_select(0, rows).mean()
            self.policy_optimizer.zero_grad()
            policy_loss.backward()
            self.policy_optimizer.step()
            alpha_loss = sac_losses.temperature_objective(
                self.log_alpha, log_pi.index_select(0, rows), self.target_entropy
            ).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()

        return {
            'PolicyLoss': objective.mean(1),
            'AlphaLoss': alpha_loss.expand(self.n_tasks),
            'AlphaTemperature': alpha.expand(self.n_tasks),
            'LogPi': log_pi.mean(1),
            'Entropy': entropy.mean(1),
            **critic_stats,
        }
