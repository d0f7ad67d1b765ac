"""PCGrad: projecting conflicting per-task gradients (Yu et al. 2020, "Gradient Surgery for
Multi-Task Learning", Algorithm 1), for the shared parameters of the parameter-sharing learner
(``--use_pc_grad``).

For each task gradient g_i, visit the other tasks in a random order and, whenever g_i conflicts
with the original g_j (g_i·g_j < 0), remove its component along g_j:
g_i ← g_i − (g_i·g_j / ‖g_j‖²) g_j. The projected gradients are then combined: parameters that
every task's loss reaches get their mean, the others their sum (as the release does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def project_conflicting(
    gradients: Sequence[torch.Tensor], generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """The PCGrad projection of flat per-task gradients (each (P,)); inputs are not modified."""
    projected = []
    for i, gradient in enumerate(gradients):
        g_i = gradient.clone()
        others = [j for j in range(len(gradients)) if j != i]
        for index in torch.randperm(len(others), generator=generator).tolist():
            g_j = gradients[others[index]]
            dot = torch.dot(g_i, g_j)
            if dot < 0:
                g_i = g_i - dot / torch.dot(g_j, g_j) * g_j
        projected.append(g_i)
    return projected


def pcgrad_backward(
    losses: Sequence[torch.Tensor],
    parameters: Sequence[torch.nn.Parameter],
    generator: torch.Generator | None = None,
) -> None:
    """Writes the PCGrad combination of the per-task ``losses``' gradients into ``.grad``."""
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
    projected = torch.stack(project_conflicting(flat_gradients, generator))
    shared = torch.stack(reached).all(dim=0)
    combined = torch.where(shared, projected.mean(dim=0), projected.sum(dim=0))
    offset = 0
    for parameter in parameters:
        parameter.grad = combined[offset : offset + parameter.numel()].view_as(parameter).clone()
        offset += parameter.numel()
