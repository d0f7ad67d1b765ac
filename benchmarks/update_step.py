"""Times one separated-SAC gradient step and sizes the replay store, side by side.

For the Jaco preset shapes (N = 5 tasks, 32 transitions per task, 256×256 networks) and the
MT10 preset shapes (N = 10, 2,560 per task, 256×256) it times, alternating trials:

* ``baseline``: ``DnCSAC._gradient_step`` + ``_update_targets`` of the code at
  ``--baseline-ref`` (a temporary ``git worktree``, removed afterwards);
* ``new``: the same two calls of this checkout;
* ``loop`` (MT10 only): a per-task loop of plain ``nn.Linear`` MLPs and one
  ``torch.optim.Adam`` per task and network, with the same SAC losses
  (``learning/algorithms/sac_losses.py``) on the same sampled batch;
* ``new@Nt``, ``loop@Nt``: those two again on N torch threads (``--threads``, default every
  core: what ``--torch_threads 0`` gives the gradient steps); the others run on one thread, the
  default of every run before that flag's default changed.

Each implementation runs in its own worker process (two versions of ``learning`` cannot share
one interpreter); the driver alternates them trial by trial and reports medians and ratios, so
a machine shared with other work skews both sides alike. It then prints, per shape, the
matrix-product FLOPs of one step of this checkout, the FLOP rate its medians achieve and the
rate of the step's largest matmul timed alone (how close the step is to its arithmetic), and
the replay bytes per stored transition of this checkout for the MT10 and MT50 shapes and
whether MT50 at its preset capacity fits in 24 GB.

    OMP_NUM_THREADS=1 python benchmarks/update_step.py [--quick] [--baseline-ref REF] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import describe_machine

REPO = Path(__file__).resolve().parents[1]
BASELINE_REF = 'c0aee57'

# (n_tasks, state_dim, action_dim, batch per task, hidden width, max episode length).
SHAPES = {
    'jaco': dict(n_tasks=5, state_dim=18, action_dim=6, batch=32, hidden=256, horizon=500),
    'mt10': dict(n_tasks=10, state_dim=39, action_dim=4, batch=2560, hidden=256, horizon=500),
}
REPLAY_SHAPES = {  # state dim, action dim, tasks, capacity per task (garage_experiments.py)
    'MT10': dict(n_tasks=10, state_dim=39, action_dim=4, capacity=int(1e6)),
    'MT50': dict(n_tasks=50, state_dim=39, action_dim=4, capacity=int(1e6)),
}
GIB = 1024**3


# ---------------------------------------------------------------------- worker side
def _episodes(
    n_tasks: int, state_dim: int, action_dim: int, horizon: int, per_task: int, seed: int
) -> Any:
    """Random episodes (``[state, one_hot]`` observations) of every task."""
    import akro  # pylint: disable=import-outside-toplevel
    from garage import EnvSpec, EpisodeBatch, StepType  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(seed)
    n_episodes = max(per_task // horizon, 1)
    task_ids = np.repeat(np.arange(n_tasks), n_episodes)
    total = len(task_ids) * horizon
    obs_dim = state_dim + n_tasks
    observations = rng.standard_normal((total, obs_dim)).astype(np.float32)
    observations[:, state_dim:] = 0
    step_task = np.repeat(task_ids, horizon)
    observations[np.arange(total), state_dim + step_task] = 1
    last = rng.standard_normal((len(task_ids), obs_dim)).astype(np.float32)
    last[:, state_dim:] = 0
    last[np.arange(len(task_ids)), state_dim + task_ids] = 1
    step_types = np.full(total, StepType.MID, dtype=StepType)
    step_types[::horizon] = StepType.FIRST
    step_types[horizon - 1 :: horizon] = StepType.TIMEOUT
    spec = EnvSpec(
        akro.Box(-np.inf, np.inf, (obs_dim,), np.float32),
        akro.Box(-1.0, 1.0, (action_dim,), np.float32),
        max_episode_length=horizon,
    )
    return EpisodeBatch(
        env_spec=spec,
        episode_infos={},
        observations=observations,
        last_observations=last,
        actions=rng.uniform(-1, 1, (total, action_dim)).astype(np.float32),
        rewards=rng.standard_normal(total).astype(np.float32),
        env_infos={'task_id': step_task},
        agent_infos={},
        step_types=step_types,
        lengths=np.full(len(task_ids), horizon, dtype=np.int64),
    )


def _learner(shape: dict) -> Any:
    """A ``DnCSAC`` holding only what its gradient step reads (no envs, no sampler)."""
    import torch  # pylint: disable=import-outside-toplevel

    from environments.multitask import ObservationSplitter  # pylint: disable=import-outside-toplevel
    from learning.algorithms.dnc_sac import DnCSAC  # pylint: disable=import-outside-toplevel
    from learning.networks import TaskTanhGaussianPolicies, TaskTwinCritics  # pylint: disable=import-outside-toplevel
    from learning.replay import PerTaskReplayBuffer  # pylint: disable=import-outside-toplevel

    n, hidden = shape['n_tasks'], (shape['hidden'], shape['hidden'])
    input_dim = shape['state_dim'] + n  # 'zero' split keeps the width
    learner = DnCSAC.__new__(DnCSAC)
    torch.manual_seed(0)
    learner.n_tasks = n
    learner.policies = TaskTanhGaussianPolicies(n, input_dim, shape['action_dim'], hidden)
    learner.critics = TaskTwinCritics(n, input_dim, shape['action_dim'], hidden)
    learner.target_critics = TaskTwinCritics(n, input_dim, shape['action_dim'], hidden)
    learner.target_critics.load_state_dict(learner.critics.state_dict())
    learner.target_critics.requires_grad_(False)
    learner.log_alpha = torch.nn.Parameter(torch.zeros(n))
    learner.replay_buffer = PerTaskReplayBuffer(
        n, 100_000, ObservationSplitter(n, 'zero', False), keep_raw_observations=True
    )
    learner.replay_buffer.add_episodes(
        _episodes(n, shape['state_dim'], shape['action_dim'], shape['horizon'], 5000, seed=1)
    )
    learner.buffer_batch_size = shape['batch']
    learner.tau, learner.discount, learner.reward_scale = 5e-3, 0.99, 1.0
    learner.target_entropy = -float(shape['action_dim'])
    learner.method_stats = {}
    learner.last_stats = {
        key: np.full(n, np.nan)
        for key in (
            'PolicyLoss',
            'Qf1Loss',
            'Qf2Loss',
            'AlphaLoss',
            'AlphaTemperature',
            'QTarget',
            'Qf1',
            'Qf2',
            'LogPi',
            'Entropy',
        )
    }
    if hasattr(DnCSAC, '_build_optimizers'):  # a checkout before the learner took its parts
        learner.data_sharing, learner.regularize = None, False
        learner._build_optimizers(3e-4)  # pylint: disable=protected-access
        return learner
    from learning.optim import TaskAdam  # pylint: disable=import-outside-toplevel

    learner.data_sharing = learner.penalty = learner.distillation = None
    learner.policy_optimizer = TaskAdam(learner.policies.parameters(), n, 3e-4)
    learner.critic_optimizer = TaskAdam(learner.critics.parameters(), n, 3e-4)
    learner.alpha_optimizer = TaskAdam([learner.log_alpha], n, 3e-4)
    return learner


def _plain_loop(shape: dict, learner: Any) -> Any:
    """The same SAC step as N separate garage-style networks of ``nn.Linear`` layers."""
    import torch  # pylint: disable=import-outside-toplevel
    from torch import nn  # pylint: disable=import-outside-toplevel

    from learning.algorithms import sac_losses  # pylint: disable=import-outside-toplevel
    from learning.networks import TanhNormal  # pylint: disable=import-outside-toplevel

    n, width, action_dim = shape['n_tasks'], shape['hidden'], shape['action_dim']
    input_dim = shape['state_dim'] + n

    def mlp(inputs: int, outputs: int | None) -> nn.Sequential:
        layers = [nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers, *([nn.Linear(width, outputs)] if outputs else []))

    class Policy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = mlp(input_dim, None)
            self.mean, self.log_std = nn.Linear(width, action_dim), nn.Linear(width, action_dim)

        def forward(self, states: torch.Tensor) -> TanhNormal:
            features = self.trunk(states)
            return TanhNormal(self.mean(features), self.log_std(features).clamp(-20.0, 2.0).exp())

    class Critics(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q1, self.q2 = mlp(input_dim + action_dim, 1), mlp(input_dim + action_dim, 1)

        def forward(self, states: torch.Tensor, actions: torch.Tensor):
            inputs = torch.cat([states, actions], -1)
            return self.q1(inputs).squeeze(-1), self.q2(inputs).squeeze(-1)

    policies = [Policy() for _ in range(n)]
    critics = [Critics() for _ in range(n)]
    targets = [Critics().requires_grad_(False) for _ in range(n)]
    log_alphas = [nn.Parameter(torch.zeros(())) for _ in range(n)]
    optimizers = [
        (
            torch.optim.Adam(p.parameters(), 3e-4),
            torch.optim.Adam(c.parameters(), 3e-4),
            torch.optim.Adam([a], 3e-4),
        )
        for p, c, a in zip(policies, critics, log_alphas, strict=True)
    ]
    tasks = np.ones(n, bool)

    def step() -> None:
        full = learner._sample_batch(tasks, shape['batch'])  # pylint: disable=protected-access
        for task in range(n):
            batch = sac_losses.TransitionBatch(
                full.states[task],
                full.actions[task],
                full.rewards[task],
                full.next_states[task],
                full.terminals[task],
            )
            policy_opt, critic_opt, alpha_opt = optimizers[task]
            alpha = log_alphas[task].detach().exp()
            target = sac_losses.td_target(batch, policies[task], targets[task], alpha, 0.99, 1.0)
            qf1, qf2, _, _ = sac_losses.critic_errors(batch, critics[task], target)
            critic_opt.zero_grad()
            (qf1.mean() + qf2.mean()).backward()
            critic_opt.step()
            objective, log_pi, _ = sac_losses.actor_objective(
                batch.states, policies[task], critics[task], alpha
            )
            policy_opt.zero_grad()
            objective.mean().backward()
            policy_opt.step()
            alpha_opt.zero_grad()
            sac_losses.temperature_objective(
                log_alphas[task], log_pi, -action_dim
            ).mean().backward()
            alpha_opt.step()
            with torch.no_grad():
                for target_p, online in zip(
                    targets[task].parameters(), critics[task].parameters(), strict=True
                ):
                    target_p.add_(5e-3 * (online - target_p))

    return step


def worker(root: str) -> None:
    """Answers ``{"shape", "impl", "steps"}`` lines on stdin with seconds per step."""
    sys.path.insert(0, root)
    import torch  # pylint: disable=import-outside-toplevel

    torch.set_num_threads(1)
    steps_by_key: dict[tuple[str, str], Any] = {}
    for line in sys.stdin:
        request = json.loads(line)
        key = (request['shape'], request['impl'])
        if key not in steps_by_key:
            shape = SHAPES[request['shape']]
            learner = _learner(shape)
            tasks = np.ones(shape['n_tasks'], bool)
            if request['impl'] == 'loop':
                steps_by_key[key] = _plain_loop(shape, learner)
            else:

                def gradient_step(learner=learner, tasks=tasks) -> None:
                    learner._gradient_step(tasks)  # pylint: disable=protected-access
                    learner._update_targets(tasks)  # pylint: disable=protected-access

                steps_by_key[key] = gradient_step
            steps_by_key[key]()  # warm-up
        step = steps_by_key[key]
        torch.set_num_threads(request.get('threads', 1))
        start = time.perf_counter()
        for _ in range(request['steps']):
            step()
        print(json.dumps((time.perf_counter() - start) / request['steps']), flush=True)


# ---------------------------------------------------------------------- driver side
class Worker:
    """A worker process importing ``learning`` from ``root``: ``script --worker root``, which
    answers one JSON request line with one JSON answer line (this file's script by default)."""

    def __init__(self, root: Path, script: Path | None = None) -> None:
        env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(root)}
        self.process = subprocess.Popen(
            [sys.executable, str(script or Path(__file__).resolve()), '--worker', str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )

    def time(self, shape: str, impl: str, steps: int, threads: int = 1) -> float:
        request = {'shape': shape, 'impl': impl, 'steps': steps, 'threads': threads}
        return float(self.ask(request))

    def ask(self, request: dict[str, Any]) -> Any:
        """Sends one request, returns the decoded answer."""
        self.process.stdin.write(json.dumps(request) + '\n')
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f'the worker for {request} died (see its error output above)')
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def baseline_worktree(ref: str) -> Path | None:
    """A temporary detached worktree of ``ref``; None (with a note) when git cannot make it."""
    directory = Path(tempfile.mkdtemp(prefix='update_step_baseline_'))
    result = subprocess.run(
        ['git', '-C', str(REPO), 'worktree', 'add', '--detach', str(directory / 'tree'), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f'no baseline: git worktree add {ref} failed: {result.stderr.strip()}')
        shutil.rmtree(directory, ignore_errors=True)
        return None
    return directory / 'tree'


def remove_worktree(tree: Path) -> None:
    subprocess.run(
        ['git', '-C', str(REPO), 'worktree', 'remove', '--force', str(tree)],
        capture_output=True,
        check=False,
    )
    shutil.rmtree(tree.parent, ignore_errors=True)


def time_steps(
    trials: int, steps: dict[str, int], baseline: Path | None, threads: int
) -> dict[str, dict[str, float]]:
    """Prints the median seconds per step of each variant and their ratios, per shape, and
    returns those medians (shape -> variant label -> seconds).

    Variants: ``baseline`` and ``new`` on one torch thread (as both run by default before
    ``--torch_threads 0``), ``loop`` (MT10), and with ``threads`` > 1 ``new``/``loop`` again on
    that many threads (this checkout's default: every core, infrastructure/torch_threads.py).
    """
    workers = {'new': Worker(REPO)}
    if baseline is not None:
        workers['baseline'] = Worker(baseline)
    medians_by_shape: dict[str, dict[str, float]] = {}
    try:
        for shape in SHAPES:
            # label -> (worker, implementation, torch threads)
            variants = {impl: (impl, impl, 1) for impl in ('baseline', 'new') if impl in workers}
            if shape == 'mt10':
                variants['loop'] = ('new', 'loop', 1)
            if threads > 1:
                for impl in ('new', 'loop'):
                    if impl in variants:
                        variants[f'{impl}@{threads}t'] = ('new', impl, threads)
            times: dict[str, list[float]] = {label: [] for label in variants}
            for _ in range(trials):  # alternate the variants trial by trial
                for label, (process, impl, count) in variants.items():
                    times[label].append(workers[process].time(shape, impl, steps[shape], count))
            medians = {label: float(np.median(values)) for label, values in times.items()}
            medians_by_shape[shape] = medians
            parts = [f'{label} {medians[label] * 1e3:8.1f} ms' for label in variants]
            ratios = []
            for label in variants:
                if label != 'baseline' and 'baseline' in medians and label.startswith('new'):
                    ratios.append(f'baseline/{label} {medians["baseline"] / medians[label]:.2f}x')
                if label.startswith('loop'):
                    new = 'new' + label[len('loop') :]
                    ratios.append(f'{label}/{new} {medians[label] / medians[new]:.2f}x')
            print(f'{shape:5s} ' + '  '.join(parts) + '   ' + '  '.join(ratios))
    finally:
        for process in workers.values():
            process.close()
    return medians_by_shape


def _matmul_rate(rows: int, width: int, threads: int, repeats: int) -> float:
    """FLOP/s of one ``(rows, width) @ (width, width)`` addmm on ``threads`` threads, the
    largest product of a step at ``rows`` transitions per task (best of ``repeats``)."""
    import torch  # pylint: disable=import-outside-toplevel

    torch.set_num_threads(threads)
    x, weight, bias = torch.randn(rows, width), torch.randn(width, width), torch.randn(width)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            torch.addmm(bias, x, weight)
        best = min(best, (time.perf_counter() - start) / 10)
    return 2 * rows * width * width / best


def flop_rates(medians: dict[str, dict[str, float]], threads: int, repeats: int) -> None:
    """Prints, per shape, the matrix-product FLOPs of one step of this checkout (counted by
    ``torch.utils.flop_counter``), the rate the timed medians achieve, and the rate of the
    step's largest matmul alone: how close the step is to being bound by its arithmetic."""
    import torch  # pylint: disable=import-outside-toplevel
    from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=import-outside-toplevel

    threads_before = torch.get_num_threads()
    for name, shape in SHAPES.items():
        learner = _learner(shape)
        tasks = np.ones(shape['n_tasks'], bool)
        counter = FlopCounterMode(display=False)
        with counter:
            learner._gradient_step(tasks)  # pylint: disable=protected-access
            learner._update_targets(tasks)  # pylint: disable=protected-access
        flops = counter.get_total_flops()
        counts = sorted({1, threads})
        achieved = [
            f'{flops / medians[name][label] / 1e9:.0f} on {count}'
            for count in counts
            if (label := 'new' if count == 1 else f'new@{count}t') in medians.get(name, {})
        ]
        reference = [
            f'{_matmul_rate(shape["batch"], shape["hidden"], count, repeats) / 1e9:.0f}'
            for count in counts
        ]
        print(
            f'{name}: {flops / 1e9:.2f} GFLOP of matrix products per step; GFLOP/s achieved '
            f'by the step: {", ".join(achieved)} thread(s); one {shape["batch"]}x'
            f'{shape["hidden"]} @ {shape["hidden"]}x{shape["hidden"]} addmm alone: '
            f'{" and ".join(reference)} on {" and ".join(map(str, counts))} thread(s)'
        )
    torch.set_num_threads(threads_before)


def replay_sizes(rows_per_task: int) -> None:
    """Fills this checkout's store with MT10/MT50-shaped episodes and prints its bytes per
    transition, the minimum, and the size at the preset capacity."""
    sys.path.insert(0, str(REPO))
    from environments.multitask import ObservationSplitter  # pylint: disable=import-outside-toplevel
    from learning.replay import PerTaskReplayBuffer, minimal_bytes_per_transition  # pylint: disable=import-outside-toplevel

    for name, shape in REPLAY_SHAPES.items():
        n = shape['n_tasks']
        buffer = PerTaskReplayBuffer(
            n, rows_per_task, ObservationSplitter(n, 'zero', False), keep_raw_observations=True
        )
        episodes = _episodes(n, shape['state_dim'], shape['action_dim'], 500, rows_per_task, 2)
        for _ in range(2):  # fill, then wrap once
            buffer.add_episodes(episodes)
        per_transition = buffer.nbytes / (n * rows_per_task)
        minimal = minimal_bytes_per_transition(shape['state_dim'], shape['action_dim'])
        obs_dim = shape['state_dim'] + n
        # The PathBuffer layout: split and raw observations, next observations, action,
        # reward, terminal, all float32.
        old = 4 * (3 * obs_dim + shape['action_dim'] + 2)
        full = per_transition * n * shape['capacity'] / GIB
        print(
            f'{name}: {per_transition:.1f} bytes/transition (minimum {minimal}, '
            f'{per_transition / minimal:.3f}x; PathBuffer layout {old}); '
            f'{n} x {shape["capacity"]:,} transitions = {full:.1f} GiB '
            f'({"fits" if full * GIB <= 24e9 else "does not fit"} in 24 GB; '
            f'PathBuffer layout {old * n * shape["capacity"] / GIB:.1f} GiB)'
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--quick', action='store_true', help='few trials (< 2 minutes)')
    parser.add_argument(
        '--baseline-ref', default=BASELINE_REF, help='git commit timed as the baseline'
    )
    parser.add_argument('--no-baseline', action='store_true', help='time this checkout only')
    parser.add_argument(
        '--threads',
        type=int,
        default=0,
        help="also time this checkout's step on this many torch threads (default 0: every "
        'core, the default of --torch_threads; 1: single-threaded only)',
    )
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    sys.path.insert(0, str(REPO))
    from infrastructure.torch_threads import available_cores  # pylint: disable=C0415

    trials = 3 if args.quick else 7
    steps = {'jaco': 10, 'mt10': 1} if args.quick else {'jaco': 50, 'mt10': 3}
    print(
        f'machine: {describe_machine()}, OMP_NUM_THREADS=1; medians of {trials} '
        f'alternating trials; seconds per gradient step (sample + SAC losses + 3 Adam '
        f'steps + target update)'
    )
    baseline = None if args.no_baseline else baseline_worktree(args.baseline_ref)
    threads = args.threads or available_cores()
    try:
        medians = time_steps(trials, steps, baseline, threads)
    finally:
        if baseline is not None:
            remove_worktree(baseline)
    flop_rates(medians, threads, 3 if args.quick else 10)
    replay_sizes(5000 if args.quick else 20_000)
    return 0


if __name__ == '__main__':
    sys.exit(main())
