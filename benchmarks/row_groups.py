"""Acting on rows of mixed tasks: ``RowGroups`` vs copying one weight matrix per row.

When the routing policy or the Q-switch evaluates the separated networks on rows that belong to
different tasks (all envs of a lockstep evaluation or collection), the previous path gathered
``weight[task_ids]``, one ``(in, out)`` matrix per row, and ran one ``baddbmm``.
``learning/networks/separate.py::RowGroups`` sorts the rows by task instead and applies each
task's weights as they are. Printed: per shape, milliseconds per acting step (the routing
policy's ``for_rows`` plus the Q-switch's ``propose`` and ``score``) of both paths, their
ratio, and the largest difference of their outputs (float rounding only).

    python benchmarks/row_groups.py            # 5 trials of 200 steps per shape
    python benchmarks/row_groups.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.networks.distributions import tanh_gaussian  # noqa: E402
from learning.networks.separate import (  # noqa: E402
    TaskLinear,
    TaskMLP,
    TaskTanhGaussianPolicies,
    TaskTwinCritics,
)

# name: (tasks, state dim, action dim, rows per task; None = uneven, as when episodes end).
SHAPES = {
    'Jaco evaluation, 10 episodes per task': (5, 18, 6, 10),
    'Jaco evaluation, 37 episodes still running': (5, 18, 6, None),
    'MT10 evaluation, 10 episodes per task': (10, 39, 4, 10),
    'MT10 collection, one env per task': (10, 39, 4, 1),
}
HIDDEN = (256, 256)


def _row_task_ids(n_tasks: int, per_task: int | None) -> torch.Tensor:
    if per_task is not None:
        return torch.arange(n_tasks).repeat(per_task)
    return torch.arange(n_tasks).repeat(10)[torch.randperm(n_tasks * 10)[:37]]


def _gathered_linear(layer: TaskLinear, task_ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(layer.bias[task_ids], x, layer.weight[task_ids])


def _gathered_mlp(mlp: TaskMLP, task_ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    for layer in mlp.hidden:
        x = torch.relu(_gathered_linear(layer, task_ids, x))
    return _gathered_linear(mlp.output, task_ids, x) if mlp.output is not None else x


def _gathered_step(
    actors: TaskTanhGaussianPolicies,
    critics: TaskTwinCritics,
    task_ids: torch.Tensor,
    states: torch.Tensor,
) -> torch.Tensor:
    features = _gathered_mlp(actors.trunk, task_ids, states[:, None])
    own = tanh_gaussian(
        _gathered_linear(actors.mean_head, task_ids, features)[:, 0],
        _gathered_linear(actors.log_std_head, task_ids, features)[:, 0],
    )
    _, means = actors.propose(states)
    candidates = means.transpose(0, 1)
    inputs = torch.cat([states[:, None].expand(-1, len(means), -1), candidates], dim=-1)
    scores = _gathered_mlp(critics.q1, task_ids, inputs).squeeze(-1).transpose(0, 1)
    return torch.cat([own.mean.flatten(), scores.flatten()])


def _grouped_step(
    actors: TaskTanhGaussianPolicies,
    critics: TaskTwinCritics,
    task_ids: torch.Tensor,
    states: torch.Tensor,
) -> torch.Tensor:
    own = actors.for_rows(task_ids, states)
    _, means = actors.propose(states)
    scores = critics.score(task_ids, states, means, 'q1')
    return torch.cat([own.mean.flatten(), scores.flatten()])


def _ms_per_step(step: Callable[[], torch.Tensor], n_steps: int) -> float:
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    return (time.perf_counter() - start) / n_steps * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--quick', action='store_true', help='2 trials of 20 steps')
    args = parser.parse_args(argv)
    trials, n_steps = (2, 20) if args.quick else (5, 200)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(
        f'{"shape":45s} {"per-row gather":>15s} {"RowGroups":>10s} {"speed-up":>9s} '
        f'{"max |diff|":>10s}'
    )
    for name, (n_tasks, state_dim, action_dim, per_task) in SHAPES.items():
        actors = TaskTanhGaussianPolicies(n_tasks, state_dim, action_dim, HIDDEN)
        critics = TaskTwinCritics(n_tasks, state_dim, action_dim, HIDDEN)
        task_ids = _row_task_ids(n_tasks, per_task)
        states = torch.randn(len(task_ids), state_dim)
        with torch.no_grad():
            gathered = _gathered_step(actors, critics, task_ids, states)
            grouped = _grouped_step(actors, critics, task_ids, states)
            difference = float((gathered - grouped).abs().max())
            times: dict[str, list[float]] = {'gather': [], 'grouped': []}
            for _ in range(trials):  # alternate the paths so both see the same load
                for label, path in (('gather', _gathered_step), ('grouped', _grouped_step)):
                    step = functools.partial(path, actors, critics, task_ids, states)
                    times[label].append(_ms_per_step(step, n_steps))
        gather_ms, grouped_ms = (statistics.median(times[k]) for k in ('gather', 'grouped'))
        speed_up = gather_ms / grouped_ms
        print(
            f'{name:45s} {gather_ms:12.2f} ms {grouped_ms:7.2f} ms {speed_up:8.2f}x '
            f'{difference:10.1e}'
        )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
