"""Parameter-sharing networks: one trunk for all tasks, one output head per task (multihead)
or a single head for all tasks (shared).

They implement ``learning/networks/contract.py`` as the separated networks do, so the
Q-switch mixture, the routing policy and the learners work unchanged over either:
``for_rows(task_ids, ...)`` picks each row's head (the parameter-sharing learner's mixed
minibatch, the routing policy), ``for_rows(EACH_TASK, ...)`` head i on row i (MCAL's actor).

Unlike the release's multihead actor, the distribution is a single tanh of N(μ, σ): the release
built TanhNormal(tanh μ, σ), a double tanh (docs/deviations.md), so its Q-switch sampled
candidates from a different distribution than the one the actor was trained as.
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.contract import (
    RowTasks,
    ScoreCritic,
    each_task_ids,
    single_task,
)
from learning.networks.distributions import TanhNormal, tanh_gaussian
from learning.networks.initialization import Init, xavier_init_


def _trunk(
    in_features: int, hidden_sizes: tuple[int, ...], layer_norm: bool, init: Init
) -> nn.Sequential:
    """ReLU MLP; as in garage, the optional LayerNorm precedes each hidden linear layer."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        if layer_norm:
            layers.append(nn.LayerNorm(in_features))
        linear = nn.Linear(in_features, size)
        xavier_init_(linear.weight, init, in_features, size)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
        in_features = size
    return nn.Sequential(*layers)


class MultiheadTanhGaussianPolicy(nn.Module):
    """Shared ReLU trunk, then per head a mean and a log-std (clamped to [-20, 2]).

    Args:
        n_tasks: number of tasks.
        n_heads: ``n_tasks`` (multihead) or 1 (shared: every task uses head 0).
        state_dim: network input width.
        action_dim: action width.
        hidden_sizes: trunk widths.
    """

    def __init__(
        self,
        n_tasks: int,
        n_heads: int,
        state_dim: int,
        action_dim: int,
        hidden_sizes: tuple[int, ...],
    ) -> None:
        super().__init__()
        if n_heads not in (1, n_tasks):
            raise ValueError(f'n_heads must be 1 or n_tasks={n_tasks}, got {n_heads}')
        self.n_tasks = n_tasks
        self.n_heads = n_heads
        self.action_dim = action_dim
        self.trunk = _trunk(state_dim, hidden_sizes, False, 'xavier_uniform')
        self.heads = nn.Linear(hidden_sizes[-1], n_heads * 2 * action_dim)
        xavier_init_(self.heads.weight, 'xavier_uniform', hidden_sizes[-1], action_dim)
        nn.init.zeros_(self.heads.bias)

    def _all_heads(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., S) -> mean and log-std of every head, each (..., H, A)."""
        out = self.heads(self.trunk(states)).unflatten(-1, (self.n_heads, 2, self.action_dim))
        return out[..., 0, :], out[..., 1, :]

    def _heads_of(self, task_ids: RowTasks) -> torch.Tensor | int:
        if self.n_heads == 1:
            return 0
        if isinstance(task_ids, str):
            return each_task_ids(self.n_tasks, self.heads.weight.device)
        return task_ids

    def for_rows(self, task_ids: RowTasks, states: torch.Tensor) -> TanhNormal:
        """Row b through its task's head: states (B, *, S) -> events (B, *, A)."""
        mean, log_std = self._all_heads(states)  # (B, *, H, A)
        heads = self._heads_of(task_ids)
        if isinstance(heads, int):
            return tanh_gaussian(mean[..., heads, :], log_std[..., heads, :])
        if states.dim() == 2:
            rows = torch.arange(states.shape[0], device=states.device)
            return tanh_gaussian(mean[rows, heads], log_std[rows, heads])
        index = heads.view((-1,) + (1,) * (states.dim() - 1) + (1,)).expand(
            *mean.shape[:-2], 1, self.action_dim
        )
        return tanh_gaussian(
            mean.gather(-2, index)[..., 0, :], log_std.gather(-2, index)[..., 0, :]
        )

    def propose(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every head's proposal for every state: (B, S) -> sampled and mean (P, B, A)."""
        if self.n_heads != self.n_tasks:
            raise ValueError('the Q-switch needs one head per task (multihead architecture)')
        mean, log_std = self._all_heads(states)
        distribution = tanh_gaussian(mean.transpose(0, 1), log_std.transpose(0, 1))
        return distribution.rsample(), distribution.mean


class MultiheadTwinCritics(nn.Module):
    """Two critics, each a shared ReLU trunk on (s, a) with one scalar head per task (or one
    head for all tasks)."""

    def __init__(
        self,
        n_tasks: int,
        n_heads: int,
        state_dim: int,
        action_dim: int,
        hidden_sizes: tuple[int, ...],
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_heads not in (1, n_tasks):
            raise ValueError(f'n_heads must be 1 or n_tasks={n_tasks}, got {n_heads}')
        self.n_tasks = n_tasks
        self.n_heads = n_heads
        self.q1 = self._critic(state_dim + action_dim, hidden_sizes, layer_norm)
        self.q2 = self._critic(state_dim + action_dim, hidden_sizes, layer_norm)

    def _critic(
        self, in_features: int, hidden_sizes: tuple[int, ...], layer_norm: bool
    ) -> nn.Sequential:
        head = nn.Linear(hidden_sizes[-1], self.n_heads)
        xavier_init_(head.weight, 'xavier_normal', hidden_sizes[-1], 1)
        nn.init.zeros_(head.bias)
        return nn.Sequential(_trunk(in_features, hidden_sizes, layer_norm, 'xavier_normal'), head)

    def _select(self, values: torch.Tensor, task_ids: RowTasks | int) -> torch.Tensor:
        """(B, ..., H) -> (B, ...), the head of each row's task."""
        if self.n_heads == 1:
            return values[..., 0]
        if isinstance(task_ids, str):
            task_ids = each_task_ids(self.n_tasks, values.device)
        if isinstance(task_ids, int):
            return values[..., task_ids]
        index = task_ids.view((-1,) + (1,) * (values.dim() - 1)).expand(*values.shape[:-1], 1)
        return values.gather(-1, index)[..., 0]

    def for_rows(
        self, task_ids: RowTasks, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's task Q1 and Q2: (B, *, S), (B, *, A) -> two (B, *)."""
        inputs = torch.cat([states, actions], dim=-1)
        return self._select(self.q1(inputs), task_ids), self._select(self.q2(inputs), task_ids)

    def score(
        self,
        task_ids: torch.Tensor,
        states: torch.Tensor,
        candidates: torch.Tensor,
        critic: ScoreCritic,
    ) -> torch.Tensor:
        """(P, B) scores of P candidate actions per state by that state's task head."""
        tasks = single_task(task_ids)
        repeated = states.unsqueeze(1).expand(-1, candidates.shape[0], -1)  # (B, P, S)
        inputs = torch.cat([repeated, candidates.transpose(0, 1)], dim=-1)
        scores = self._select(self.q1(inputs), tasks)  # (B, P)
        if critic == 'min':
            scores = torch.minimum(scores, self._select(self.q2(inputs), tasks))
        return scores.transpose(0, 1)
