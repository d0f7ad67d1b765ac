"""Per-task networks: N independent MLPs held as one module and evaluated with batched matmuls.

The separated architecture of the paper (one actor and two critics per task) is stored as
weights with a leading task axis, ``(N, fan_in, fan_out)``. ``forward`` evaluates every task's
network on its own batch, ``(N, B, in) -> (N, B, out)``, in one ``baddbmm`` per layer, so one
gradient step updates all N learners at once; ``forward_selected`` evaluates row b with the
network of ``task_ids[b]``, ``(B, K, in) -> (B, K, out)``, which is how the Q-switch scores K
candidate actions with each row's own task critic. Tasks share no parameters: the output for
task i depends on task i's weights only (``tests/test_networks.py`` checks this against N
separate ``torch.nn.Linear`` stacks).

Initialisation follows garage's defaults for the release's networks (spec §2.3): actors use
Xavier-uniform weights, critics Xavier-normal, biases zero; fans are per task.
"""
from __future__ import annotations

import math
from typing import Literal, cast

import torch
from garage.torch.distributions import TanhNormal as GarageTanhNormal
from torch import nn
from torch.nn import functional as F

Init = Literal['xavier_uniform', 'xavier_normal']

# garage's TanhGaussianMLPPolicy clamps the standard deviation to [e^-20, e^2] (spec §2.3).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class TanhNormal(GarageTanhNormal):
    """garage's tanh-squashed Gaussian, declaring its (empty) argument constraints.

    garage's class predates ``torch.distributions.Distribution.arg_constraints``; without the
    declaration torch warns on every construction. Behaviour is garage's.
    """

    arg_constraints: dict = {}


def xavier_init_(weight: torch.Tensor, init: Init, fan_in: int, fan_out: int) -> None:
    """Xavier (Glorot) initialisation with explicit fans, in place.

    The fans are those of one task's (or one head's) layer even when several share a tensor,
    so every task starts as a separately initialised garage network would.
    """
    with torch.no_grad():
        if init == 'xavier_uniform':
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weight.uniform_(-bound, bound)
        else:
            weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))


def _init_task_weight(weight: torch.Tensor, init: Init) -> None:
    xavier_init_(weight, init, weight.shape[-2], weight.shape[-1])


def single_task(task_ids: torch.Tensor) -> torch.Tensor | int:
    """The task as an int when all rows share it (then weights need no per-row gather)."""
    first = int(task_ids[0])
    return first if bool((task_ids == first).all()) else task_ids


class TaskLinear(nn.Module):
    """N independent affine maps: ``y[i] = x[i] @ W[i] + b[i]``."""

    def __init__(self, n_tasks: int, in_features: int, out_features: int,
                 init: Init = 'xavier_uniform') -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_tasks, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(n_tasks, 1, out_features))
        _init_task_weight(self.weight, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, in) -> (N, B, out), task i's map applied to batch i."""
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_selected(self, task_ids: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """(B, K, in) -> (B, K, out), row b mapped by task ``task_ids[b]``.

        ``task_ids`` may be a single int when every row has the same task (one env per sampler
        worker); the task's weights are then used in place instead of gathered per row.
        """
        if isinstance(task_ids, int):
            return torch.matmul(x, self.weight[task_ids]) + self.bias[task_ids]
        return torch.baddbmm(self.bias[task_ids], x, self.weight[task_ids])


class TaskLayerNorm(nn.Module):
    """LayerNorm with a separate learned affine per task (garage's ``layer_normalization``)."""

    def __init__(self, n_tasks: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_tasks, 1, features))
        self.bias = nn.Parameter(torch.zeros(n_tasks, 1, features))

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | int | None = None
                ) -> torch.Tensor:
        normed = F.layer_norm(x, x.shape[-1:])
        if task_ids is None:
            return normed * self.weight + self.bias
        return normed * self.weight[task_ids] + self.bias[task_ids]


class TaskMLP(nn.Module):
    """N independent ReLU MLPs. As in garage's MLP modules, the optional LayerNorm comes before
    each hidden linear layer. With ``out_features=None`` it returns the last hidden layer."""

    def __init__(self, n_tasks: int, in_features: int, hidden_sizes: tuple[int, ...],
                 out_features: int | None, init: Init, layer_norm: bool = False) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        sizes = (in_features, *hidden_sizes)
        self.hidden = nn.ModuleList(
            TaskLinear(n_tasks, a, b, init) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.norms = nn.ModuleList(
            TaskLayerNorm(n_tasks, a) for a in sizes[:-1]) if layer_norm else None
        self.output = TaskLinear(n_tasks, sizes[-1], out_features, init) \
            if out_features is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, in) -> (N, B, out)."""
        for index, layer in enumerate(self.hidden):
            if self.norms is not None:
                x = self.norms[index](x)
            x = torch.relu(layer(x))
        return self.output(x) if self.output is not None else x

    def forward_selected(self, task_ids: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """(B, K, in) -> (B, K, out), row b through task ``task_ids[b]``'s MLP (an int: all
        rows through that task's MLP)."""
        for index, layer in enumerate(self.hidden):
            if self.norms is not None:
                x = self.norms[index](x, task_ids)
            x = torch.relu(cast(TaskLinear, layer).forward_selected(task_ids, x))
        return self.output.forward_selected(task_ids, x) if self.output is not None else x


class TaskTanhGaussianPolicies(nn.Module):
    """N tanh-squashed Gaussian actors (garage's ``TanhGaussianMLPPolicy``, one per task).

    Each actor is a ReLU trunk with a mean head and a state-dependent log-std head; the action
    is ``tanh(z)``, ``z ~ N(mu, sigma)``, and the reported ``mean`` is ``tanh(mu)``.
    """

    def __init__(self, n_tasks: int, state_dim: int, action_dim: int,
                 hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.trunk = TaskMLP(n_tasks, state_dim, hidden_sizes, None, 'xavier_uniform')
        self.mean_head = TaskLinear(n_tasks, hidden_sizes[-1], action_dim)
        self.log_std_head = TaskLinear(n_tasks, hidden_sizes[-1], action_dim)

    @staticmethod
    def _distribution(mean: torch.Tensor, log_std: torch.Tensor) -> TanhNormal:
        return TanhNormal(mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp())

    def forward(self, states: torch.Tensor) -> TanhNormal:
        """Task i's action distribution on batch i: states (N, B, S) -> events (N, B, A)."""
        return self._distribution(*self.gaussian_parameters(states))

    def gaussian_parameters(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and (unclamped) log-std of task i's Gaussian on batch i."""
        features = self.trunk(states)
        return self.mean_head(features), self.log_std_head(features)

    def gaussian(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and standard deviation (clamped as the distribution's), (N, B, A)."""
        mean, log_std = self.gaussian_parameters(states)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()

    def forward_selected(self, task_ids: torch.Tensor, states: torch.Tensor) -> TanhNormal:
        """Row b's own task actor: states (B, K, S) -> events (B, K, A)."""
        tasks = single_task(task_ids)
        features = self.trunk.forward_selected(tasks, states)
        return self._distribution(self.mean_head.forward_selected(tasks, features),
                                  self.log_std_head.forward_selected(tasks, features))

    def propose(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every policy's proposal for every state: states (B, S) -> sampled and mean actions,
        each (P, B, A) with P = N policies. This is step 1 of the Q-switch (paper Eq. 3)."""
        expanded = states.unsqueeze(0).expand(self.n_tasks, *states.shape)
        distribution = self(expanded)
        return distribution.rsample(), distribution.mean


class TaskTwinCritics(nn.Module):
    """N pairs of Q-functions ``Q1_i, Q2_i(s, a)`` (garage's ``ContinuousMLPQFunction``)."""

    def __init__(self, n_tasks: int, state_dim: int, action_dim: int,
                 hidden_sizes: tuple[int, ...], layer_norm: bool = False) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.q1 = TaskMLP(n_tasks, state_dim + action_dim, hidden_sizes, 1, 'xavier_normal',
                          layer_norm)
        self.q2 = TaskMLP(n_tasks, state_dim + action_dim, hidden_sizes, 1, 'xavier_normal',
                          layer_norm)

    def forward(self, states: torch.Tensor,
                actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Task i's twin Q on batch i: (N, B, S), (N, B, A) -> two (N, B) tensors."""
        inputs = torch.cat([states, actions], dim=-1)
        return self.q1(inputs).squeeze(-1), self.q2(inputs).squeeze(-1)

    def score(self, task_ids: torch.Tensor, states: torch.Tensor, candidates: torch.Tensor,
              critic: Literal['q1', 'min']) -> torch.Tensor:
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
        n_candidates = candidates.shape[0]
        tasks = single_task(task_ids)
        per_row = candidates.transpose(0, 1)  # (B, P, A)
        repeated = states.unsqueeze(1).expand(-1, n_candidates, -1)  # (B, P, S)
        inputs = torch.cat([repeated, per_row], dim=-1)
        scores = self.q1.forward_selected(tasks, inputs).squeeze(-1)  # (B, P)
        if critic == 'min':
            scores = torch.minimum(scores, self.q2.forward_selected(tasks, inputs).squeeze(-1))
        return scores.transpose(0, 1)
