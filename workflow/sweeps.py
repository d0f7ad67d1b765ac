"""Sweeps: a grid of methods × envs × seeds × flag values, as ``run.py`` commands on an engine.

Every grid point gets a deterministic run directory, ``<log_root>/<method>_<env>_<label>_<seed>``
(``experiment_utils.run_name``), where the label is the sweep's name plus the values of the flags
that vary across the grid. Because the directory is known before anything runs, a sweep can be
launched again at any time: finished runs are skipped, interrupted runs continue from their
snapshot (``run.py resume``), and only missing runs start. Flags with one value apply to every
run and are not part of the label, so raising ``n_epochs`` and relaunching continues the same
runs.

Jobs go through submitit: its ``LocalExecutor`` (N runs at a time on this machine) or its Slurm
executor (one array job).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import time
import tomllib
from collections.abc import Sequence
from dataclasses import MISSING, dataclass
from typing import Any

import cloudpickle

from experiment_utils import FIELDS, ConfigError, ExperimentConfig, as_dict, run_name
from workflow import jobs
from workflow.runs import count_epochs, read_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Settings that may differ between an existing run and the sweep's command for it: resuming
# changes only the epoch budget, and the rest say where and how, not what, to train.
IGNORED_IN_COMPARISON = frozenset({'n_epochs', 'log_root', 'torch_threads', 'dry_run', 'gpu'})

# A sweep job's body must unpickle in a bare interpreter (a Slurm node's ``python -m
# submitit.core._submit``), where this repository may not be on ``sys.path``.
cloudpickle.register_pickle_by_value(jobs)


@dataclass(frozen=True)
class GridPoint:
    """One run of the grid; ``flags`` maps flag names to their command-line text."""

    method: str
    env: str
    seed: int
    flags: tuple[tuple[str, str], ...]


@dataclass
class PlannedRun:
    """A grid point with its resolved configuration, directory and what the sweep does."""

    point: GridPoint
    config: ExperimentConfig
    run_dir: str
    action: str  # 'new', 'resume', 'restart', 'skip' or 'conflict'
    argv: list[str]  # run.py and its arguments (empty for 'skip' and 'conflict')
    epochs_done: int
    note: str = ''

    @property
    def name(self) -> str:
        return os.path.basename(self.run_dir)


@dataclass
class Grid:
    """What to sweep: every combination of the lists, in this order."""

    methods: list[str]
    envs: list[str]
    seeds: list[int]
    axes: dict[str, list[str]]
    name: str = 'sweep'

    def points(self) -> list[GridPoint]:
        keys = list(self.axes)
        return [
            GridPoint(method, env, seed, tuple(zip(keys, values, strict=True)))
            for method, env, seed, *values in itertools.product(
                self.methods, self.envs, self.seeds, *(self.axes[key] for key in keys)
            )
        ]

    def label(self, point: GridPoint) -> str:
        """The run-name component of ``point``: the sweep's name and its varying flags."""
        parts = [self.name]
        for key, value in point.flags:
            if len(self.axes[key]) > 1:
                parts.append(key + re.sub(r'[^A-Za-z0-9.+-]+', '_', value.strip()))
        return '-'.join(parts)


def parse_flag_axis(text: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2,...`` -> (KEY, [V1, V2, ...]); a list flag's value is space-separated
    (``hidden_sizes=64 64,256 256``)."""
    key, sep, values = text.partition('=')
    key = key.strip().lstrip('-')
    if not sep or not key or not values.strip():
        raise ConfigError(f'--flag {text!r}: expected KEY=VALUE[,VALUE...], e.g. n_epochs=5,10')
    items = [value.strip() for value in values.split(',')]
    if any(not item for item in items):
        raise ConfigError(f'--flag {text!r}: empty value in the comma-separated list')
    return key, items


def _toml_value_text(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):  # one value of a list flag
        return ' '.join(_toml_value_text(item) for item in value)
    return str(value)


def load_toml(path: str) -> dict[str, Any]:
    """A sweep file: ``methods``, ``envs``, ``seeds``, ``name``, ``log_root`` and a ``[flags]``
    table whose values are one value or a list of values (a list flag's values are lists),
    plus an optional ``[slurm]`` table (partition, time, cpus_per_job, gpus_per_job)."""
    try:
        with open(path, 'rb') as file:
            data = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f'cannot read sweep file {path!r}: {error.strerror}') from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f'sweep file {path!r} is not valid TOML: {error}') from error
    allowed = {'methods', 'envs', 'seeds', 'name', 'log_root', 'flags', 'slurm'}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f'sweep file {path!r}: unknown key(s) {", ".join(unknown)}; '
            f'allowed: {", ".join(sorted(allowed))}'
        )
    axes = {}
    for key, value in data.get('flags', {}).items():
        if key not in FIELDS:
            raise ConfigError(f'sweep file {path!r}: unknown flag {key!r} in [flags]')
        is_list_flag = str(FIELDS[key].type).startswith('list')
        several = isinstance(value, list) and (
            not is_list_flag or (bool(value) and isinstance(value[0], list))
        )
        axes[key] = [_toml_value_text(item) for item in (value if several else [value])]
    data['axes'] = axes
    return data


def point_argv(grid: Grid, point: GridPoint, log_root: str, torch_threads: int) -> list[str]:
    """The ``run.py`` arguments that train ``point`` from scratch."""
    argv = [
        point.method,
        '--env',
        point.env,
        '--seed',
        str(point.seed),
        '--name',
        grid.label(point),
        '--log_root',
        log_root,
    ]
    flags = dict(point.flags)
    if 'torch_threads' not in flags:
        argv += ['--torch_threads', str(torch_threads)]
    for key, value in point.flags:
        argv += [f'--{key}', *value.split()]
    return argv


def _config_differences(existing: dict[str, Any], wanted: ExperimentConfig) -> list[str]:
    """The flags whose values differ; a flag the existing run's ``variant.json`` lacks (one
    added since) has its default there, as when that run resumes."""
    wanted_plain = json.loads(json.dumps(as_dict(wanted)))
    return sorted(
        key
        for key, value in wanted_plain.items()
        if key not in IGNORED_IN_COMPARISON
        and (existing[key] if key in existing else _default(key)) != value
    )


def _default(flag: str) -> Any:
    """The default of ``flag`` as JSON data."""
    field = FIELDS[flag]
    default = field.default if field.default_factory is MISSING else field.default_factory()
    return json.loads(json.dumps(default))


def plan(grid: Grid, log_root: str, torch_threads: int) -> list[PlannedRun]:
    """Resolves every grid point (bad flags raise ``ConfigError`` before anything runs) and
    decides, from its run directory, whether to start, resume, restart or skip it."""
    from run import parse  # pylint: disable=import-outside-toplevel  (run.py's own parser)

    planned = []
    seen: dict[str, GridPoint] = {}
    for point in grid.points():
        argv = point_argv(grid, point, log_root, torch_threads)
        try:
            config = parse(argv)
        except ConfigError as error:
            raise ConfigError(f'{" ".join(argv)}: {error}') from error
        run_dir = os.path.join(log_root, run_name(config))
        if run_dir in seen:
            raise ConfigError(
                f'grid points {seen[run_dir]} and {point} share run directory {run_dir}'
            )
        seen[run_dir] = point
        planned.append(_decide(point, config, run_dir, ['run.py', *argv]))
    return planned


def _decide(
    point: GridPoint, config: ExperimentConfig, run_dir: str, train_argv: list[str]
) -> PlannedRun:
    if not os.path.isdir(run_dir):
        return PlannedRun(point, config, run_dir, 'new', train_argv, 0)
    epochs_done = count_epochs(run_dir)
    if not os.path.isfile(os.path.join(run_dir, 'variant.json')):
        return PlannedRun(
            point, config, run_dir, 'restart', train_argv, 0, 'no variant.json: started again'
        )
    differences = _config_differences(read_config(run_dir), config)
    if differences:
        return PlannedRun(
            point,
            config,
            run_dir,
            'conflict',
            [],
            epochs_done,
            f'exists with other {", ".join(differences)}',
        )
    if epochs_done >= config.n_epochs:
        return PlannedRun(point, config, run_dir, 'skip', [], epochs_done, 'finished')
    if not os.path.isfile(os.path.join(run_dir, 'params.pkl')):
        return PlannedRun(
            point, config, run_dir, 'restart', train_argv, epochs_done, 'no snapshot: started again'
        )
    return PlannedRun(
        point,
        config,
        run_dir,
        'resume',
        ['run.py', 'resume', '--snapshot_dir', run_dir, '--n_epochs', str(config.n_epochs)],
        epochs_done,
    )


def set_aside(run_dir: str) -> str:
    """Renames a run directory that cannot be resumed to ``<dir>.crashed[-k]`` (kept for its
    logs) so that ``run.py`` can create the run again under its own name."""
    target, index = f'{run_dir}.crashed', 1
    while os.path.exists(target):
        index += 1
        target = f'{run_dir}.crashed-{index}'
    shutil.move(run_dir, target)
    return target


@dataclass
class EngineSettings:
    """Where the jobs run: ``local`` (``jobs`` at a time) or ``slurm`` (one array job)."""

    engine: str = 'local'
    jobs: int = 1
    torch_threads: int = 1
    time_min: int = 7 * 24 * 60
    partition: str | None = None
    cpus_per_job: int = 1
    gpus_per_job: int = 0
    array_parallelism: int = 256


def make_executor(settings: EngineSettings, folder: str) -> Any:
    """A submitit executor for ``settings`` writing its job files under ``folder``."""
    import submitit  # pylint: disable=import-outside-toplevel

    if settings.engine == 'local':
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=settings.time_min)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster='slurm')
    parameters: dict[str, Any] = dict(
        timeout_min=settings.time_min,
        cpus_per_task=settings.cpus_per_job,
        nodes=1,
        tasks_per_node=1,
        slurm_array_parallelism=settings.array_parallelism,
        name='qmp-sweep',
    )
    if settings.gpus_per_job:
        parameters['gpus_per_node'] = settings.gpus_per_job
    if settings.partition:
        parameters['slurm_partition'] = settings.partition
    executor.update_parameters(**parameters)
    return executor


def _log_path(log_root: str, run: PlannedRun) -> str:
    return os.path.join(log_root, 'sweep_logs', f'{run.name}.log')


def _job_result(job: Any) -> tuple[int, str]:
    """(exit code, message) of a finished submitit job; a job that died is code -1."""
    import submitit  # pylint: disable=import-outside-toplevel

    try:
        code = int(job.result())
    except (submitit.core.utils.FailedJobError, submitit.core.utils.UncompletedJobError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else 'job failed'
        return -1, first_line
    return code, '' if code == 0 else f'exit code {code}'


def execute(
    runs: Sequence[PlannedRun], log_root: str, settings: EngineSettings, poll_seconds: float = 0.5
) -> dict[str, tuple[int, str]]:
    """Runs the ``new``/``resume``/``restart`` runs; returns run name -> (exit code, message)."""
    todo = [run for run in runs if run.action in ('new', 'resume', 'restart')]
    if not todo:
        return {}
    for run in todo:
        if run.action == 'restart':
            run.note += f' (old one moved to {os.path.basename(set_aside(run.run_dir))})'
    executor = make_executor(settings, os.path.join(log_root, 'sweep_logs', 'submitit'))
    threads = settings.torch_threads if settings.engine == 'local' else settings.cpus_per_job

    def arguments(run: PlannedRun) -> tuple[list[str], str, str, int]:
        return run.argv, REPO_ROOT, _log_path(log_root, run), threads

    results: dict[str, tuple[int, str]] = {}
    if settings.engine == 'slurm':
        columns = list(zip(*(arguments(run) for run in todo), strict=True))
        submitted = executor.map_array(jobs.run_command, *columns)
        print(
            f'sweep.py: submitted {len(submitted)} Slurm jobs '
            f'(array {submitted[0].job_id.split("_")[0]}); waiting for them'
        )
        for run, job in zip(todo, submitted, strict=True):
            results[run.name] = _job_result(job)
        return results
    pending, running = list(todo), {}
    while pending or running:
        while pending and len(running) < settings.jobs:
            run = pending.pop(0)
            running[run.name] = executor.submit(jobs.run_command, *arguments(run))
            print(f'sweep.py: started {run.name} ({run.action})', flush=True)
        for name, job in list(running.items()):
            if job.done():
                results[name] = _job_result(job)
                del running[name]
                print(
                    f'sweep.py: {name}: {"done" if results[name][0] == 0 else "FAILED"}', flush=True
                )
        if running:
            time.sleep(poll_seconds)
    return results


def summary_table(runs: Sequence[PlannedRun], results: dict[str, tuple[int, str]]) -> str:
    """A markdown table: each run's action, result and epochs."""
    lines = ['| run | action | result | epochs | note |', '|---|---|---|---|---|']
    for run in runs:
        if run.action == 'skip':
            result = 'skipped'
        elif run.action == 'conflict':
            result = 'FAILED'
        else:
            code, message = results.get(run.name, (-1, 'not run'))
            result = 'ok' if code == 0 else f'FAILED ({message})'
        epochs = (
            f'{count_epochs(run.run_dir) if os.path.isdir(run.run_dir) else 0}'
            f'/{run.config.n_epochs}'
        )
        lines.append(f'| {run.name} | {run.action} | {result} | {epochs} | {run.note.strip()} |')
    return '\n'.join(lines)


def failed(runs: Sequence[PlannedRun], results: dict[str, tuple[int, str]]) -> list[str]:
    """Names of runs that conflicted or whose job did not exit with 0."""
    return [
        run.name
        for run in runs
        if run.action == 'conflict'
        or (run.action not in ('skip', 'conflict') and results.get(run.name, (-1, ''))[0] != 0)
    ]


def describe(run: PlannedRun) -> str:
    """One ``--dry_run`` line."""
    if run.action in ('skip', 'conflict'):
        return (
            f'[{run.action}] {run.name}: {run.note} '
            f'({run.epochs_done}/{run.config.n_epochs} epochs)'
        )
    command = ' '.join(shlex.quote(arg) for arg in ['python', *run.argv])
    note = f'  # {run.note}' if run.note else ''
    return f'[{run.action}] {command}{note}'
