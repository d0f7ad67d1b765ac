"""Separated networks: N independent MLPs held as one module and evaluated with batched matmuls.

The separated architecture of the paper (one actor and two critics per task) is stored as
weights with a leading task axis, ``(N, fan_in, fan_out)``. ``for_rows(EACH_TASK, ...)``
evaluates every task's network on its own batch, ``(N, B, in) -> (N, B, out)``, in one
``baddbmm`` per layer (on CPU from ``PER_TASK_MATMUL_MIN_ROWS`` rows per task, one ``addmm``
chain per task, which measured faster there), so one gradient step updates all N learners at
once; with a (B,) tensor of task ids it evaluates row b with the network of ``task_ids[b]``,
``(B, K, in) -> (B, K, out)``, which is how the routing policy acts. Tasks share no
parameters: the output for task i depends on task i's weights only (``tests/test_networks.py``
checks this against N separate ``torch.nn.Linear`` stacks). The interface is
``learning/networks/contract.py``'s.

Initialisation follows garage's defaults for the release's networks: actors use Xavier-uniform
weights, critics Xavier-normal, biases zero; fans are per task.
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from learning.networks.contract import RowTasks, ScoreCritic
from learning.networks.distributions import TanhNormal, clamped_std, tanh_gaussian
from learning.networks.initialization import Init, xavier_init_


def _init_task_weight(weight: torch.Tensor, init: Init) -> None:
    xavier_init_(weight, init, weight.shape[-2], weight.shape[-1])


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, *, in) -> (B, K, in), the inner sample axes flattened into one."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


# From this many rows per task on, ``TaskMLP.forward`` runs each task's rows through its own
# chain of ``addmm`` (stacked once at the end) instead of one ``baddbmm`` per layer: measured
# forward + backward of a 256×256 critic, 2 CPU threads, 8–19 % faster at 1,024–2,560 rows
# per task (N = 5 and 10; MT10's preset batch is 2,560), and slower below about 500 rows,
# where the per-task calls outnumber the arithmetic (Jaco's 32 rows: 1.5× slower). Measured on
# CPU only, so a GPU keeps the one batched kernel per layer.
PER_TASK_MATMUL_MIN_ROWS = 1024

RowPath = Literal['one task', 'every task evenly', 'per-row gather', 'one matmul per task']


def runs_per_task(x: torch.Tensor) -> bool:
    """Whether a ``TaskMLP`` runs the (N, B, in) batch ``x`` task by task
    (``PER_TASK_MATMUL_MIN_ROWS``)."""
    return x.shape[1] >= PER_TASK_MATMUL_MIN_ROWS and x.device.type == 'cpu'


class RowGroups:
    """The rows of a batch grouped by task, so that a layer applies each task's weights to its
    rows without copying a weight matrix per row.

    Acting calls the networks on rows of mixed tasks (the routing policy's and the Q-switch's
    batches of all running envs). Gathering ``weight[task_ids]`` there copies one ``(in, out)``
    matrix per row, which dominated a lockstep evaluation. After one sort of the (B,) ids, the
    path every layer of the call takes is chosen once, by measurement
    (``benchmarks/row_groups.py``):

    * rows of one task only: that task's weights, the rows as they are;
    * every task present with the same number of rows (lockstep collection and evaluation):
      the rows are the ``(N, c, in)`` batch of ``TaskLinear.forward``, one ``baddbmm`` with
      the weights as they are (and a whole ``TaskMLP`` runs on that batch at once);
    * several rows per task otherwise: one matmul per task;
    * about one row per task: the per-row gather, the cheapest then.

    Rows keep their order within a task, and ``ungroup`` restores the caller's order (rows
    already in task order are not permuted at all).
    """

    def __init__(self, task_ids: torch.Tensor | int, n_rows: int, n_tasks: int) -> None:
        self.order: torch.Tensor | None = None
        self.inverse: torch.Tensor | None = None
        self.sorted_ids: torch.Tensor | int
        self.n_tasks = n_tasks
        if isinstance(task_ids, int):
            self.tasks, self.sizes, self.sorted_ids = [task_ids], [n_rows], task_ids
        else:
            # The bookkeeping runs on one host copy of the ids: a few numpy calls on B ints
            # cost less than the torch calls (and device syncs) they replace.
            host_ids = task_ids.cpu().numpy()
            # Rows already in task order (lockstep collection and evaluation hand them so, and
            # rows of one task are) need no permutation in either direction.
            if n_rows > 1 and bool((host_ids[1:] < host_ids[:-1]).any()):
                order = np.argsort(host_ids, kind='stable')
                host_ids = host_ids[order]
                self.order = torch.as_tensor(order, device=task_ids.device)
                self.inverse = torch.as_tensor(np.argsort(order), device=task_ids.device)
                task_ids = task_ids.index_select(0, self.order)
            counts = np.bincount(host_ids)
            present = np.flatnonzero(counts)  # sorted rows: the tasks in row order
            self.tasks, self.sizes = present.tolist(), counts[present].tolist()
            self.sorted_ids = self.tasks[0] if len(self.tasks) == 1 else task_ids
        # The layer path, decided once for every layer of the call (class docstring).
        self.path: RowPath
        if len(self.tasks) == 1:
            self.path = 'one task'
        elif len(self.tasks) == n_tasks and len(set(self.sizes)) == 1:
            self.path = 'every task evenly'
        elif n_rows < 2 * len(self.tasks):
            self.path = 'per-row gather'
        else:
            self.path = 'one matmul per task'

    def as_task_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Grouped rows (B, K, in) of the 'every task evenly' path as ``TaskLinear``'s
        (N, B·K/N, in) batch."""
        return x.reshape(self.n_tasks, -1, x.shape[-1])

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """Rows in the caller's order -> rows sorted by task."""
        return x if self.order is None else x.index_select(0, self.order)

    def ungroup(self, y: torch.Tensor) -> torch.Tensor:
        """Rows sorted by task -> rows in the caller's order."""
        return y if self.inverse is None else y.index_select(0, self.inverse)


class TaskLinear(nn.Module):
    """N independent affine maps: ``y[i] = x[i] @ W[i] + b[i]``."""

    def __init__(
        self, n_tasks: int, in_features: int, out_features: int, init: Init = 'xavier_uniform'
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_tasks, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(n_tasks, 1, out_features))
        _init_task_weight(self.weight, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, in) -> (N, B, out), task i's map applied to batch i."""
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_selected(self, task_ids: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """(B, K, in) -> (B, K, out), row b mapped by task ``task_ids[b]`` (an int: every row
        by that task)."""
        rows = RowGroups(task_ids, len(x), self.weight.shape[0])
        return rows.ungroup(self.forward_grouped(rows, rows.group(x)))

    def forward_grouped(self, rows: RowGroups, x: torch.Tensor) -> torch.Tensor:
        """(B, K, in) -> (B, K, out) for rows already in ``rows``' task order."""
        if rows.path == 'one task':
            return torch.matmul(x, self.weight[rows.tasks[0]]) + self.bias[rows.tasks[0]]
        if rows.path == 'every task evenly':
            return self(rows.as_task_batch(x)).view(*x.shape[:-1], -1)
        if rows.path == 'per-row gather':
            ids = rows.sorted_ids
            return torch.baddbmm(self.bias[ids], x, self.weight[ids])
        return torch.cat(
            [
                torch.matmul(chunk, self.weight[task]) + self.bias[task]
                for task, chunk in zip(rows.tasks, x.split(rows.sizes), strict=True)
            ]
        )


class TaskLayerNorm(nn.Module):
    """LayerNorm with a separate learned affine per task (garage's ``layer_normalization``)."""

    def __init__(self, n_tasks: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_tasks, 1, features))
        self.bias = nn.Parameter(torch.zeros(n_tasks, 1, features))

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | int | None = None) -> torch.Tensor:
        normed = F.layer_norm(x, x.shape[-1:])
        if task_ids is None:
            return normed * self.weight + self.bias
        return normed * self.weight[task_ids] + self.bias[task_ids]


class TaskMLP(nn.Module):
    """N independent ReLU MLPs. As in garage's MLP modules, the optional LayerNorm comes before
    each hidden linear layer. With ``out_features=None`` it returns the last hidden layer."""

    def __init__(
        self,
        n_tasks: int,
        in_features: int,
        hidden_sizes: tuple[int, ...],
        out_features: int | None,
        init: Init,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        sizes = (in_features, *hidden_sizes)
        self.hidden = nn.ModuleList(
            TaskLinear(n_tasks, a, b, init) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.norms = (
            nn.ModuleList(TaskLayerNorm(n_tasks, a) for a in sizes[:-1]) if layer_norm else None
        )
        self.output = (
            TaskLinear(n_tasks, sizes[-1], out_features, init) if out_features is not None else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, in) -> (N, B, out)."""
        if runs_per_task(x):
            return self.forward_per_task(x)
        for index, layer in enumerate(self.hidden):
            if self.norms is not None:
                x = self.norms[index](x)
            x = torch.relu(layer(x))
        return self.output(x) if self.output is not None else x

    def forward_per_task(
        self, x: torch.Tensor, output: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``forward``'s function for large batches (``runs_per_task``): task i's rows through
        task i's layers as plain matmuls. The linear layers' parameters are split with
        ``unbind``, whose backward stacks the per-task gradients in one pass (indexing
        ``weight[i]`` would write a whole zero gradient per task); the small LayerNorm affines
        are indexed by ``TaskLayerNorm`` itself. ``output`` ((N, in, out) weight, (N, 1, out)
        bias) replaces ``self.output`` as the last layer (the actors' two heads side by side)."""
        hidden = [cast(TaskLinear, layer) for layer in self.hidden]
        if output is None and self.output is not None:
            output = (self.output.weight, self.output.bias)
        weights = [layer.weight.unbind(0) for layer in hidden]
        biases = [layer.bias.unbind(0) for layer in hidden]
        output_weights, output_biases = (
            (output[0].unbind(0), output[1].unbind(0)) if output is not None else ((), ())
        )
        outputs = []
        for task, rows in enumerate(x.unbind(0)):
            for index in range(len(hidden)):
                if self.norms is not None:
                    rows = self.norms[index](rows, task)
                rows = torch.relu(torch.addmm(biases[index][task], rows, weights[index][task]))
            if output is not None:
                rows = torch.addmm(output_biases[task], rows, output_weights[task])
            outputs.append(rows)
        return torch.stack(outputs)

    def forward_selected(self, task_ids: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """(B, K, in) -> (B, K, out), row b through task ``task_ids[b]``'s MLP (an int: all
        rows through that task's MLP)."""
        rows = RowGroups(task_ids, len(x), self.n_tasks)
        return rows.ungroup(self.forward_grouped(rows, rows.group(x)))

    def forward_grouped(self, rows: RowGroups, x: torch.Tensor) -> torch.Tensor:
        """(B, K, in) -> (B, K, out) for rows already in ``rows``' task order."""
        if rows.path == 'every task evenly':  # the whole MLP on the (N, ·, in) batch
            return self(rows.as_task_batch(x)).view(*x.shape[:-1], -1)
        for index, layer in enumerate(self.hidden):
            if self.norms is not None:
                x = self.norms[index](x, rows.sorted_ids)
            x = torch.relu(cast(TaskLinear, layer).forward_grouped(rows, x))
        return self.output.forward_grouped(rows, x) if self.output is not None else x


class TaskTanhGaussianPolicies(nn.Module):
    """N tanh-squashed Gaussian actors (garage's ``TanhGaussianMLPPolicy``, one per task).

    Each actor is a ReLU trunk with a mean head and a state-dependent log-std head; the action
    is ``tanh(z)``, ``z ~ N(mu, sigma)``, and the reported ``mean`` is ``tanh(mu)``.
    """

    def __init__(
        self, n_tasks: int, state_dim: int, action_dim: int, hidden_sizes: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.hidden_sizes = tuple(hidden_sizes)
        self.trunk = TaskMLP(n_tasks, state_dim, hidden_sizes, None, 'xavier_uniform')
        self.mean_head = TaskLinear(n_tasks, hidden_sizes[-1], action_dim)
        self.log_std_head = TaskLinear(n_tasks, hidden_sizes[-1], action_dim)

    def forward(self, states: torch.Tensor) -> TanhNormal:
        """Task i's action distribution on batch i: states (N, B, S) -> events (N, B, A)."""
        return tanh_gaussian(*self.gaussian_parameters(states))

    def gaussian_parameters(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and (unclamped) log-std of task i's Gaussian on batch i.

        Task by task (large CPU batches, ``runs_per_task``), the two heads run as one
        (hidden, 2A) layer at the end of each task's chain: the (N, B, hidden) features are
        then never stacked, and the backward forms their gradient with one matmul per task
        instead of two ``bmm`` against transposed (hidden, A) weights, which run several
        times slower than their FLOPs (``benchmarks/update_step.py``: 4–5 % off an MT10-shaped
        step). The mean and log-std are the same to the bit.
        """
        if runs_per_task(states):
            heads = (self.mean_head, self.log_std_head)
            both = self.trunk.forward_per_task(
                states,
                (
                    torch.cat([head.weight for head in heads], dim=-1),
                    torch.cat([head.bias for head in heads], dim=-1),
                ),
            )
            return both[..., : self.action_dim], both[..., self.action_dim :]
        features = self.trunk(states)
        return self.mean_head(features), self.log_std_head(features)

    def gaussian(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and standard deviation (clamped as the distribution's), (N, B, A)."""
        mean, log_std = self.gaussian_parameters(states)
        return mean, clamped_std(log_std)

    def for_rows(self, task_ids: RowTasks, states: torch.Tensor) -> TanhNormal:
        """Row b's own task actor: states (B, *, S) -> events (B, *, A)."""
        if isinstance(task_ids, str):
            return self(states)
        rows = RowGroups(task_ids, len(states), self.n_tasks)
        grouped = rows.group(_as_rows(states))
        if rows.path == 'every task evenly':
            # Trunk and both heads on ``forward``'s (N, ·, S) batch in one go: about 40 µs
            # (9 %) less per lockstep routing call on the toy env than layer by layer.
            grouped_shape = grouped.shape[:-1] + (self.action_dim,)
            mean, log_std = (
                out.reshape(grouped_shape)
                for out in self.gaussian_parameters(rows.as_task_batch(grouped))
            )
        else:
            features = self.trunk.forward_grouped(rows, grouped)
            mean = self.mean_head.forward_grouped(rows, features)
            log_std = self.log_std_head.forward_grouped(rows, features)
        shape = states.shape[:-1] + (self.action_dim,)
        return tanh_gaussian(rows.ungroup(mean).view(shape), rows.ungroup(log_std).view(shape))

    def propose(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every policy's proposal for every state: states (B, S) -> sampled and mean actions,
        each (P, B, A) with P = N policies. This is step 1 of the Q-switch (paper Eq. 3)."""
        expanded = states.unsqueeze(0).expand(self.n_tasks, *states.shape)
        distribution = self(expanded)
        return distribution.rsample(), distribution.mean


class TaskTwinCritics(nn.Module):
    """N pairs of Q-functions ``Q1_i, Q2_i(s, a)`` (garage's ``ContinuousMLPQFunction``)."""

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
        self.q1 = TaskMLP(
            n_tasks, state_dim + action_dim, hidden_sizes, 1, 'xavier_normal', layer_norm
        )
        self.q2 = TaskMLP(
            n_tasks, state_dim + action_dim, hidden_sizes, 1, 'xavier_normal', layer_norm
        )

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Task i's twin Q on batch i: (N, B, S), (N, B, A) -> two (N, B) tensors."""
        inputs = torch.cat([states, actions], dim=-1)
        return self.q1(inputs).squeeze(-1), self.q2(inputs).squeeze(-1)

    def for_rows(
        self, task_ids: RowTasks, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Row b's task Q1 and Q2: (B, *, S), (B, *, A) -> two (B, *)."""
        if isinstance(task_ids, str):
            return self(states, actions)
        rows = RowGroups(task_ids, len(states), self.n_tasks)
        inputs = rows.group(_as_rows(torch.cat([states, actions], dim=-1)))
        shape = states.shape[:-1]
        return (
            rows.ungroup(self.q1.forward_grouped(rows, inputs)).view(shape),
            rows.ungroup(self.q2.forward_grouped(rows, inputs)).view(shape),
        )

    def score(
        self,
        task_ids: torch.Tensor,
        states: torch.Tensor,
        candidates: torch.Tensor,
        critic: ScoreCritic,
    ) -> torch.Tensor:
        """(P, B) scores of P candidate actions per state by that state's task critic (see
        ``contract.ScoringCritics``)."""
        n_candidates = candidates.shape[0]
        rows = RowGroups(task_ids, len(states), self.n_tasks)
        per_row = candidates.transpose(0, 1)  # (B, P, A)
        repeated = states.unsqueeze(1).expand(-1, n_candidates, -1)  # (B, P, S)
        inputs = rows.group(torch.cat([repeated, per_row], dim=-1))
        scores = self.q1.forward_grouped(rows, inputs).squeeze(-1)  # (B, P), task order
        if critic == 'min':
            scores = torch.minimum(scores, self.q2.forward_grouped(rows, inputs).squeeze(-1))
        return rows.ungroup(scores).transpose(0, 1)
