"""Parameter-sharing networks: one trunk for all tasks, one output head per task (multihead)
or a single head for all tasks (shared), spec §2.3, §4.5, §4.6.

They offer the interface of the separated networks in ``learning/networks.py``
(``forward_selected``, ``propose``, ``score``), so the Q-switch mixture and the routing policy
work unchanged over either (architecture principle P3); ``for_rows`` is the (B,)-batch form the
parameter-sharing learner trains with.

Unlike the release's multihead actor, the distribution is a single tanh of N(μ, σ): the release
built TanhNormal(tanh μ, σ) (a double tanh, spec §4.5 and §10 item 11), so its Q-switch sampled
candidates from a different distribution than the one the actor was trained as.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from learning.networks import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    Init,
    TanhNormal,
    single_task,
    xavier_init_,
)


def _trunk(in_features: int, hidden_sizes: tuple[int, ...], layer_norm: bool,
           init: Init) -> nn.Sequential:
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

    def __init__(self, n_tasks: int, n_heads: int, state_dim: int, action_dim: int,
                 hidden_sizes: tuple[int, ...]) -> None:
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

    def _heads_of(self, task_ids: torch.Tensor | int) -> torch.Tensor | int:
        return task_ids if self.n_heads > 1 else 0

    def for_rows(self, task_ids: torch.Tensor, states: torch.Tensor) -> TanhNormal:
        """Row b through its task's head: states (B, S) -> events (B, A)."""
        mean, log_std = self._all_heads(states)
        heads = self._heads_of(task_ids)
        rows = torch.arange(states.shape[0], device=states.device)
        if isinstance(heads, int):
            return _distribution(mean[:, heads], log_std[:, heads])
        return _distribution(mean[rows, heads], log_std[rows, heads])

    def forward_selected(self, task_ids: torch.Tensor, states: torch.Tensor) -> TanhNormal:
        """States (B, K, S) -> events (B, K, A), row b through its task's head."""
        mean, log_std = self._all_heads(states)  # (B, K, H, A)
        heads = self._heads_of(single_task(task_ids))
        if isinstance(heads, int):
            return _distribution(mean[:, :, heads], log_std[:, :, heads])
        index = heads.view(-1, 1, 1, 1).expand(-1, states.shape[1], 1, self.action_dim)
        return _distribution(mean.gather(2, index)[:, :, 0], log_std.gather(2, index)[:, :, 0])

    def propose(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every head's proposal for every state: (B, S) -> sampled and mean (P, B, A)."""
        if self.n_heads != self.n_tasks:
            raise ValueError('the Q-switch needs one head per task (multihead architecture)')
        mean, log_std = self._all_heads(states)
        distribution = _distribution(mean.transpose(0, 1), log_std.transpose(0, 1))
        return distribution.rsample(), distribution.mean


def _distribution(mean: torch.Tensor, log_std: torch.Tensor) -> TanhNormal:
    return TanhNormal(mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp())


class MultiheadTwinCritics(nn.Module):
    """Two critics, each a shared ReLU trunk on (s, a) with one scalar head per task (or one
    head for all tasks)."""

    def __init__(self, n_tasks: int, n_heads: int, state_dim: int, action_dim: int,
                 hidden_sizes: tuple[int, ...], layer_norm: bool = False) -> None:
        super().__init__()
        if n_heads not in (1, n_tasks):
            raise ValueError(f'n_heads must be 1 or n_tasks={n_tasks}, got {n_heads}')
        self.n_tasks = n_tasks
        self.n_heads = n_heads
        self.q1 = self._critic(state_dim + action_dim, hidden_sizes, layer_norm)
        self.q2 = self._critic(state_dim + action_dim, hidden_sizes, layer_norm)

    def _critic(self, in_features: int, hidden_sizes: tuple[int, ...],
                layer_norm: bool) -> nn.Sequential:
        head = nn.Linear(hidden_sizes[-1], self.n_heads)
        xavier_init_(head.weight, 'xavier_normal', hidden_sizes[-1], 1)
        nn.init.zeros_(head.bias)
        return nn.Sequential(_trunk(in_features, hidden_sizes, layer_norm, 'xavier_normal'),
                             head)

    def _select(self, values: torch.Tensor, task_ids: torch.Tensor | int) -> torch.Tensor:
        """(B, ..., H) -> (B, ...), the head of each row's task."""
        if self.n_heads == 1:
            return values[..., 0]
        if isinstance(task_ids, int):
            return values[..., task_ids]
        index = task_ids.view((-1,) + (1,) * (values.dim() - 1)).expand(
            *values.shape[:-1], 1)
        return values.gather(-1, index)[..., 0]

    def for_rows(self, task_ids: torch.Tensor, states: torch.Tensor,
                 actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's task Q1 and Q2: (B, S), (B, A) -> two (B,)."""
        inputs = torch.cat([states, actions], dim=-1)
        return self._select(self.q1(inputs), task_ids), self._select(self.q2(inputs), task_ids)

    def score(self, task_ids: torch.Tensor, states: torch.Tensor, candidates: torch.Tensor,
              critic: Literal['q1', 'min']) -> torch.Tensor:
        """(P, B) scores of P candidate actions per state by that state's task head."""
        tasks = single_task(task_ids)
        repeated = states.unsqueeze(1).expand(-1, candidates.shape[0], -1)  # (B, P, S)
        inputs = torch.cat([repeated, candidates.transpose(0, 1)], dim=-1)
        scores = self._select(self.q1(inputs), tasks)  # (B, P)
        if critic == 'min':
            scores = torch.minimum(scores, self._select(self.q2(inputs), tasks))
        return scores.transpose(0, 1)
