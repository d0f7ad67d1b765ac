"""DECAF critics (the release's ``decaf`` baseline): each task's Q-function is a
state-action-dependent mixture of every task's Q-function,

    Q_i^DECAF(s, a) = Σ_k w_ik(s, a) · Q_k(s, a),   w_i(s, a) = softmax(f_i(s, a)),

where only task i's own Q_i (and its weight network f_i) learn from task i's loss; the other
tasks' Q_k enter as constants. ``DecafTwinCritics`` offers the training path of
``contract.TaskCritics`` in the separated learners' layout (``for_rows(EACH_TASK, ...)``), so
the separated learner trains it unchanged, and its target network is a copy of the whole module,
Polyak-averaged task by task: every task's target base critics follow their online versions
(the release's targets held copies of the other tasks' critics that never updated;
docs/deviations.md).
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.contract import RowTasks
from learning.networks.separate import TaskMLP, TaskTwinCritics


class DecafTwinCritics(nn.Module):
    """Twin DECAF critics over N base twin critics (one weight network per task and critic)."""

    def __init__(
        self,
        n_tasks: int,
        state_dim: int,
        action_dim: int,
        hidden_sizes: tuple[int, ...],
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.base = TaskTwinCritics(n_tasks, state_dim, action_dim, hidden_sizes, layer_norm)
        self.weights1 = TaskMLP(
            n_tasks, state_dim + action_dim, hidden_sizes, n_tasks, 'xavier_normal', layer_norm
        )
        self.weights2 = TaskMLP(
            n_tasks, state_dim + action_dim, hidden_sizes, n_tasks, 'xavier_normal', layer_norm
        )

    def mixture_weights(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """w1, w2 (N, B, N): row i's softmax weights over the N base critics."""
        inputs = torch.cat([states, actions], dim=-1)
        return (
            torch.softmax(self.weights1(inputs), dim=-1),
            torch.softmax(self.weights2(inputs), dim=-1),
        )

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Task i's DECAF Q1 and Q2 on row i: (N, B, S), (N, B, A) -> two (N, B)."""
        n, b = states.shape[:2]
        inputs = torch.cat([states, actions], dim=-1).reshape(1, n * b, -1).expand(n, -1, -1)
        own = torch.eye(n, dtype=torch.bool, device=states.device)[:, :, None]  # (k, i, 1)
        w1, w2 = self.mixture_weights(states, actions)
        values = []
        for critic, weights in ((self.base.q1, w1), (self.base.q2, w2)):
            all_q = critic(inputs).view(n, n, b)  # all_q[k, i, b] = Q_k on row i's sample b
            all_q = torch.where(own, all_q, all_q.detach())  # other tasks' critics: constants
            values.append((weights * all_q.permute(1, 2, 0)).sum(-1))
        return values[0], values[1]

    def for_rows(
        self, task_ids: RowTasks, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` in the separated learners' layout (``task_ids = EACH_TASK``); no method
        evaluates DECAF critics on rows of arbitrary tasks (there is no QMP variant of it)."""
        if not isinstance(task_ids, str):
            raise ValueError('DECAF critics evaluate one row per task (EACH_TASK) only')
        return self(states, actions)
