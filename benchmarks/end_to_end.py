"""Wall-clock of a preset epoch at the commit before the speed work and in this checkout.

For each env (default: ``JacoReachMT5-v1`` and ``MetaWorldMT10-v2``) it runs ``run.py`` with the
env's release preset, in the code at ``--baseline-ref`` (a temporary ``git worktree``, made and
removed by ``benchmarks/update_step.py``'s helpers) and in this checkout, one after the other,
and times the epochs after the first by when each epoch's row appears in ``progress.csv`` (so
set-up and the first epoch's replay warm-up are left out, and the same points of an epoch are
compared in both versions, snapshot included). The first round of each run fills the replay to
one round's share (``--min_buffer_size``), so that the second epoch trains as every later one.

A preset MT10 epoch takes ~18 minutes at the baseline on 2 cores, so ``--mt10_fraction f``
(default 0.1) runs ``f`` of one: ``f`` of its sampling rounds (each with the preset's batch and
gradient steps) and ``f`` of its evaluation episodes (at least one per task), and says so; its
times are also scaled up to a whole epoch. ``--fraction`` does the same for the other envs.

``--envs`` takes any of the keys of ``ENVS``; with ``--no-baseline`` only this checkout is
timed, and ``--project`` prints the wall-clock of each env's paper budget at the measured
epoch time.

    OMP_NUM_THREADS=1 python benchmarks/end_to_end.py [--quick] [--envs jaco mt10 ...]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine  # noqa: E402
from update_step import BASELINE_REF, baseline_worktree, remove_worktree  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

ENVS = {
    'jaco': 'JacoReachMT5-v1',
    'mt10': 'MetaWorldMT10-v2',
    'maze': 'MazeLarge-10-v0',
    'walker': 'Walker2dMT4-v0',
    'kitchen': 'KitchenMTEasy-v0',
    'cds': 'MetaWorldCDS-v1',
    'mt50': 'MetaWorldMT50-v2',
}
# Total env steps of each env's curves in the paper (docs: the paper's environment table).
PAPER_ENV_STEPS = {
    'JacoReachMT5-v1': 2e6,
    'MazeLarge-10-v0': 12e6,
    'Walker2dMT4-v0': 8e6,
    'KitchenMTEasy-v0': 5e6,
    'MetaWorldCDS-v1': 10e6,
    'MetaWorldMT10-v2': 40e6,
    'MetaWorldMT50-v2': 30e6,
}
# --quick: tiny Jaco epochs (crash check of the whole pipeline, not a measurement).
QUICK_FLAGS = {
    'batch_size': 1000,
    'gradient_steps_per_itr': 10,
    'num_evaluation_episodes': 5,
    'hidden_sizes': [32, 32],
    'steps_per_epoch': 1,
    'min_buffer_size': 200,
}
TIME_KEYS = ('Time/Collect', 'Time/Update', 'Time/Eval', 'Time/Snapshot', 'Time/Epoch')


@dataclass
class EpochPlan:
    """The flags of a (fractional) preset epoch and what share of the preset epoch it is."""

    flags: dict[str, Any]
    rounds_fraction: float  # share of the preset epoch's rounds (collection + updates)
    eval_fraction: float  # share of the preset epoch's evaluation episodes
    env_steps_per_epoch: int  # of the *preset* epoch

    def scale_to_preset(self, seconds: float, times: dict[str, float]) -> float:
        """A measured (fractional) epoch's seconds scaled to the preset epoch: collection and
        updates by the rounds' share and evaluation by the episodes' share when the epoch's
        ``Time/`` split is known, else the whole epoch by the rounds' share."""
        if self.rounds_fraction == 1 and self.eval_fraction == 1:
            return seconds
        if {'Time/Collect', 'Time/Update', 'Time/Eval'} <= set(times):
            rounds = times['Time/Collect'] + times['Time/Update']
            return (
                seconds
                + rounds * (1 / self.rounds_fraction - 1)
                + times['Time/Eval'] * (1 / self.eval_fraction - 1)
            )
        return seconds / self.rounds_fraction

    def describe(self) -> str:
        if self.rounds_fraction == 1 and self.eval_fraction == 1:
            return 'preset epoch'
        return (
            f"{self.rounds_fraction:.3g} of a preset epoch's rounds, "
            f'{self.eval_fraction:.3g} of its evaluation episodes'
        )


def epoch_plan(preset: dict[str, Any], n_tasks: int, fraction: float) -> EpochPlan:
    """Flags running ``fraction`` of a preset epoch with the preset's mix of work.

    ``preset`` holds the resolved ``batch_size``, ``steps_per_epoch``,
    ``gradient_steps_per_itr`` and ``num_evaluation_episodes``. Whole rounds are dropped while
    at least one is left; below one round, the round's batch and gradient steps shrink
    instead. Evaluation keeps at least one episode per task. ``min_buffer_size`` is one
    round's share per task, so that the first round ends the replay warm-up.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'a fraction of an epoch must be in (0, 1], got {fraction}')
    rounds = preset['steps_per_epoch'] * fraction
    batch, gradient_steps = preset['batch_size'], preset['gradient_steps_per_itr']
    if rounds >= 1:
        flags: dict[str, Any] = {'steps_per_epoch': round(rounds)}
        rounds_fraction = round(rounds) / preset['steps_per_epoch']
    else:
        batch, gradient_steps = round(batch * rounds), max(1, round(gradient_steps * rounds))
        flags = {
            'steps_per_epoch': 1,
            'batch_size': batch,
            'gradient_steps_per_itr': gradient_steps,
        }
        rounds_fraction = rounds / preset['steps_per_epoch']
    per_task = preset['num_evaluation_episodes'] // n_tasks
    eval_per_task = max(1, round(per_task * fraction))
    flags['num_evaluation_episodes'] = eval_per_task * n_tasks
    flags['min_buffer_size'] = max(1, batch // n_tasks)
    return EpochPlan(
        flags,
        rounds_fraction,
        eval_per_task / per_task,
        preset['batch_size'] * preset['steps_per_epoch'],
    )


def preset_of(env_id: str, method: str) -> tuple[dict[str, Any], int]:
    """This checkout's resolved preset of ``env_id`` and its task count."""
    sys.path.insert(0, str(REPO))
    from environments.registry import ENVS as REGISTRY  # pylint: disable=import-outside-toplevel
    from experiment_utils import resolve_config  # pylint: disable=import-outside-toplevel

    config = resolve_config(method, {'env': env_id})
    keys = ('batch_size', 'steps_per_epoch', 'gradient_steps_per_itr', 'num_evaluation_episodes')
    return {key: getattr(config, key) for key in keys}, REGISTRY[env_id].n_tasks


def _command_flags(flags: dict[str, Any]) -> list[str]:
    out = []
    for key, value in flags.items():
        out.append(f'--{key}')
        out.extend(str(item) for item in (value if isinstance(value, list) else [value]))
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline='') as file:
        return list(csv.DictReader(file))


def time_epochs(
    tree: Path, method: str, env_id: str, flags: dict[str, Any], n_epochs: int, work: Path
) -> tuple[list[float], dict[str, str]]:
    """Runs ``run.py`` in ``tree``; returns the seconds between consecutive epoch rows of
    ``progress.csv`` (``n_epochs - 1`` values) and the last row."""
    log_root = work / 'runs'
    command = [
        sys.executable,
        'run.py',
        method,
        '--env',
        env_id,
        '--n_epochs',
        str(n_epochs),
        '--log_root',
        str(log_root),
        *_command_flags(flags),
    ]
    env = {
        **os.environ,
        'OMP_NUM_THREADS': '1',
        'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl'),
        'PYTHONPATH': str(tree),
    }
    with open(work / 'stdout.txt', 'w') as stdout, open(work / 'stderr.txt', 'w') as stderr:
        process = subprocess.Popen(command, cwd=tree, env=env, stdout=stdout, stderr=stderr)
        seen: list[float] = []  # when each epoch's row was first seen
        progress: Path | None = None
        while True:
            finished = process.poll() is not None
            if progress is None and log_root.exists():
                progress = next(iter(sorted(log_root.glob('*/progress.csv'))), None)
            if progress is not None:
                with open(progress, 'rb') as file:
                    rows = max(file.read().count(b'\n') - 1, 0)
                seen.extend([time.perf_counter()] * (rows - len(seen)))
            if finished:
                break
            time.sleep(0.05)
    if process.returncode != 0 or progress is None or len(seen) < n_epochs:
        tail = (work / 'stderr.txt').read_text()[-3000:]
        raise RuntimeError(f'{" ".join(command)} in {tree} failed ({process.returncode}):\n{tail}')
    return [later - earlier for earlier, later in zip(seen, seen[1:], strict=False)], _rows(
        progress
    )[-1]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _duration(seconds: float) -> str:
    if seconds < 2 * 3600:
        return f'{seconds / 60:.0f} min'
    if seconds < 3 * 86400:
        return f'{seconds / 3600:.1f} h'
    return f'{seconds / 86400:.1f} days'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny Jaco epochs, both versions (< 2 minutes; checks the pipeline, measures nothing)',
    )
    parser.add_argument('--envs', nargs='+', default=['jaco', 'mt10'], choices=sorted(ENVS))
    parser.add_argument('--method', default='qmp_dnc')
    parser.add_argument(
        '--mt10_fraction',
        type=float,
        default=0.1,
        help='share of a preset MT10 epoch to run (default 0.1)',
    )
    parser.add_argument(
        '--fraction',
        type=float,
        default=1.0,
        help='share of a preset epoch for the envs other than Jaco and MT10',
    )
    parser.add_argument(
        '--n_epochs',
        type=int,
        default=3,
        help='epochs per run; all but the first are timed (default 3); 1, '
        "only with --no-baseline: this checkout's own Time/ split of its "
        'first epoch (which trains from its first round, see above)',
    )
    parser.add_argument(
        '--baseline-ref', default=BASELINE_REF, help='git commit timed as the baseline'
    )
    parser.add_argument('--no-baseline', action='store_true', help='time this checkout only')
    parser.add_argument(
        '--n_workers',
        type=int,
        default=1,
        help='also time this checkout with --n_workers N (collection and evaluation in N '
        'worker processes), when N > 1',
    )
    parser.add_argument(
        '--project',
        action='store_true',
        help="print each env's paper budget in wall-clock at the measured speed",
    )
    args = parser.parse_args(argv)
    if args.n_epochs < 1 or (args.n_epochs == 1 and not args.no_baseline):
        parser.error(
            '--n_epochs must be at least 2 (the first epoch is not timed), or 1 with --no-baseline'
        )
    for name in ('mt10_fraction', 'fraction'):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f'--{name} must be in (0, 1], got {getattr(args, name)}')
    envs = ['jaco'] if args.quick else args.envs
    n_epochs = 2 if args.quick else args.n_epochs
    timed = (
        'the first epoch: its Time/Collect + Update + Eval'
        if n_epochs == 1
        else f'median of the {n_epochs - 1} epoch(s) after the first'
    )
    print(
        f'machine: {describe_machine()}, OMP_NUM_THREADS=1, load average '
        f'{os.getloadavg()[0]:.1f}; method {args.method}; seconds per epoch ({timed})',
        flush=True,
    )
    baseline = None if args.no_baseline else baseline_worktree(args.baseline_ref)
    # name -> (source tree, extra flags)
    variants: dict[str, tuple[Path, dict[str, Any]]] = {'this checkout': (REPO, {})}
    if args.n_workers > 1:
        variants[f'this checkout, --n_workers {args.n_workers}'] = (
            REPO,
            {'n_workers': args.n_workers},
        )
    if baseline is not None:
        variants = {f'baseline {args.baseline_ref}': (baseline, {}), **variants}
    work_root = Path(tempfile.mkdtemp(prefix='end_to_end_'))
    try:
        for key in envs:
            env_id = ENVS[key]
            preset, n_tasks = preset_of(env_id, args.method)
            fraction = (
                args.mt10_fraction if key == 'mt10' else 1.0 if key == 'jaco' else args.fraction
            )
            plan = epoch_plan(preset, n_tasks, fraction)
            flags = {**plan.flags, **(QUICK_FLAGS if args.quick else {})}
            label = 'quick settings' if args.quick else plan.describe()
            seconds: dict[str, float] = {}
            for name, (tree, extra) in variants.items():
                work = work_root / f'{key}-{len(seconds)}'
                work.mkdir()
                epochs, last_row = time_epochs(
                    tree, args.method, env_id, {**flags, **extra}, n_epochs, work
                )
                # The first row's Time/Epoch comes with the next row (after the snapshot).
                seconds[name] = (
                    sum(float(last_row[key]) for key in TIME_KEYS[:3])
                    if n_epochs == 1
                    else _median(epochs)
                )
                parts = [f'{name}: {seconds[name]:.1f} s']
                times = {k: float(last_row[k]) for k in TIME_KEYS if last_row.get(k)}
                preset_seconds = plan.scale_to_preset(seconds[name], times)
                if not args.quick and preset_seconds != seconds[name]:
                    parts.append(f'(~{preset_seconds:.0f} s per preset epoch)')
                if times:
                    parts.append(
                        'last epoch ' + ', '.join(f'{k[5:]} {v:.1f} s' for k, v in times.items())
                    )
                print(f'{env_id} ({label}) {" ".join(parts)}', flush=True)
                if args.project and name == 'this checkout' and not args.quick:
                    epochs_needed = math.ceil(PAPER_ENV_STEPS[env_id] / plan.env_steps_per_epoch)
                    print(
                        f'{env_id}: paper budget {PAPER_ENV_STEPS[env_id] / 1e6:.0f}M env steps '
                        f'= {epochs_needed} preset epochs x {preset_seconds:.0f} s = '
                        f'{_duration(epochs_needed * preset_seconds)} on this machine',
                        flush=True,
                    )
            if baseline is not None:
                old, *news = seconds.values()
                for name, new in zip(list(seconds)[1:], news, strict=True):
                    print(f'{env_id} ({label}) baseline/{name} {old / new:.2f}x', flush=True)
    finally:
        if baseline is not None:
            remove_worktree(baseline)
        shutil.rmtree(work_root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
