"""Multi-task SAC with shared parameters: the release's ``SAC`` class (spec §3.2).

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

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from garage import Environment, EnvSpec
from garage.np.policies import Policy
from garage.sampler import Sampler
from torch import nn

from environments.multitask import ObservationSplitter
from learning.algorithms import sac_losses
from learning.algorithms.base import MultiTaskLearner
from learning.networks.multihead import MultiheadTanhGaussianPolicy, MultiheadTwinCritics
from learning.optim import move_optimizer_state
from learning.pcgrad import pcgrad_backward
from learning.replay import SharedReplayBuffer


def per_task_means(values: torch.Tensor, task_ids: torch.Tensor, n_tasks: int) -> np.ndarray:
    """(N,) mean of ``values`` over each task's samples; NaN for tasks absent from the batch."""
    values = values.detach().double()
    sums = torch.zeros(n_tasks, dtype=torch.float64, device=values.device)
    sums.index_add_(0, task_ids, values)
    counts = torch.bincount(task_ids, minlength=n_tasks).double()
    return (sums / counts).cpu().numpy()  # 0/0 gives NaN for absent tasks


class MultiTaskSAC(MultiTaskLearner):
    """Parameter-sharing SAC; see the module docstring.

    Args:
        env_spec: spec of the raw per-task observations.
        policy_net: the multihead (or shared) actor.
        critics: the multihead (or shared) twin critics.
        replay_buffer: one buffer for all tasks (raw observations).
        sampler: garage sampler over the N training envs.
        policy: the actor as a routing policy (evaluated under ``Evaluation/``).
        test_envs: one evaluation env per task.
        split_observation: raw observation -> (network input, task id).
        per_task_temperature: one α per task (``mtsac``, ``qmp_sac``) or one for all (``sac``).
        Remaining keyword arguments are the CLI flags of the same names.
    """

    def __init__(self, env_spec: EnvSpec, policy_net: MultiheadTanhGaussianPolicy,
                 critics: MultiheadTwinCritics, replay_buffer: SharedReplayBuffer,
                 sampler: Sampler, policy: Policy, test_envs: list[Environment],
                 split_observation: ObservationSplitter, *, per_task_temperature: bool,
                 exploration_policy: Policy | None = None, use_pc_grad: bool = False,
                 skip_alpha_pc_grad: bool = True, max_episode_length: int,
                 gradient_steps_per_itr: int, min_buffer_size: int, buffer_batch_size: int,
                 steps_per_epoch: int, discount: float, target_update_tau: float,
                 reward_scale: float, lr: float, target_entropy: float | None,
                 num_evaluation_episodes: int, evaluation_frequency: int) -> None:
        super().__init__(policy_net.n_tasks, policy, exploration_policy, sampler, test_envs,
                         max_episode_length=max_episode_length, steps_per_epoch=steps_per_epoch,
                         discount=discount, num_evaluation_episodes=num_evaluation_episodes,
                         evaluation_frequency=evaluation_frequency,
                         evaluate_before_training=True)
        self.policy_net = policy_net
        self.critics = critics
        self.target_critics = copy.deepcopy(critics).requires_grad_(False)
        self.replay_buffer = replay_buffer
        self._split = split_observation
        self.per_task_temperature = per_task_temperature
        self.log_alpha = nn.Parameter(torch.zeros(self.n_tasks if per_task_temperature else 1))
        self.use_pc_grad = use_pc_grad
        self.skip_alpha_pc_grad = skip_alpha_pc_grad
        self.gradient_steps_per_itr = gradient_steps_per_itr
        self.min_buffer_size = min_buffer_size
        self.buffer_batch_size = buffer_batch_size
        self.tau = target_update_tau
        self.reward_scale = reward_scale
        self.target_entropy = (-float(env_spec.action_space.flat_dim)
                               if target_entropy is None else float(target_entropy))
        self.policy_optimizer = torch.optim.Adam(policy_net.parameters(), lr=lr)
        self.qf1_optimizer = torch.optim.Adam(critics.q1.parameters(), lr=lr)
        self.qf2_optimizer = torch.optim.Adam(critics.q2.parameters(), lr=lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=lr)

    def replay_sizes(self) -> np.ndarray:
        return self.replay_buffer.sizes()

    def train_once(self, trainer: Any) -> tuple[Any, np.ndarray, int]:
        """Collect (``min_buffer_size`` steps while the buffer is below it, else ``batch_size``),
        store, then ``gradient_steps_per_itr`` steps once the buffer holds ``min_buffer_size``."""
        warming_up = self.replay_buffer.size < self.min_buffer_size
        episodes = trainer.obtain_episodes(trainer.step_itr,
                                           self.min_buffer_size if warming_up else None)
        collected = self.replay_buffer.add_episodes(episodes)
        self.env_steps += collected
        steps = 0
        if self.replay_buffer.size >= self.min_buffer_size:
            for _ in range(self.gradient_steps_per_itr):
                self._gradient_step()
                steps += 1
        self._log_round(warming_up, collected, steps)
        return episodes, np.full(self.n_tasks, steps, dtype=np.int64), steps

    def _device(self) -> torch.device:
        return self.log_alpha.device

    def _minimize(self, per_sample: torch.Tensor, task_ids: torch.Tensor,
                  optimizer: torch.optim.Optimizer, pc_grad: bool) -> None:
        """One optimizer step on the batch mean, or on PCGrad's combination of task means."""
        optimizer.zero_grad()
        if pc_grad:
            losses = [per_sample[task_ids == t].mean() for t in torch.unique(task_ids)]
            parameters = [p for group in optimizer.param_groups for p in group['params']]
            pcgrad_backward(losses, parameters)
        else:
            per_sample.mean().backward()
        optimizer.step()

    def _gradient_step(self) -> None:
        """One SAC step on a mixed minibatch: critics, then actor, then temperature, then
        targets (spec §3.1)."""
        arrays = {key: torch.as_tensor(value, device=self._device())
                  for key, value in self.replay_buffer.sample(self.buffer_batch_size).items()}
        states, task_ids = self._split(arrays['observations'])
        next_states, _ = self._split(arrays['next_observations'])
        batch = sac_losses.TransitionBatch(states=states, actions=arrays['actions'],
                                           rewards=arrays['rewards'][:, 0],
                                           next_states=next_states,
                                           terminals=arrays['terminals'][:, 0])
        log_alpha = self.log_alpha[task_ids if self.per_task_temperature else
                                   torch.zeros_like(task_ids)]
        alpha = log_alpha.detach().exp()
        policy: Callable = lambda s: self.policy_net.for_rows(task_ids, s)  # noqa: E731
        critics: Callable = lambda s, a: self.critics.for_rows(task_ids, s, a)  # noqa: E731
        target_critics: Callable = (  # noqa: E731
            lambda s, a: self.target_critics.for_rows(task_ids, s, a))

        target = sac_losses.td_target(batch, policy, target_critics, alpha, self.discount,
                                      self.reward_scale)
        qf1_errors, qf2_errors, q1, q2 = sac_losses.critic_errors(batch, critics, target)
        self._minimize(qf1_errors, task_ids, self.qf1_optimizer, self.use_pc_grad)
        self._minimize(qf2_errors, task_ids, self.qf2_optimizer, self.use_pc_grad)

        objective, log_pi, entropy = sac_losses.actor_objective(states, policy, critics, alpha)
        self._minimize(objective, task_ids, self.policy_optimizer, self.use_pc_grad)

        alpha_objective = sac_losses.alpha_temperature_objective(log_alpha, log_pi,
                                                                 self.target_entropy)
        self._minimize(alpha_objective, task_ids, self.alpha_optimizer,
                       self.use_pc_grad and not self.skip_alpha_pc_grad)
        self._update_targets()

        values = {'PolicyLoss': objective, 'Qf1Loss': qf1_errors, 'Qf2Loss': qf2_errors,
                  'AlphaLoss': alpha_objective, 'AlphaTemperature': alpha, 'QTarget': target,
                  'Qf1': q1, 'Qf2': q2, 'LogPi': log_pi, 'Entropy': entropy}
        for key, value in values.items():
            means = per_task_means(value, task_ids, self.n_tasks)
            present = np.isfinite(means)
            self.last_stats[key][present] = means[present]

    @torch.no_grad()
    def _update_targets(self) -> None:
        """Polyak averaging θ̄ ← (1 − τ)θ̄ + τθ of both target critics."""
        for target, online in zip(self.target_critics.parameters(), self.critics.parameters(),
                                  strict=True):
            target.lerp_(online, self.tau)

    def to(self, device: torch.device | str | None = None) -> MultiTaskSAC:
        """Moves every tensor to ``device``; learned α and Adam moments are kept."""
        if device is None:
            from garage.torch import global_device  # pylint: disable=import-outside-toplevel
            device = global_device()
        for module in (self.policy_net, self.critics, self.target_critics):
            module.to(device)
        self.log_alpha.data = self.log_alpha.data.to(device)
        for optimizer in (self.policy_optimizer, self.qf1_optimizer, self.qf2_optimizer,
                          self.alpha_optimizer):
            move_optimizer_state(optimizer, device)
        return self
