"""N separated SAC learners, one per task: the release's ``DnCSAC`` (spec §3.4) without KL.

``dnc_sac`` collects task i's data with π_i; ``qmp_dnc`` is the same learner with the Q-switch
mixture as ``exploration_policy`` (garage's seam for a behaviour policy that only collects data),
so QMP changes who collects data and nothing else (paper §4).

Per sampling round (``train_once``):

1. collect ``batch_size`` env steps over the tasks (``min_buffer_size × N`` while any task buffer
   holds fewer than ``min_buffer_size``), route each episode to its task's buffer;
2. split ``gradient_steps_per_itr`` across tasks in proportion to the transitions each task
   collected in this round, at least one per task that collected data
   (``allocate_gradient_steps``);
3. run the SAC update of every task whose buffer holds ``min_buffer_size`` transitions; all
   tasks step together as one batched update, each task for its own number of steps
   (``TaskAdam`` leaves the others untouched); each task's target critics follow its updates.

Options of the same learner: ``data_sharing`` (UDS, ``uds_dnc``/``qmp_uds_dnc``) extends each
task's minibatch with other tasks' relabelled transitions; a non-zero ``kl_coeff`` adds DnC's
penalty between task policies to the actor losses; ``distillation_period`` periodically
distils all task policies into one and copies it back (DnC's distillation, spec §3.4).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from garage import Environment, EnvSpec
from garage.sampler import Sampler
from torch import nn

from learning.algorithms import sac_losses
from learning.algorithms.base import MultiTaskLearner
from learning.data_sharing import DataSharing, other_task_rows
from learning.dnc_regularization import (
    SamplingType,
    coefficient_matrix,
    dnc_divergences,
    dnc_penalty,
)
from learning.networks import TaskTanhGaussianPolicies, TaskTwinCritics
from learning.optim import TaskAdam, move_optimizer_state
from learning.policies import TaskRoutingPolicy
from learning.policies.base import TorchSamplingPolicy
from learning.replay import PerTaskReplayBuffer


def allocate_gradient_steps(total_steps: int, collected: np.ndarray) -> np.ndarray:
    """Splits ``total_steps`` across tasks in proportion to the data each collected (spec §3.4).

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


def distillation_sample_size(sampling_type: SamplingType, buffer_batch_size: int,
                             n_tasks: int) -> int:
    """(state, action) pairs drawn from each buffer per distillation step.

    The release drew them with its buffer's "all tasks" sampler, whose per-buffer count follows
    ``--sampling_type``: B // N for ``all`` and ``i``, B for ``j``, B // 2 for ``i+j``
    (B = ``buffer_batch_size``, N tasks); at least one.
    """
    if sampling_type in ('all', 'i'):
        count = buffer_batch_size // n_tasks
    elif sampling_type == 'j':
        count = buffer_batch_size
    elif sampling_type == 'i+j':
        count = buffer_batch_size // 2
    else:
        raise ValueError(f'unknown sampling_type {sampling_type!r}')
    return max(count, 1)


def single_policy_copy(policies: TaskTanhGaussianPolicies, task_id: int
                       ) -> TaskTanhGaussianPolicies:
    """A one-policy ``TaskTanhGaussianPolicies`` holding a copy of policy ``task_id``."""
    hidden_sizes = tuple(layer.weight.shape[-1] for layer in policies.trunk.hidden)
    copy_ = TaskTanhGaussianPolicies(1, policies.state_dim, policies.action_dim, hidden_sizes)
    copy_.load_state_dict({key: value[task_id:task_id + 1].detach().clone()
                           for key, value in policies.state_dict().items()})
    return copy_.to(next(policies.parameters()).device)


class DnCSAC(MultiTaskLearner):
    """Separated per-task SAC; see the module docstring.

    Args:
        env_spec: spec of the raw per-task observations.
        policies: the N task actors.
        critics: the N task twin critics.
        replay_buffer: one buffer per task.
        sampler: garage sampler over the N training envs.
        policy: the task policies as one routing policy (evaluated under ``Evaluation/``).
        test_envs: one evaluation env per task.
        exploration_policy: the data-collection policy (the Q-switch mixture for QMP); None
            collects with the task policies.
        Remaining keyword arguments are the CLI flags of the same names.
    """

    def __init__(self, env_spec: EnvSpec, policies: TaskTanhGaussianPolicies,
                 critics: TaskTwinCritics, replay_buffer: PerTaskReplayBuffer,
                 sampler: Sampler, policy: TaskRoutingPolicy, test_envs: list[Environment], *,
                 exploration_policy: TorchSamplingPolicy | None = None,
                 max_episode_length: int, gradient_steps_per_itr: int, min_buffer_size: int,
                 buffer_batch_size: int, steps_per_epoch: int, discount: float,
                 target_update_tau: float, reward_scale: float, lr: float,
                 target_entropy: float | None, num_evaluation_episodes: int,
                 evaluation_frequency: int, data_sharing: DataSharing | None = None,
                 kl_coeff: Sequence[float] = (0.0,), sampling_type: SamplingType = 'all',
                 regularize_representation: bool = False, distillation_period: int | None = None,
                 distillation_n_epochs: int = 100) -> None:
        super().__init__(policies.n_tasks, policy, exploration_policy, sampler, test_envs,
                         max_episode_length=max_episode_length, steps_per_epoch=steps_per_epoch,
                         discount=discount, num_evaluation_episodes=num_evaluation_episodes,
                         evaluation_frequency=evaluation_frequency,
                         evaluate_before_training=False)
        self.policies = policies
        self.critics = critics
        self.target_critics = copy.deepcopy(critics).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.zeros(self.n_tasks))
        self.replay_buffer = replay_buffer
        self.gradient_steps_per_itr = gradient_steps_per_itr
        self.min_buffer_size = min_buffer_size
        self.buffer_batch_size = buffer_batch_size
        self.tau = target_update_tau
        self.reward_scale = reward_scale
        self.target_entropy = (-float(env_spec.action_space.flat_dim)
                               if target_entropy is None else float(target_entropy))
        self._build_optimizers(lr)
        self.data_sharing = data_sharing
        self.beta = coefficient_matrix(kl_coeff, self.n_tasks)
        self.regularize = bool((self.beta != 0).any())
        self.sampling_type = sampling_type
        self.regularize_representation = regularize_representation
        self.distillation_period = distillation_period
        self.distillation_n_epochs = distillation_n_epochs
        # DnC's central policy and its Adam live as long as the learner (the release built them
        # once, in its constructor): every distillation continues from the previous one.
        self.central_policy: TaskTanhGaussianPolicies | None = None
        self.central_optimizer: torch.optim.Adam | None = None
        if distillation_period:
            self.central_policy = single_policy_copy(policies, 0)
            self.central_optimizer = torch.optim.Adam(self.central_policy.parameters(), lr=lr)
        keys = ((('SharedDataShare',) if data_sharing is not None else ())
                + (('PolicyKL', 'PolicyKLPenalty') if self.regularize else ()))
        self.method_stats = {key: np.full(self.n_tasks, np.nan) for key in keys}

    def _build_optimizers(self, lr: float) -> None:
        """One Adam per task and network kind, stepping only the tasks that train."""
        self.policy_optimizer = TaskAdam(self.policies.parameters(), self.n_tasks, lr)
        self.critic_optimizer = TaskAdam(self.critics.parameters(), self.n_tasks, lr)
        self.alpha_optimizer = TaskAdam([self.log_alpha], self.n_tasks, lr)

    def replay_sizes(self) -> np.ndarray:
        return self.replay_buffer.sizes()

    def train_once(self, trainer: Any) -> tuple[Any, np.ndarray, int]:
        """One sampling round and its gradient steps (see ``MultiTaskLearner.train_once``);
        a task's gradient step counts once per task, as in the release's per-task loop."""
        warming_up = bool((self.replay_buffer.sizes() < self.min_buffer_size).any())
        batch_size = self.min_buffer_size * self.n_tasks if warming_up else None
        episodes = trainer.obtain_episodes(trainer.step_itr, batch_size)
        collected = self.replay_buffer.add_episodes(
            episodes, (self.exploration_policy or self.policy).replay_key)
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
        self._log_round(warming_up, collected, int(taken.sum()))
        return episodes, taken, int(taken.sum())

    # ------------------------------------------------------------------ the SAC update
    def _device(self) -> torch.device:
        return self.log_alpha.device

    def _sample_batch(self, tasks: np.ndarray, batch_size: int) -> sac_losses.TransitionBatch:
        return self._as_batch(self.replay_buffer.sample(batch_size, tasks))

    def _as_batch(self, arrays: dict[str, np.ndarray]) -> sac_losses.TransitionBatch:
        tensors = {key: torch.as_tensor(value, device=self._device())
                   for key, value in arrays.items()}
        return sac_losses.TransitionBatch(states=tensors['observations'],
                                          actions=tensors['actions'],
                                          rewards=tensors['rewards'][..., 0],
                                          next_states=tensors['next_observations'],
                                          terminals=tensors['terminals'][..., 0])

    def _share_data(self, batch: sac_losses.TransitionBatch, has_data: np.ndarray
                    ) -> tuple[sac_losses.TransitionBatch, torch.Tensor, torch.Tensor]:
        """UDS: each task's batch plus the other tasks' transitions it keeps (spec §3.6)."""
        m = max(self.buffer_batch_size // max(self.n_tasks - 1, 1), 1)
        arrays = self.replay_buffer.sample(m, has_data)  # row j: candidates from task j
        pool = self._as_batch(arrays)
        pool_rewards = (self.data_sharing.relabel(arrays['raw_observations'], arrays['actions'])
                        if self.data_sharing.supervised else None)
        with torch.no_grad():
            own_q = self.critics(batch.states, batch.actions)[0]
            # Every critic i on every candidate row j, then row i keeps its others (N, N-1, m).
            n = self.n_tasks
            states = pool.states.reshape(1, n * m, -1).expand(n, -1, -1)
            actions = pool.actions.reshape(1, n * m, -1).expand(n, -1, -1)
            all_q = self.critics(states, actions)[0].view(n, n, m)
            others = other_task_rows(n).to(all_q.device)
            pool_q = all_q.gather(1, others[:, :, None].expand(-1, -1, m))
        return self.data_sharing.combine(batch, pool,
                                         torch.as_tensor(has_data, device=self._device()),
                                         own_q, pool_q, pool_rewards)

    def _gradient_step(self, tasks: np.ndarray) -> None:
        """One SAC step (critics, then actor, then temperature) for the tasks in ``tasks``."""
        has_data = self.replay_buffer.sizes() > 0
        batch = self._sample_batch(has_data if self.regularize else tasks,
                                   self.buffer_batch_size)
        kl_states = batch.states
        weights = torch.ones_like(batch.rewards)
        if self.data_sharing is not None:
            batch, weights, share = self._share_data(batch, has_data)
            self.method_stats['SharedDataShare'][tasks] = share.cpu().numpy()[tasks]
        mask = torch.as_tensor(tasks, device=self._device())
        task_weights = mask.float()
        alpha = self.log_alpha.detach().exp()

        def weighted_mean(values: torch.Tensor) -> torch.Tensor:
            """Per-task mean over each row's kept samples."""
            return (values * weights).sum(1) / weights.sum(1)

        row_alpha = alpha[:, None]  # one temperature per task row
        target = sac_losses.td_target(batch, self.policies, self.target_critics, row_alpha,
                                      self.discount, self.reward_scale)
        qf1_errors, qf2_errors, q1, q2 = sac_losses.critic_errors(batch, self.critics, target)
        qf1_loss, qf2_loss = weighted_mean(qf1_errors), weighted_mean(qf2_errors)
        self.critic_optimizer.zero_grad()
        ((qf1_loss + qf2_loss) * task_weights).sum().backward()
        self.critic_optimizer.step(mask)

        objective, log_pi, entropy = sac_losses.actor_objective(batch.states, self.policies,
                                                                self.critics, row_alpha)
        policy_loss = weighted_mean(objective)
        if self.regularize:
            divergence, defined = dnc_divergences(
                self.policies, kl_states, torch.as_tensor(has_data, device=self._device()),
                self.sampling_type, self.regularize_representation)
            penalty = dnc_penalty(divergence, defined, self.beta.to(divergence.device))
            policy_loss = policy_loss + penalty
            off_diagonal = defined & ~torch.eye(self.n_tasks, dtype=torch.bool,
                                                device=defined.device)
            mean_divergence = ((divergence * off_diagonal).sum(1)
                               / off_diagonal.sum(1).clamp(min=1))
            self.method_stats['PolicyKL'][tasks] = mean_divergence.detach().cpu().numpy()[tasks]
            self.method_stats['PolicyKLPenalty'][tasks] = penalty.detach().cpu().numpy()[tasks]
        self.policy_optimizer.zero_grad()
        (policy_loss * task_weights).sum().backward()
        self.policy_optimizer.step(mask)

        alpha_loss = weighted_mean(sac_losses.temperature_objective(
            self.log_alpha[:, None], log_pi, self.target_entropy))
        self.alpha_optimizer.zero_grad()
        (alpha_loss * task_weights).sum().backward()
        self.alpha_optimizer.step(mask)

        values = {'PolicyLoss': policy_loss, 'Qf1Loss': qf1_loss, 'Qf2Loss': qf2_loss,
                  'AlphaLoss': alpha_loss, 'AlphaTemperature': alpha,
                  'QTarget': weighted_mean(target), 'Qf1': weighted_mean(q1),
                  'Qf2': weighted_mean(q2), 'LogPi': weighted_mean(log_pi),
                  'Entropy': weighted_mean(entropy)}
        # One device-to-host copy for all statistics instead of one per statistic.
        stacked = torch.stack([value.detach() for value in values.values()]).cpu().numpy()
        for key, row in zip(values, stacked, strict=True):
            self.last_stats[key][tasks] = row[tasks]

    def after_epoch(self, epoch: int) -> None:
        """DnC distillation every ``distillation_period`` epochs (never at epoch 0)."""
        if self.distillation_period and epoch > 0 and epoch % self.distillation_period == 0:
            self.distill()

    def distill(self) -> None:
        """Fits the central policy to every task's stored (state, action) pairs by maximum
        likelihood, then copies it into all task policies (DnC's distillation, spec §3.4).

        ``distillation_n_epochs`` Adam steps; each samples ``distillation_sample_size`` pairs
        from every non-empty buffer. The central policy and its optimizer state carry over from
        one distillation to the next.
        """
        has_data = self.replay_buffer.sizes() > 0
        if not has_data.any():
            return
        if self.central_policy is None:
            raise RuntimeError('distill() needs a learner built with distillation_period')
        per_buffer = distillation_sample_size(self.sampling_type, self.buffer_batch_size,
                                              self.n_tasks)
        rows = torch.as_tensor(has_data, device=self._device())
        for _ in range(self.distillation_n_epochs):
            batch = self._sample_batch(has_data, per_buffer)
            states = batch.states[rows].reshape(1, -1, batch.states.shape[-1])
            actions = batch.actions[rows].reshape(1, -1, batch.actions.shape[-1])
            clipped = actions.clamp(-1 + 1e-6, 1 - 1e-6)
            log_likelihood = self.central_policy(states).log_prob(clipped)
            self.central_optimizer.zero_grad()
            (-log_likelihood.mean()).backward()
            self.central_optimizer.step()
        with torch.no_grad():
            for target, source in zip(self.policies.parameters(),
                                      self.central_policy.parameters(), strict=True):
                target.copy_(source.expand_as(target))

    @torch.no_grad()
    def _update_targets(self, tasks: np.ndarray) -> None:
        """Polyak averaging θ̄ ← (1 − τ)θ̄ + τθ of the target critics of ``tasks``."""
        task_ids = np.flatnonzero(tasks).tolist()
        if not task_ids:
            return
        # The same arithmetic as θ̄ + τ(θ − θ̄), as three foreach calls over the active slices.
        targets, onlines = [], []
        for target, online in zip(self.target_critics.parameters(), self.critics.parameters(),
                                  strict=True):
            targets.extend(target[i] for i in task_ids)
            onlines.extend(online[i] for i in task_ids)
        steps = torch._foreach_sub(onlines, targets)  # pylint: disable=protected-access
        torch._foreach_mul_(steps, self.tau)  # pylint: disable=protected-access
        torch._foreach_add_(targets, steps)  # pylint: disable=protected-access

    # ------------------------------------------------------------------ devices
    def to(self, device: torch.device | str | None = None) -> DnCSAC:
        """Moves every tensor to ``device``; learned state (α, Adam moments) is kept.

        garage's and the release's ``to()`` rebuilt log α, losing the learned temperatures
        after a restore (spec §10 item 5); this one only moves.
        """
        if device is None:
            from garage.torch import global_device  # pylint: disable=import-outside-toplevel
            device = global_device()
        for module in (self.policies, self.critics, self.target_critics, self.central_policy):
            if module is not None:
                module.to(device)
        self.log_alpha.data = self.log_alpha.data.to(device)
        for optimizer in (self.policy_optimizer, self.critic_optimizer, self.alpha_optimizer,
                          self.central_optimizer):
            if optimizer is not None:
                move_optimizer_state(optimizer, device)
        return self
