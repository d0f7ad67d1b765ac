"""Adam over parameters with a leading task axis, stepping only the tasks that trained.

The per-task networks store N learners in one tensor (``learning/networks/separate.py``). One
``torch.optim.Adam`` over such a tensor would move every task's slice on every step (its moment
estimates keep pushing even when a task's gradient is zero), so a task with fewer gradient steps
in an iteration (steps are split in proportion to collected data) would still be updated.
``TaskAdam`` keeps Adam's moments and step count per task and updates only the slices whose task
is active; for each task it computes what a separate ``torch.optim.Adam`` (default settings)
would, to float rounding (``tests/test_optim.py``).

Speed: one step is a single call of PyTorch's fused Adam kernel (the one behind
``torch.optim.Adam(fused=True)``) over the per-task slices ``param[t]`` of the active tasks
only: every element is read and written once, instead of a dozen whole-tensor passes per
parameter, and an inactive task's slices are not touched at all. Each slice has its own step
count, so bias correction is per task. The per-task views of the parameters, moments and step
counts are made once and kept (only the gradients are new each step): splitting them anew cost
about a millisecond of a 17 ms Jaco-preset gradient step.

Device: the step counts are float32 and live next to their parameters, as
``torch.optim.Adam(fused=True)`` keeps them. The fused CUDA kernel reads each count from the
device as a float, and a host-side count would be copied to the GPU in every step, making the
host wait. They advance with one ``_foreach_add_`` on the device. On the CPU, float32 and the
float64 counts of earlier versions give bit-identical updates (the kernel reads a float either
way). Counts are exact up to 2**24 steps per task; from there on Adam's bias corrections are 1
to float precision, so a count that no longer grows changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


class TaskAdam:
    """Adam with per-task state. Every parameter's first dimension is the task axis.

    Args:
        params: parameters shaped (N, ...).
        n_tasks: N.
        lr: learning rate.
        betas: Adam's moment decay rates.
        eps: Adam's denominator constant.

    Attributes:
        exp_avg, exp_avg_sq: per parameter, its (N, ...) moment estimates.
        steps: per parameter, its (N,) float32 step counts on the parameter's device, counted
            like ``torch.optim.Adam``'s: a parameter without a gradient does not advance.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        n_tasks: int,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        for param in self.params:
            if param.dim() == 0 or param.shape[0] != n_tasks:
                raise ValueError(
                    f'parameter of shape {tuple(param.shape)} has no leading '
                    f'task axis of size {n_tasks}'
                )
        self.n_tasks = n_tasks
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.exp_avg = [
            torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params
        ]
        self.exp_avg_sq = [
            torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params
        ]
        # Per parameter and task, like torch.optim.Adam, which skips a parameter without grad.
        self.steps = [
            torch.zeros(n_tasks, dtype=torch.float32, device=p.device) for p in self.params
        ]
        self._views: list[tuple[tuple[torch.Tensor, ...], ...]] | None = None

    def __getstate__(self) -> dict:
        # The cached views are rebuilt after unpickling, not pickled beside their tensors.
        return {key: value for key, value in self.__dict__.items() if key != '_views'}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._views = None  # also for snapshots written before the views were cached
        # Snapshots written before the counts moved next to the parameters hold float64 ones.
        self.steps = [
            steps.to(param.device, torch.float32)
            for steps, param in zip(self.steps, self.params, strict=True)
        ]

    def _task_views(self) -> list[tuple[tuple[torch.Tensor, ...], ...]]:
        """Per parameter: its, its moments' and its step counts' per-task views (made once;
        ``to()`` drops them with the tensors they view)."""
        if self._views is None:
            self._views = [
                tuple(tensor.unbind(0) for tensor in tensors)
                for tensors in zip(
                    self.params, self.exp_avg, self.exp_avg_sq, self.steps, strict=True
                )
            ]
        return self._views

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self, active: np.ndarray | torch.Tensor) -> None:
        """One Adam step for the tasks where ``active`` (bool, (N,)) is true. The learners pass
        a host array: a mask on a GPU would have to be copied back to pick the slices, which
        makes the GPU wait for the host."""
        if isinstance(active, torch.Tensor):
            active = active.detach().to('cpu', torch.bool).numpy()
        task_ids = np.flatnonzero(active).tolist()
        if not task_ids:
            return
        every_task = len(task_ids) == self.n_tasks
        groups: dict[tuple[torch.device, torch.dtype], tuple[list, ...]] = {}
        # The step counts this step advances: whole count tensors when every task steps (one
        # add per parameter, not one per task slice: about 10 against 44 µs a step of an
        # 8-parameter network of 5 tasks on the CPU), else the active tasks' slices.
        advanced: list[torch.Tensor] = []
        for param, steps, (param_views, exp_avg_views, exp_avg_sq_views, step_views) in zip(
            self.params, self.steps, self._task_views(), strict=True
        ):
            if param.grad is None:
                continue
            advanced.extend([steps] if every_task else [step_views[t] for t in task_ids])
            grad = param.grad if param.grad.is_contiguous() else param.grad.contiguous()
            slices = (param_views, grad.unbind(0), exp_avg_views, exp_avg_sq_views, step_views)
            lists = groups.setdefault((param.device, param.dtype), ([], [], [], [], []))
            for collected, per_task in zip(lists, slices, strict=True):
                collected.extend(per_task if every_task else [per_task[t] for t in task_ids])
        if not advanced:
            return  # no parameter has a gradient
        torch._foreach_add_(advanced, 1.0)  # pylint: disable=protected-access
        for params, grads, exp_avgs, exp_avg_sqs, step_counts in groups.values():
            # One fused pass over every active slice: the update of torch.optim.Adam with its
            # own step count per slice.
            torch._fused_adam_(  # pylint: disable=protected-access
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                step_counts,
                amsgrad=False,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
            )

    def to(self, device: torch.device | str) -> TaskAdam:
        """Moves the moment estimates and step counts next to their parameters (after the
        module moved)."""
        self.exp_avg = [m.to(device) for m in self.exp_avg]
        self.exp_avg_sq = [v.to(device) for v in self.exp_avg_sq]
        self.steps = [s.to(device) for s in self.steps]
        self._views = None
        return self


def move_optimizer_state(
    optimizer: TaskAdam | torch.optim.Optimizer, device: torch.device | str
) -> None:
    """Moves an optimizer's state next to its (already moved) parameters: the moment
    estimates, and the step counts where the optimizer reads them on the parameters' device
    (fused or capturable ``torch.optim.Adam``; the plain one wants them on the host)."""
    if isinstance(optimizer, TaskAdam):
        optimizer.to(device)
        return
    for group in optimizer.param_groups:
        steps_on_device = bool(group.get('fused') or group.get('capturable'))
        for param in group['params']:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if torch.is_tensor(value) and (key != 'step' or steps_on_device):
                    state[key] = value.to(device)
