"""Command line: ``python sweep.py --methods M... [--envs E...] [--seeds S...] [--flag K=V,...]``.

Expands methods × envs × seeds × flag values into ``run.py`` commands with predictable run
directories and runs them locally (``--jobs`` at a time) or on Slurm, skipping finished runs and
resuming interrupted ones (``workflow/sweeps.py``). ``--dry_run`` lists what it would do. It
exits with 1 when a run failed (after printing a summary table), with 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from environments.registry import DEFAULT_ENV
from experiment_utils import ConfigError
from workflow.sweeps import (
    EngineSettings,
    Grid,
    describe,
    execute,
    failed,
    load_toml,
    parse_flag_axis,
    plan,
    summary_table,
)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    cores = os.cpu_count() or 1
    parser = _OneLineParser(
        prog='sweep.py',
        description=(
            'Run a grid of run.py experiments; relaunching skips finished runs and resumes '
            'interrupted ones. Command-line values override the --config file.'
        ),
    )
    parser.add_argument('--config', help='a TOML sweep file (see the README, "Workflow")')
    parser.add_argument('--methods', nargs='+', help='run.py methods, e.g. dnc_sac qmp_dnc')
    parser.add_argument('--envs', nargs='+', help=f'env ids (default: {DEFAULT_ENV})')
    parser.add_argument('--seeds', nargs='+', type=int, help='seeds (default: 0)')
    parser.add_argument(
        '--flag',
        action='append',
        default=[],
        metavar='KEY=V1,V2',
        help='a run.py flag and its comma-separated values (repeatable); '
        'flags with several values become part of the run names',
    )
    parser.add_argument(
        '--name', help="sweep name, the first part of every run's --name (default: sweep)"
    )
    parser.add_argument(
        '--log_root', help='where the run directories go (default: data/local/sweeps/NAME)'
    )
    parser.add_argument('--engine', choices=('local', 'slurm'), default='local')
    parser.add_argument(
        '--jobs',
        type=int,
        default=cores,
        help=f'local engine: runs at a time (default: the {cores} cores); each '
        'gets cores // jobs torch threads',
    )
    parser.add_argument('--partition', help='slurm: partition')
    parser.add_argument(
        '--time',
        type=int,
        help='job time limit in minutes (slurm default: 4320; local default: 7 days)',
    )
    parser.add_argument(
        '--cpus_per_job', type=int, help='slurm: CPUs (= torch threads) per run (default: 1)'
    )
    parser.add_argument(
        '--gpus_per_job',
        type=int,
        help='slurm: GPUs per run (default: 0; with GPUs each run gets --gpu 0)',
    )
    parser.add_argument(
        '--array_parallelism',
        type=int,
        default=256,
        help='slurm: most array tasks running at once (default: 256)',
    )
    parser.add_argument('--dry_run', action='store_true', help='list the commands and exit')
    return parser


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f'--{name} must be at least 1, got {value}')


def resolve(args: argparse.Namespace) -> tuple[Grid, str, EngineSettings]:
    """Merges the TOML file and the command line into the grid, log root and engine."""
    file_values: dict[str, Any] = load_toml(args.config) if args.config else {'axes': {}}
    slurm = file_values.get('slurm', {})
    axes = dict(file_values['axes'])
    for text in args.flag:
        key, values = parse_flag_axis(text)
        axes[key] = values
    for key, instead in (
        ('method', '--methods'),
        ('env', '--envs'),
        ('seed', '--seeds'),
        ('name', '--name'),
        ('log_root', '--log_root'),
    ):
        if key in axes:
            raise ConfigError(f'--flag {key}=...: the sweep sets {key}; use {instead} instead')
    methods = args.methods or file_values.get('methods')
    if not methods:
        raise ConfigError(
            'no methods: pass --methods (e.g. --methods dnc_sac qmp_dnc) or a '
            '--config file with methods = [...]'
        )
    name = args.name or file_values.get('name', 'sweep')
    grid = Grid(
        methods=list(methods),
        envs=list(args.envs or file_values.get('envs', [DEFAULT_ENV])),
        seeds=[int(seed) for seed in (args.seeds or file_values.get('seeds', [0]))],
        axes=axes,
        name=name,
    )
    log_root = os.path.abspath(
        args.log_root
        or file_values.get('log_root')
        or os.path.join('data', 'local', 'sweeps', name)
    )
    cpus = args.cpus_per_job or int(slurm.get('cpus_per_job', 1))
    gpus = args.gpus_per_job if args.gpus_per_job is not None else int(slurm.get('gpus_per_job', 0))
    for flag, value in (
        ('jobs', args.jobs),
        ('cpus_per_job', cpus),
        ('time', args.time),
        ('array_parallelism', args.array_parallelism),
    ):
        _positive(flag, value)
    if gpus < 0:
        raise ConfigError(f'--gpus_per_job must be 0 or more, got {gpus}')
    if gpus and 'gpu' not in grid.axes:
        grid.axes['gpu'] = ['0']
    if args.engine == 'slurm' and not args.dry_run and shutil.which('srun') is None:
        raise ConfigError(
            '--engine slurm needs a Slurm cluster (no srun on PATH); use '
            '--engine local or --dry_run'
        )
    default_time = 4320 if args.engine == 'slurm' else 7 * 24 * 60
    settings = EngineSettings(
        engine=args.engine,
        jobs=args.jobs,
        torch_threads=max((os.cpu_count() or 1) // args.jobs, 1),
        time_min=args.time or int(slurm.get('time', default_time)),
        partition=args.partition or slurm.get('partition'),
        cpus_per_job=cpus,
        gpus_per_job=gpus,
        array_parallelism=args.array_parallelism,
    )
    return grid, log_root, settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        grid, log_root, settings = resolve(args)
        threads = settings.torch_threads if settings.engine == 'local' else settings.cpus_per_job
        runs = plan(grid, log_root, threads)
    except ConfigError as error:
        print(f'sweep.py: error: {error}', file=sys.stderr)
        return 2
    if settings.engine == 'local':
        print(
            f'sweep.py: {len(runs)} runs in {log_root}; {settings.jobs} at a time, '
            f'{settings.torch_threads} torch thread(s) each'
        )
    else:
        print(
            f'sweep.py: {len(runs)} runs in {log_root}; Slurm array, '
            f'{settings.cpus_per_job} CPU(s) and {settings.gpus_per_job} GPU(s) per run'
        )
    for run in runs:
        print(describe(run))
    if args.dry_run:
        return 0
    results = execute(runs, log_root, settings)
    print(summary_table(runs, results))
    failures = failed(runs, results)
    if failures:
        print(
            f'sweep.py: {len(failures)} of {len(runs)} runs failed; their output is in '
            f'{os.path.join(log_root, "sweep_logs")}',
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
