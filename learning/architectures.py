"""The only place that reads ``--policy_architecture`` and ``--Q_architecture``.

| architecture | actor(s) | critic(s) |
|---|---|---|
| ``separate`` | N independent actors (``TaskTanhGaussianPolicies``) | N twin critics |
| ``multihead`` | one trunk, one head per task | one trunk per critic, one head per task |
| ``shared`` | one network for all tasks | one network per critic for all tasks |

Every result implements ``learning/networks/contract.py`` (``for_rows``, ``propose``,
``score``), so the Q-switch mixture, the routing policy and the learners never branch on the
architecture.
"""

from __future__ import annotations

from typing import Literal

from learning.networks.multihead import MultiheadTanhGaussianPolicy, MultiheadTwinCritics
from learning.networks.separate import TaskTanhGaussianPolicies, TaskTwinCritics

Architecture = Literal['separate', 'multihead', 'shared']


def make_policies(
    architecture: Architecture,
    n_tasks: int,
    state_dim: int,
    action_dim: int,
    hidden_sizes: tuple[int, ...],
) -> TaskTanhGaussianPolicies | MultiheadTanhGaussianPolicy:
    """The task actors in ``architecture``."""
    if architecture == 'separate':
        return TaskTanhGaussianPolicies(n_tasks, state_dim, action_dim, hidden_sizes)
    n_heads = n_tasks if architecture == 'multihead' else 1
    return MultiheadTanhGaussianPolicy(n_tasks, n_heads, state_dim, action_dim, hidden_sizes)


def make_critics(
    architecture: Architecture,
    n_tasks: int,
    state_dim: int,
    action_dim: int,
    hidden_sizes: tuple[int, ...],
    layer_norm: bool,
) -> TaskTwinCritics | MultiheadTwinCritics:
    """The task twin critics in ``architecture``."""
    if architecture == 'separate':
        return TaskTwinCritics(n_tasks, state_dim, action_dim, hidden_sizes, layer_norm)
    n_heads = n_tasks if architecture == 'multihead' else 1
    return MultiheadTwinCritics(n_tasks, n_heads, state_dim, action_dim, hidden_sizes, layer_norm)
