"""The first thing to run where a GPU is lent: does the update loop stay on the device, how fast
is a gradient step there, and do ``--gpu 0`` runs train.

No CUDA device has been lent to this project yet, so ``--gpu`` has never run on one. This
script is the prepared check, short enough for a few minutes of device time:

1. **Host synchronisations per gradient step.** A separated-SAC learner at the Jaco and MT10
   preset shapes (``benchmarks/update_step.py``'s ``_learner``) is moved to the device and
   stepped under ``torch.cuda.set_sync_debug_mode``: once in ``'warn'`` mode to count the
   synchronising calls of 5 steps, once in ``'error'`` mode to print where the first one
   happens (the innermost frame of this repository). The loop is meant to have none
   (docs/speed.md, "Update step and replay"). The same for the parameter-sharing learner
   with PCGrad (``mtsac --use_pc_grad``, ``benchmarks/mtsac_step.py``'s point-world setting).
2. **Seconds per gradient step** on the device (median of 5 timings of 10 steps, each ended by
   ``torch.cuda.synchronize``) against one CPU timing of the same learner.
3. **End to end** (skipped by ``--quick``): ``run.py qmp_dnc`` and ``run.py qmp_sac`` with
   ``--gpu 0`` for 2 short epochs on the toy env, and the last epoch's ``Time/`` split.

``--device cpu`` runs the same steps on the CPU (the synchronisation check is then a no-op),
which is how the test suite checks that the script itself works.

    python benchmarks/gpu_check.py [--device cuda:0] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine
from mtsac_step import _learner as _mtsac_learner
from update_step import REPO, SHAPES, _learner

sys.path.insert(0, str(REPO))


def _step_function(shape_name: str, device: torch.device) -> Callable[[], None]:
    """One gradient step (+ target update) of a learner at ``shape_name``'s preset shapes."""
    shape = SHAPES[shape_name]
    learner = _learner(shape).to(device)
    tasks = np.ones(shape['n_tasks'], dtype=bool)

    def step() -> None:
        learner._gradient_step(tasks)  # pylint: disable=protected-access
        learner._update_targets(tasks)  # pylint: disable=protected-access

    step()  # warm-up: lazily built state, kernels chosen
    return step


def _pcgrad_step_function(device: torch.device) -> Callable[[], None]:
    """One ``mtsac --use_pc_grad`` gradient step on the point world's preset shapes."""
    learner = _mtsac_learner('pointwall+pcgrad').to(device)
    learner._gradient_step()  # pylint: disable=protected-access  (warm-up)
    return learner._gradient_step  # pylint: disable=protected-access


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def count_synchronisations(step: Callable[[], None], device: torch.device, steps: int) -> str:
    """How many synchronising calls ``steps`` gradient steps make, and where the first is."""
    if device.type != 'cuda':
        return 'not checked on the CPU'
    _synchronize(device)
    torch.set_warn_always(True)
    torch.cuda.set_sync_debug_mode('warn')
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(steps):
                step()
    finally:
        torch.cuda.set_sync_debug_mode('default')
    count = sum('synchroniz' in str(warning.message) for warning in caught)
    first = ''
    torch.cuda.set_sync_debug_mode('error')
    try:
        step()
    except RuntimeError as error:
        frames = [
            frame
            for frame in traceback.extract_tb(error.__traceback__)
            if str(REPO) in frame.filename
        ]
        where = frames[-1] if frames else None
        first = (
            f'; first at {Path(where.filename).relative_to(REPO)}:{where.lineno}' if where else ''
        )
    finally:
        torch.cuda.set_sync_debug_mode('default')
    return f'{count / steps:.1f} synchronising calls per step{first}'


def seconds_per_step(
    step: Callable[[], None], device: torch.device, trials: int, steps: int
) -> float:
    """Median over ``trials`` of the mean seconds of ``steps`` steps, the device drained."""
    timings = []
    for _ in range(trials):
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _synchronize(device)
        timings.append((time.perf_counter() - start) / steps)
    return statistics.median(timings)


def end_to_end(method: str, device: torch.device) -> str:
    """A 2-epoch toy run of ``method`` on ``device``; its last epoch's ``Time/`` split."""
    gpu = ['--gpu', str(device.index or 0)] if device.type == 'cuda' else []
    with tempfile.TemporaryDirectory() as log_root:
        command = [
            sys.executable,
            'run.py',
            method,
            '--env',
            'PointReachMT-v0',
            '--n_epochs',
            '2',
            '--log_root',
            log_root,
            *gpu,
        ]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f'failed (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:]}'
        progress = next(Path(log_root).glob('*/progress.csv'))
        with progress.open(newline='') as file:
            last = list(csv.DictReader(file))[-1]
    keys = ('Time/Collect', 'Time/Update', 'Time/Eval', 'Time/Epoch')
    return ', '.join(f'{key} {float(last[key]):.2f} s' for key in keys if last.get(key))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda:0', help="'cuda:N' or 'cpu'")
    parser.add_argument(
        '--quick', action='store_true', help='Jaco shapes only, fewer steps, no end-to-end runs'
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        print('no CUDA device here: nothing to check (--device cpu runs the script on the CPU)')
        return 0
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f'machine: {describe_machine()}; device {device} ({name}); torch {torch.__version__}')
    shapes = ['jaco'] if args.quick else ['jaco', 'mt10']
    for shape_name in shapes:
        steps = 2 if args.quick or shape_name == 'mt10' else 10
        step = _step_function(shape_name, device)
        syncs = count_synchronisations(step, device, steps=5)
        on_device = seconds_per_step(step, device, trials=3 if args.quick else 5, steps=steps)
        line = f'{shape_name}: {on_device * 1e3:.1f} ms per gradient step on {device}'
        if device.type == 'cuda':
            cpu_step = _step_function(shape_name, torch.device('cpu'))
            on_cpu = seconds_per_step(cpu_step, torch.device('cpu'), trials=1, steps=steps)
            line += f', {on_cpu * 1e3:.1f} ms on the CPU ({on_cpu / on_device:.1f}x)'
        print(f'{line}; {syncs}', flush=True)
    pcgrad_step = _pcgrad_step_function(device)
    syncs = count_synchronisations(pcgrad_step, device, steps=3)
    on_device = seconds_per_step(pcgrad_step, device, trials=3, steps=5)
    print(f'mtsac+pcgrad: {on_device * 1e3:.1f} ms per gradient step on {device}; {syncs}')
    if not args.quick:
        for method in ('qmp_dnc', 'qmp_sac'):
            print(f'run.py {method}, 2 toy epochs on {device}: {end_to_end(method, device)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
