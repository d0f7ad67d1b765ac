"""Multi-critic actor learning (MCAL; the release's ``mcal`` and ``qmp_mcal``, spec §3.9).

One multihead actor (a head per task) learns against N separate per-task critics, each critic
trained on its own task's buffer. Per gradient step of task t (the steps are split across tasks
as in the separated learner): critic t takes a SAC critic step on a batch of task t; then the
actor and the single temperature take one step on a batch with ``buffer_batch_size // N`` states
of every task, each state acting through its task's head and scored by its task's critic.

``qmp_mcal`` adds the Q-switch over the actor's heads, scored by the task's own critic (the
release could not construct it, §10 item 7). Unlike the release, critics always see the same
split observations they were trained on (§10 item 10).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from learning.algorithms import sac_losses
from learning.algorithms.dnc_sac import DnCSAC
from learning.networks import EACH_TASK
from learning.optim import TaskAdam


class MultiCriticActorLearning(DnCSAC):
    """MCAL; takes ``DnCSAC``'s arguments with ``policies`` a multihead actor."""

    def _build_optimizers(self, lr: float) -> None:
        self.log_alpha = nn.Parameter(torch.zeros(1))  # one temperature for the one actor
        self.policy_optimizer = torch.optim.Adam(self.policies.parameters(), lr=lr)
        self.critic_optimizer = TaskAdam(self.critics.parameters(), self.n_tasks, lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=lr)

    def _rows_policy(self) -> Callable[[torch.Tensor], object]:
        """Row k of an (N, B, S) batch acts through head k."""
        return lambda states: self.policies.for_rows(EACH_TASK, states)

    def _gradient_step(self, tasks: np.ndarray) -> None:
        """Critic steps of the tasks in ``tasks``, then one actor and temperature step per
        task that trained (the release's per-task loop performs that many)."""
        batch = self._sample_batch(tasks, self.buffer_batch_size)
        mask = torch.as_tensor(tasks, device=self._device())
        alpha = self.log_alpha.detach().exp()
        policy = self._rows_policy()
        target = sac_losses.td_target(batch, policy, self.target_critics, alpha,
                                      self.discount, self.reward_scale)
        qf1_errors, qf2_errors, q1, q2 = sac_losses.critic_errors(batch, self.critics, target)
        qf1_loss, qf2_loss = qf1_errors.mean(1), qf2_errors.mean(1)
        self.critic_optimizer.zero_grad()
        ((qf1_loss + qf2_loss) * mask.float()).sum().backward()
        self.critic_optimizer.step(mask)

        has_data = self.replay_buffer.sizes() > 0
        rows = torch.as_tensor(has_data, device=self._device())
        per_task = max(self.buffer_batch_size // self.n_tasks, 1)
        for _ in range(int(tasks.sum())):
            states = self._sample_batch(has_data, per_task).states
            objective, log_pi, entropy = sac_losses.actor_objective(states, policy,
                                                                    self.critics, alpha)
            policy_loss = objective[rows].mean()
            self.policy_optimizer.zero_grad()
            policy_loss.backward()
            self.policy_optimizer.step()
            alpha_loss = sac_losses.temperature_objective(self.log_alpha, log_pi[rows],
                                                          self.target_entropy).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()

        values = {'PolicyLoss': objective.mean(1), 'Qf1Loss': qf1_loss, 'Qf2Loss': qf2_loss,
                  'AlphaLoss': alpha_loss.expand(self.n_tasks), 'AlphaTemperature':
                  alpha.expand(self.n_tasks), 'QTarget': target.mean(1), 'Qf1': q1.mean(1),
                  'Qf2': q2.mean(1), 'LogPi': log_pi.mean(1), 'Entropy': entropy.mean(1)}
        for key, value in values.items():
            self.last_stats[key][tasks] = value.detach().cpu().numpy()[tasks]
