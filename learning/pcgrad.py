"""PCGrad: projecting conflicting per-task gradients (Yu et al. 2020, "Gradient Surgery for
Multi-Task Learning", Algorithm 1), for the shared parameters of the parameter-sharing learner
(``--use_pc_grad``).

For each task gradient g_i, visit the other tasks in a random order and, whenever g_i conflicts
with the original g_j (g_i·g_j < 0), remove its component along g_j:
g_i ← g_i − (g_i·g_j / ‖g_j‖²) g_j. The projected gradients are then combined: parameters that
every task's loss reaches get their mean, the others their sum (as the release does).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from learning.batches import to_device


@functools.cache
def _other_tasks(n_tasks: int) -> torch.Tensor:
    """(N, N−1) host tensor: row i lists the tasks j ≠ i in increasing order (never mutated)."""
    positions = torch.arange(n_tasks - 1)
    return positions + (positions[None, :] >= torch.arange(n_tasks)[:, None])


def visiting_orders(n_tasks: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, N−1) host tensor: row i lists the other tasks in the random order task i's gradient
    visits them (one ``randperm`` per task, drawn in task order)."""
    if n_tasks < 2:
        return torch.empty(n_tasks, 0, dtype=torch.long)
    draws = [torch.randperm(n_tasks - 1, generator=generator) for _ in range(n_tasks)]
    return _other_tasks(n_tasks).gather(1, torch.stack(draws))


def project_conflicting(
    gradients: Sequence[torch.Tensor], generator: torch.Generator | None = None
) -> torch.Tensor:
    """(N, P) the PCGrad projection of flat per-task gradients ((P,) each); the inputs are not
    modified.

    Every projection subtracts a multiple of an original gradient, so each projected g_i is a
    combination Σ_m W_im g_m (W = I at first), and the dot product a visit needs is
    g_i'·g_j = Σ_m W_im (g_m·g_j): the N×N Gram matrix of the gradients holds them all. The
    visits then update W in N−1 rounds of (N, N) ops, one visit of every task per round, and
    one matrix product forms the result: two passes over the (N, P) gradients instead of
    N·(N−1) dot products. Whether a pair conflicts is decided on the device, not by reading
    the dot product back, which on a GPU would wait for the device N·(N−1) times: the
    coefficient min(g_i'·g_j / ‖g_j‖², 0) is zero unless they conflict. A zero gradient (a task
    absent from the batch) conflicts with nothing and stays zero. W's small sums run in float64.
    """
    original = torch.stack(list(gradients))
    n_tasks = len(original)
    orders = to_device(visiting_orders(n_tasks, generator), original.device)  # (N, N-1)
    gram = (original @ original.T).double()
    # ‖g_j‖² of each visit; a zero gradient's dot products are zero, so any positive divisor
    # gives it the coefficient 0.
    squared_norms = gram.diagonal()[orders].clamp(min=torch.finfo(gram.dtype).tiny)
    visited_columns = gram[:, orders].permute(2, 1, 0)  # [k, i, m] = g_m·g_(visit k of i)
    weights = torch.eye(n_tasks, dtype=gram.dtype, device=gram.device)
    for k in range(n_tasks - 1):
        dot = torch.linalg.vecdot(weights, visited_columns[k])  # g_i'·g_(visit k of i)
        coefficient = (dot / squared_norms[:, k]).clamp(max=0.0)
        weights.scatter_add_(1, orders[:, k : k + 1], -coefficient[:, None])
    return weights.to(original.dtype) @ original


def pcgrad_backward(
    losses: Sequence[torch.Tensor],
    parameters: Sequence[torch.nn.Parameter],
    generator: torch.Generator | None = None,
    present: torch.Tensor | None = None,
) -> None:
    """Writes the PCGrad combination of the per-task ``losses``' gradients into ``.grad``.

    ``present`` ((N,) bool, on the parameters' device) marks the tasks that had samples; an
    absent task's loss must have a zero gradient. It then adds nothing to a sum, is projected
    onto by no one, and the mean of the shared parameters is over the present tasks only, as if
    its loss had not been passed, without reading the mask back to the host.
    """
    flat_gradients, reached = [], []
    for loss in losses:
        gradients = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
        flat_gradients.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).flatten()
                    for g, p in zip(gradients, parameters, strict=True)
                ]
            )
        )
        reached.append(
            torch.cat(
                [
                    torch.full((p.numel(),), g is not None, device=p.device)
                    for g, p in zip(gradients, parameters, strict=True)
                ]
            )
        )
    projected = project_conflicting(flat_gradients, generator)
    shared = torch.stack(reached).all(dim=0)
    total = projected.sum(dim=0)
    n_present = len(losses) if present is None else present.sum()
    combined = torch.where(shared, total / n_present, total)
    offset = 0
    for parameter in parameters:
        parameter.grad = combined[offset : offset + parameter.numel()].view_as(parameter).clone()
        offset += parameter.numel()
