"""The interface both network families offer, written down as ``typing.Protocol``s.

Two families implement it: the separated networks (``separate.py``: N independent networks
in batched tensors) and the parameter-sharing ones (``multihead.py``: one trunk, a head per
task, or one head for all). The Q-switch mixture, the sampling policies and the learners
call only what is declared here, so none of them branches on the architecture.

``for_rows`` is the one path that training and acting share. It takes a batch whose leading
axis is rows, ``(B, *, S)``, and evaluates every row (with all its inner samples) with the
network of that row's task:

* ``task_ids`` a (B,) tensor: row b belongs to task ``task_ids[b]`` (the routing policy, the
  parameter-sharing learner's mixed minibatch);
* ``task_ids = EACH_TASK``: the batch has one row per task, ``(N, *, S)``, row i belonging to
  task i (the separated learners' minibatch, where the separated family evaluates all N
  networks in one batched matmul per layer without gathering any weights).

``PolicyOnRows`` and ``CriticsOnRows`` bind a network to its rows, so SAC's losses
(``learning/algorithms/sac_losses.py``) call ``policy(states)`` and ``critics(states,
actions)`` whatever the family.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal, Protocol

import torch
from torch import nn

from learning.networks.distributions import TanhNormal

EACH_TASK: Final = 'each_task'
RowTasks = torch.Tensor | Literal['each_task']
ScoreCritic = Literal['q1', 'min']


def single_task(task_ids: torch.Tensor) -> torch.Tensor | int:
    """The task as an int when all rows share it (then weights need no per-row gather)."""
    first = int(task_ids[0])
    return first if bool((task_ids == first).all()) else task_ids


def each_task_ids(n_tasks: int, device: torch.device) -> torch.Tensor:
    """(N,) task ids 0..N−1: what ``EACH_TASK`` means as row task ids."""
    return torch.arange(n_tasks, device=device)


class TaskPolicies(Protocol):
    """N task actors (tanh-Gaussian), however their parameters are shared."""

    n_tasks: int

    def for_rows(self, task_ids: RowTasks, states: torch.Tensor) -> TanhNormal:
        """Row b's task actor on row b: states (B, *, S) -> events (B, *, A)."""
        ...

    def propose(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every task actor's proposal for every state, the first step of the Q-switch
        (paper Eq. 3): states (B, S) -> sampled and mean actions, each (N, B, A)."""
        ...


class TaskCritics(Protocol):
    """N task twin critics (Q1, Q2), however their parameters are shared."""

    n_tasks: int

    def for_rows(
        self, task_ids: RowTasks, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Row b's task Q1 and Q2: (B, *, S), (B, *, A) -> two (B, *)."""
        ...


class ScoringCritics(TaskCritics, Protocol):
    """Task critics that can score candidate actions for the Q-switch."""

    def score(
        self,
        task_ids: torch.Tensor,
        states: torch.Tensor,
        candidates: torch.Tensor,
        critic: ScoreCritic,
    ) -> torch.Tensor:
        """Scores P candidate actions per state with that state's task critic.

        Args:
            task_ids: (B,) whose critic scores row b.
            states: (B, S) network inputs.
            candidates: (P, B, A) one proposal per policy.
            critic: ``'q1'`` scores with ``Q1_task`` (the release's rule), ``'min'`` with
                ``min(Q1_task, Q2_task)``.

        Returns:
            (P, B) scores.
        """
        ...


class PolicyOnRows:
    """Task actors bound to the rows they evaluate: ``PolicyOnRows(actors, ids)(states)`` is
    ``actors.for_rows(ids, states)``, the form SAC's losses call."""

    def __init__(self, policies: TaskPolicies, task_ids: RowTasks) -> None:
        self.policies = policies
        self.task_ids = task_ids

    def __call__(self, states: torch.Tensor) -> TanhNormal:
        return self.policies.for_rows(self.task_ids, states)


class CriticsOnRows:
    """Task critics bound to the rows they evaluate: ``CriticsOnRows(critics, ids)(s, a)`` is
    ``critics.for_rows(ids, s, a)``.

    It exposes the critics' ``parameters`` so ``sac_losses.actor_objective`` can freeze their
    weights during the actor's forward pass.
    """

    def __init__(self, critics: TaskCritics, task_ids: RowTasks) -> None:
        self.critics = critics
        self.task_ids = task_ids

    def __call__(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.critics.for_rows(self.task_ids, states, actions)

    def parameters(self) -> Iterator[nn.Parameter]:
        if isinstance(self.critics, nn.Module):
            return self.critics.parameters()
        return iter(())
