"""Adam over parameters with a leading task axis, stepping only the tasks that trained.

The per-task networks store N learners in one tensor (``learning/networks.py``). One
``torch.optim.Adam`` over such a tensor would move every task's slice on every step (its moment
estimates keep pushing even when a task's gradient is zero), so a task with fewer gradient steps
in an iteration (spec §3.4: steps are split in proportion to collected data) would still be
updated. ``TaskAdam`` keeps Adam's moments and step count per task and updates only the slices
whose task is active; for each task it computes exactly what a separate ``torch.optim.Adam``
(default settings) would (``tests/test_optim.py``).
"""
from __future__ import annotations

from typing import Iterable

import torch


class TaskAdam:
    """Adam with per-task state. Every parameter's first dimension is the task axis.

    Args:
        params: parameters shaped (N, ...).
        n_tasks: N.
        lr: learning rate.
        betas: Adam's moment decay rates.
        eps: Adam's denominator constant.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], n_tasks: int, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = list(params)
        for param in self.params:
            if param.shape[0] != n_tasks:
                raise ValueError(f'parameter of shape {tuple(param.shape)} has no leading '
                                 f'task axis of size {n_tasks}')
        self.n_tasks = n_tasks
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # Per parameter and task, like torch.optim.Adam, which skips a parameter without grad.
        self.steps = [torch.zeros(n_tasks, dtype=torch.float64) for _ in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One Adam step for the tasks where ``active`` (bool, (N,)) is true."""
        active_cpu = active.detach().to('cpu', torch.bool)
        beta1, beta2 = self.betas
        for param, exp_avg, exp_avg_sq, steps in zip(self.params, self.exp_avg,
                                                     self.exp_avg_sq, self.steps):
            if param.grad is None:
                continue
            steps += active_cpu.double()
            counted = steps.clamp(min=1.0)
            shape = (self.n_tasks,) + (1,) * (param.dim() - 1)
            mask = active_cpu.to(param.device).view(shape)
            grad = param.grad
            exp_avg.copy_(torch.where(mask, exp_avg * beta1 + grad * (1.0 - beta1), exp_avg))
            exp_avg_sq.copy_(torch.where(mask, exp_avg_sq * beta2 + grad * grad * (1.0 - beta2),
                                         exp_avg_sq))
            step_size = (self.lr / (1.0 - beta1 ** counted)).to(param.device, param.dtype)
            correction2_sqrt = (1.0 - beta2 ** counted).sqrt().to(param.device, param.dtype)
            denom = exp_avg_sq.sqrt() / correction2_sqrt.view(shape) + self.eps
            param.sub_(torch.where(mask, step_size.view(shape) * exp_avg / denom,
                                   torch.zeros_like(param)))

    def to(self, device: torch.device | str) -> 'TaskAdam':
        """Moves the moment estimates next to their parameters (after the module moved)."""
        self.exp_avg = [m.to(device) for m in self.exp_avg]
        self.exp_avg_sq = [v.to(device) for v in self.exp_avg_sq]
        return self


def move_optimizer_state(optimizer: 'TaskAdam | torch.optim.Optimizer',
                         device: torch.device | str) -> None:
    """Moves an optimizer's moment estimates next to its (already moved) parameters."""
    if isinstance(optimizer, TaskAdam):
        optimizer.to(device)
        return
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != 'step':
                state[key] = value.to(device)
