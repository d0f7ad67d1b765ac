"""The checks a configuration passes before a run starts, and those of a run to resume.

Bad input ends in one ``ConfigError`` line (``run.py`` prints it and exits with code 2) instead
of a crash, a hang or a silently misread flag later in the run. Method-specific rules follow
from the method's row (``configuration/methods.py``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import math
import os
import pickle
import struct
from collections.abc import Sequence
from typing import Any

import psutil

from configuration.flags import (
    FIELDS,
    MAX_SEED,
    RANDOM_PARTITION_METHODS,
    ConfigError,
    ExperimentConfig,
)
from configuration.methods import METHODS
from environments.registry import ENVS, select_tasks


def validate(config: ExperimentConfig) -> None:
    """Refuses configurations the release would crash on, hang on, or silently misread."""
    info = ENVS[config.env]
    if config.task_name is not None:
        _validate_task_name(config.task_name, config.env)
    if config.wandb and importlib.util.find_spec('wandb') is None:
        raise ConfigError(
            '--wandb true needs the wandb package: pip install wandb==0.31.0 '
            '(WANDB_MODE=offline logs without a network)'
        )
    n_tasks = config.n_tasks
    positive = (
        'gradient_steps_per_itr',
        'min_buffer_size',
        'buffer_batch_size',
        'steps_per_epoch',
        'n_epochs',
        'batch_size',
        'num_evaluation_episodes',
        'evaluation_frequency',
        'snapshot_gap',
        'n_policies',
        'replay_capacity',
    )
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f'--{name} must be at least 1, got {getattr(config, name)}')
    if config.torch_threads < 0:
        raise ConfigError(
            f'--torch_threads must be 0 (every available core) or a thread count, '
            f'got {config.torch_threads}'
        )
    spec = METHODS[config.method]
    if spec.uses_qswitch and config.policy_sampling_freq < 1:
        raise ConfigError('--policy_sampling_freq must be at least 1')
    _validate_finite_floats(config)
    if not 0 <= config.seed <= MAX_SEED:
        raise ConfigError(f'--seed must be in 0..{MAX_SEED}, got {config.seed}')
    _validate_name(config.name)
    if config.gpu is not None and config.gpu < 0:
        raise ConfigError(f'--gpu must be a CUDA device index (0, 1, ...), got {config.gpu}')
    if not config.lr > 0:
        raise ConfigError(f'--lr must be positive, got {config.lr}')
    if not 0 < config.target_update_tau <= 1:
        raise ConfigError(f'--target_update_tau must be in (0, 1], got {config.target_update_tau}')
    if not 0 <= config.discount <= 1:
        raise ConfigError(f'--discount must be in [0, 1], got {config.discount}')
    if not config.hidden_sizes or min(config.hidden_sizes) < 1:
        raise ConfigError(f'--hidden_sizes must be positive widths, got {config.hidden_sizes}')
    if config.n_policies != n_tasks:
        raise ConfigError(
            f'--n_policies {config.n_policies} does not match {config.env}, '
            f'which has {n_tasks} tasks in this run'
        )
    if config.num_evaluation_episodes < n_tasks:
        raise ConfigError(
            f'--num_evaluation_episodes {config.num_evaluation_episodes} is '
            f'smaller than the {n_tasks} tasks of this run: each task is '
            'evaluated on num_evaluation_episodes // n_tasks episodes, so it '
            'must be at least n_tasks'
        )
    horizon = info.max_episode_length
    if config.batch_size < n_tasks * horizon:
        raise ConfigError(
            f'--batch_size {config.batch_size} is smaller than n_tasks x episode length = '
            f'{n_tasks} x {horizon} = {n_tasks * horizon} on {config.env}: the '
            'sampler visits tasks round-robin from task 0 each round, so the last tasks '
            'would collect no data'
        )
    if config.min_buffer_size < horizon:
        raise ConfigError(
            f'--min_buffer_size {config.min_buffer_size} is smaller than the episode length '
            f'{horizon} on {config.env}: warm-up rounds (min_buffer_size x n_tasks steps) '
            'would not reach every task'
        )
    if config.min_buffer_size > config.replay_capacity:
        raise ConfigError(
            f'--min_buffer_size {config.min_buffer_size} is larger than --replay_capacity '
            f'{config.replay_capacity}: a buffer that cannot hold that many transitions never '
            'starts training'
        )
    _validate_sampler(config, n_tasks)
    _validate_videos(config)
    _validate_architectures(config, n_tasks)
    _validate_network_memory(config, n_tasks)
    if config.sparse_tasks:
        if 'sparse_tasks' not in info.env_kwargs:
            raise ConfigError(f'{config.env} has no sparse-reward variant (--sparse_tasks)')
        bad = [t for t in config.sparse_tasks if not 0 <= t < n_tasks]
        if bad:
            raise ConfigError(
                f'--sparse_tasks {bad} are not tasks of {config.env} (0..{n_tasks - 1})'
            )
    if spec.learner == 'separated':
        _validate_dnc_options(config, n_tasks)
    _validate_release_options(config)


def _validate_videos(config: ExperimentConfig) -> None:
    """``--vis_*``: videos are recorded at evaluation epochs (the release's assertion)."""
    if config.vis_freq <= 0:
        return
    if config.vis_freq % config.evaluation_frequency:
        raise ConfigError(
            f'--vis_freq {config.vis_freq} must be a multiple of '
            f'--evaluation_frequency {config.evaluation_frequency} (videos are '
            'recorded at evaluations), or -1 for no videos'
        )
    for name in ('vis_num', 'vis_width', 'vis_height', 'vis_fps'):
        if getattr(config, name) < 1:
            raise ConfigError(f'--{name} must be at least 1, got {getattr(config, name)}')


def _validate_sampler(config: ExperimentConfig, n_tasks: int) -> None:
    """``--n_workers`` and ``--envs_per_task`` belong to the vectorised sampler."""
    for name in ('n_workers', 'envs_per_task'):
        value = getattr(config, name)
        if value < 1:
            raise ConfigError(f'--{name} must be at least 1, got {value}')
        if value > 1 and config.sampler_type != 'vec':
            raise ConfigError(
                f'--{name} {value} needs --sampler_type vec (got {config.sampler_type})'
            )
    if config.n_workers > n_tasks * config.envs_per_task:
        raise ConfigError(
            f'--n_workers {config.n_workers} exceeds the {n_tasks} x '
            f'{config.envs_per_task} envs to step (n_tasks x --envs_per_task)'
        )


def _validate_dnc_options(config: ExperimentConfig, n_tasks: int) -> None:
    """KL coefficients, distillation and data sharing of the separated methods."""
    n_coeffs = len(config.kl_coeff)
    if n_coeffs not in (1, n_tasks**2):
        raise ConfigError(
            f'--kl_coeff takes 1 or n_tasks^2 = {n_tasks**2} values on {config.env}, got {n_coeffs}'
        )
    if any(c < 0 for c in config.kl_coeff):
        raise ConfigError(f'--kl_coeff values must be non-negative, got {config.kl_coeff}')
    spec = METHODS[config.method]
    if not spec.takes_dnc_penalty and any(c != 0 for c in config.kl_coeff):
        raise ConfigError(
            f'{config.method} does not combine with the DnC KL term: use --kl_coeff 0'
        )
    if spec.shares_data:
        if not 0.0 <= config.sharing_quantile <= 1.0:
            raise ConfigError(
                f'--sharing_quantile must be in [0, 1], got {config.sharing_quantile}'
            )
        if not config.unsupervised and not ENVS[config.env].has_reward_fns:
            raise ConfigError(
                f"--unsupervised false relabels shared data with each task's "
                f'reward function, which {config.env} does not have (JacoReachMT5-v1 '
                'has)'
            )
    if config.distillation_period is not None:
        if not spec.distils:
            raise ConfigError(
                f"{config.method} does not distil (the release's QMP learners "
                'never did): drop --distillation_period'
            )
        if (
            config.distillation_period < 1
            or config.distillation_period % config.evaluation_frequency
        ):
            raise ConfigError(
                '--distillation_period must be a positive multiple of '
                f'--evaluation_frequency ({config.evaluation_frequency})'
            )
        if config.distillation_n_epochs < 1:
            raise ConfigError('--distillation_n_epochs must be at least 1')


def _validate_finite_floats(config: ExperimentConfig) -> None:
    """Every float flag must be a number: ``inf`` and ``nan`` parse as floats but would turn
    the losses into nan (or hang a loop) long after the run started."""
    for name, flag in FIELDS.items():
        if str(flag.type) not in ('float', 'float | None', 'list[float]'):
            continue
        value = getattr(config, name)
        values = value if isinstance(value, list) else [value]
        if any(item is not None and not math.isfinite(item) for item in values):
            raise ConfigError(f'--{name} must be a finite number, got {value}')


def _validate_name(name: str) -> None:
    """``--name`` is one component of the run directory's name: it must not lead elsewhere."""
    separators = {separator for separator in ('/', os.sep, os.altsep) if separator}
    if any(separator in name for separator in separators) or '..' in name or '\0' in name:
        raise ConfigError(
            f'--name {name!r} must not contain a path separator, ".." or a NUL '
            'character: it becomes part of one directory name'
        )


def network_memory_lower_bound(config: ExperimentConfig, n_tasks: int) -> int:
    """Bytes that the networks of ``config`` need at least: float32 weights of the actors
    (with their gradients and two Adam moments, 4 copies), of the twin critics (4 copies
    each) and of their two target copies. Observation and action sizes are taken as 1
    (the smallest possible), so the true need is always larger."""

    def mlp_parameters(in_dim: int, out_dim: int) -> int:
        sizes = [in_dim, *config.hidden_sizes, out_dim]
        return sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(sizes))

    actors = n_tasks if config.policy_architecture == 'separate' else 1
    critics = n_tasks if config.Q_architecture == 'separate' else 1
    floats = (
        4 * actors * mlp_parameters(1, 2)  # mean and log-std of one action dimension
        + (2 * 4 + 2) * critics * mlp_parameters(2, 1)
    )  # Q(state, action)
    return 4 * floats


def _validate_network_memory(config: ExperimentConfig, n_tasks: int) -> None:
    """Refuses ``--hidden_sizes`` whose networks cannot be allocated, before anything starts
    (torch would fail inside the run, or the machine would start swapping)."""
    needed = network_memory_lower_bound(config, n_tasks)
    available = psutil.virtual_memory().available
    if needed > available:
        raise ConfigError(
            f'--hidden_sizes {" ".join(map(str, config.hidden_sizes))} need at '
            f'least {needed / 2**30:.1f} GiB for the networks of {n_tasks} '
            f'tasks, but only {available / 2**30:.1f} GiB of memory is available'
        )


def _validate_release_options(config: ExperimentConfig) -> None:
    """``--norm_obs`` and ``--partition random``: where the release offered them."""
    if config.norm_obs:
        if 'norm_obs' not in ENVS[config.env].env_kwargs:
            raise ConfigError(
                f'--norm_obs is offered for JacoReachMT5-v1 and Walker2dMT4-v0 '
                f'only (the release normalised only those), not {config.env}'
            )
        if config.sampler_type == 'ray' or config.n_workers > 1:
            raise ConfigError(
                '--norm_obs needs one collecting process (--sampler_type vec or '
                'local, --n_workers 1): worker processes would keep the '
                'normalisation statistics where snapshots cannot save them'
            )
        if METHODS[config.method].shares_data and not config.unsupervised:
            raise ConfigError(
                '--norm_obs does not combine with --unsupervised false: the '
                'reward functions read unnormalised observations'
            )
    if config.partition == 'random' and not METHODS[config.method].takes_random_partition:
        raise ConfigError(
            f'--partition random is offered for {", ".join(RANDOM_PARTITION_METHODS)}'
            f' (separated learners collecting with their own policies), not '
            f'{config.method}'
        )
    if config.partition == 'random' and (config.include_task_id or not config.unsupervised):
        raise ConfigError(
            '--partition random stores each episode in the buffer of the policy '
            'that acted, which does not keep its task one-hot: it does not '
            'combine with --include_task_id true or --unsupervised false'
        )


def _validate_task_name(task_name: str, env_id: str) -> None:
    """``--task_name "i,j,..."``: distinct task indices of an env that supports subsets."""
    info = ENVS[env_id]
    if 'task_name' not in info.env_kwargs:
        raise ConfigError(f'{env_id} does not select task subsets (--task_name)')
    try:
        select_tasks(task_name, info.n_tasks)
    except ValueError as error:
        raise ConfigError(f'--{error}') from None


def _validate_architectures(config: ExperimentConfig, n_tasks: int) -> None:
    """Which architectures each learner family can train (the release's assertions)."""
    spec = METHODS[config.method]
    architectures = (config.policy_architecture, config.Q_architecture)
    if spec.learner == 'separated' and architectures != ('separate', 'separate'):
        raise ConfigError(
            f'{config.method} trains one network per task: it needs '
            '--policy_architecture separate --Q_architecture separate'
        )
    if spec.learner == 'shared' and 'separate' in architectures:
        raise ConfigError(
            f'{config.method} shares parameters across tasks: use multihead or '
            'shared for --policy_architecture and --Q_architecture'
        )
    if spec.learner == 'mcal' and architectures != ('multihead', 'separate'):
        raise ConfigError(
            f'{config.method} trains a multihead actor against per-task critics: '
            'it needs --policy_architecture multihead --Q_architecture separate'
        )
    if (
        spec.learner == 'shared'
        and spec.uses_qswitch
        and architectures != ('multihead', 'multihead')
    ):
        raise ConfigError(
            f'{config.method} chooses among per-task heads: it needs '
            '--policy_architecture multihead --Q_architecture multihead'
        )
    if (
        spec.needs_task_id_on_shared_networks
        and n_tasks > 1
        and 'shared' in architectures
        and not config.include_task_id
    ):
        raise ConfigError(
            f'{config.method} with a shared network needs --include_task_id '
            'true, or the network cannot tell the tasks apart'
        )


def check_log_root(log_root: str) -> None:
    """Refuses a ``--log_root`` under which no run directory can be created, before anything
    is created: a path through a file, or under a directory this user cannot write."""
    if not log_root:
        raise ConfigError('--log_root must name a directory, got an empty string')
    existing = os.path.abspath(log_root)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f'--log_root {log_root!r}: {existing} exists and is not a directory')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f'--log_root {log_root!r}: cannot create directories in {existing} '
            '(no write permission); choose a writable --log_root'
        )


RUN_DIR_FILES = ('params.pkl', 'variant.json', 'progress.csv')


def check_run_dir(
    run_dir: str,
    files: Sequence[str] = RUN_DIR_FILES,
    where: str | None = None,
    check_snapshot: bool = True,
) -> ExperimentConfig:
    """Checks that ``run_dir`` holds a run that ``resume`` (or ``run_policy.py``) can load,
    before anything is written there; returns its configuration.

    ``run_dir`` must hold ``files``. ``variant.json`` must be JSON with a ``config`` whose keys
    are flags, whose values have the flags' types and which passes ``validate``; with
    ``check_snapshot``, ``params.pkl`` must be a complete pickle whose classes and functions
    all still exist (read without building any object). ``where`` begins each error message
    (default: ``--snapshot_dir 'RUN_DIR'``, resume's flag).
    """
    where = where or f'--snapshot_dir {run_dir!r}'
    if not os.path.isdir(run_dir):
        raise ConfigError(f'{where} is not a directory')
    for name in files:
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise ConfigError(f'{where} has no {name}: not a run directory with a snapshot')
    config = _read_variant(run_dir, f'{where}: variant.json')
    if check_snapshot:
        _check_snapshot(os.path.join(run_dir, 'params.pkl'), f'{where}: params.pkl')
        from infrastructure.snapshot_info import missing_replay_chunks  # resume only: imports torch

        missing = missing_replay_chunks(run_dir)
        if missing:
            raise ConfigError(
                f'{where}: replay/ lacks {len(missing)} chunk file(s) of the '
                f'snapshot (e.g. {missing[0]}); copy the run directory with '
                'its replay/'
            )
    return config


def _read_variant(run_dir: str, where: str) -> ExperimentConfig:
    try:
        with open(os.path.join(run_dir, 'variant.json'), encoding='utf-8') as file:
            variant = json.load(file)
    except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError
        raise ConfigError(f'{where} is not readable JSON ({error})') from None
    if not isinstance(variant, dict) or not isinstance(variant.get('config'), dict):
        raise ConfigError(f'{where} has no "config" object: not written by run.py')
    values = variant['config']
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f'{where} sets unknown flags {unknown}')
    for name, value in values.items():
        choices = FIELDS[name].metadata['choices']
        if not _has_flag_type(value, str(FIELDS[name].type)) or (choices and value not in choices):
            raise ConfigError(f'{where} has an invalid {name}: {value!r}')
    config = ExperimentConfig(**values)
    try:
        # wandb is not restarted on resume, so a wandb run resumes without the package.
        validate(dataclasses.replace(config, wandb=False))
    except ConfigError as error:
        raise ConfigError(f'{where} holds a configuration that cannot run: {error}') from None
    return config


def _has_flag_type(value: Any, type_name: str) -> bool:
    """Whether a JSON value fits a flag's annotation (``int``, ``float | None``, ...)."""
    if type_name.endswith(' | None'):
        return value is None or _has_flag_type(value, type_name.removesuffix(' | None'))
    if type_name.startswith('list['):
        return isinstance(value, list) and all(
            _has_flag_type(item, type_name[5:-1]) for item in value
        )
    if isinstance(value, bool):
        return type_name == 'bool'
    kinds: dict[str, type | tuple[type, ...]] = {'int': int, 'float': (int, float), 'str': str}
    return isinstance(value, kinds.get(type_name, ()))


class _Inert:
    """Stands in for every class and function a snapshot names: accepts whatever the pickle
    does with it, builds nothing and runs none of the snapshot's code."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        """The ``APPEND`` opcode on an object the pickle built."""

    def extend(self, items: Any) -> None:
        """The ``APPENDS`` opcode on an object the pickle built."""


class _SnapshotReader(pickle.Unpickler):
    """Reads a whole pickle, resolving each global it names (so missing code is found) but
    handing back ``_Inert`` instead: no env, sampler or Ray worker is started."""

    def find_class(self, module: str, name: str) -> Any:
        super().find_class(module, name)
        return _Inert


def _check_snapshot(path: str, where: str) -> None:
    """Refuses an empty, truncated or garbled ``params.pkl``, or one that names code which no
    longer exists, without unpickling it for real (resume does that, once)."""
    import infrastructure.garage_compat  # noqa: F401  pylint: disable=C0415,W0611  (before garage)

    if os.path.getsize(path) == 0:
        raise ConfigError(f'{where} is empty (the run was interrupted before its first snapshot?)')
    try:
        with open(path, 'rb') as file:
            _SnapshotReader(file).load()
            trailing = file.read(1)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f'{where} needs code that no longer exists ({error})') from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        OverflowError,
        MemoryError,
        struct.error,
        OSError,
    ) as error:
        raise ConfigError(
            f'{where} is truncated or not a snapshot ({type(error).__name__}: {error})'
        ) from None
    if trailing:
        raise ConfigError(f'{where} has data after its end: not a snapshot')
