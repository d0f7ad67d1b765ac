"""DnC's distillation (Ghosh et al. 2018) as a part of the separated learner
(``DnCSAC(distillation=...)``, ``--distillation_period``).

Every ``period`` epochs (never at epoch 0) a central policy is fitted to every task's stored
(state, action) pairs by maximum likelihood, then copied into all task policies. The central
policy starts as a copy of policy 0, and it and its Adam live as long as the learner (the
release built them once, in its constructor): every distillation continues from the previous
one.
"""

from __future__ import annotations

import numpy as np
import torch

from learning.batches import to_device
from learning.dnc_regularization import SamplingType
from learning.networks.separate import TaskTanhGaussianPolicies
from learning.optim import move_optimizer_state
from learning.replay import PerTaskReplayBuffer


def distillation_sample_size(
    sampling_type: SamplingType, buffer_batch_size: int, n_tasks: int
) -> int:
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


def single_policy_copy(
    policies: TaskTanhGaussianPolicies, task_id: int
) -> TaskTanhGaussianPolicies:
    """A one-policy ``TaskTanhGaussianPolicies`` holding a copy of policy ``task_id``."""
    copy_ = TaskTanhGaussianPolicies(
        1, policies.state_dim, policies.action_dim, policies.hidden_sizes
    )
    copy_.load_state_dict(
        {
            key: value[task_id : task_id + 1].detach().clone()
            for key, value in policies.state_dict().items()
        }
    )
    return copy_.to(next(policies.parameters()).device)


class Distillation:
    """The central policy, its optimizer and the schedule.

    Args:
        policies: the task policies (the central policy starts as a copy of policy 0).
        period: ``--distillation_period``.
        n_epochs: ``--distillation_n_epochs``, Adam steps per distillation.
        sample_size: pairs drawn from every non-empty buffer per step
            (``distillation_sample_size``).
        lr: the central policy's learning rate.
    """

    def __init__(
        self,
        policies: TaskTanhGaussianPolicies,
        period: int,
        n_epochs: int,
        sample_size: int,
        lr: float,
    ) -> None:
        self.period = period
        self.n_epochs = n_epochs
        self.sample_size = sample_size
        self.central_policy = single_policy_copy(policies, 0)
        self.central_optimizer = torch.optim.Adam(self.central_policy.parameters(), lr=lr)

    def due(self, epoch: int) -> bool:
        return epoch > 0 and epoch % self.period == 0

    def distill(
        self, policies: TaskTanhGaussianPolicies, replay_buffer: PerTaskReplayBuffer
    ) -> None:
        """Fits the central policy to every task's stored (state, action) pairs, then copies it
        into all task policies."""
        has_data = replay_buffer.sizes() > 0
        if not has_data.any():
            return
        device = next(self.central_policy.parameters()).device
        rows = to_device(np.flatnonzero(has_data), device)  # the tasks with data
        for _ in range(self.n_epochs):
            batch = replay_buffer.sample_batch(self.sample_size, has_data, device)
            states = batch.states.index_select(0, rows).reshape(1, -1, batch.states.shape[-1])
            actions = batch.actions.index_select(0, rows).reshape(1, -1, batch.actions.shape[-1])
            clipped = actions.clamp(-1 + 1e-6, 1 - 1e-6)
            log_likelihood = self.central_policy(states).log_prob(clipped)
            self.central_optimizer.zero_grad()
            (-log_likelihood.mean()).backward()
            self.central_optimizer.step()
        with torch.no_grad():
            for target, source in zip(
                policies.parameters(), self.central_policy.parameters(), strict=True
            ):
                target.copy_(source.expand_as(target))

    def to(self, device: torch.device | str) -> None:
        """Moves the central policy and its Adam moments."""
        self.central_policy.to(device)
        move_optimizer_state(self.central_optimizer, device)
