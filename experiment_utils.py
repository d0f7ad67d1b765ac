"""Experiment configuration: every CLI flag, the per-env presets, and how they combine.

One dataclass, ``ExperimentConfig``, holds every flag with its release default and a help line.
Flags that only some methods take say so in ``methods``; ``run.py`` builds its parser from this.
Per-environment presets (the release's ``run.py`` overrides, spec §1.5) live in ``ENV_PRESETS``
and are validated at import, so a preset key that is not a flag (the release's ``num_epochs``
typo) fails at once. Precedence: dataclass defaults < env preset < flags the user typed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import json
import math
import os
import pickle
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import psutil

from environments.registry import DEFAULT_ENV, ENVS, select_tasks, selected_task_count

# The methods this version offers, with one line each for ``run.py --help``.
METHODS: dict[str, str] = {
    'dnc_sac': 'Separated: one SAC learner per task, each collecting its own data',
    'qmp_dnc': 'Separated + QMP: per-task SAC, data collected by the Q-switch mixture',
    'sac': 'one SAC learner for all tasks (multihead or shared networks), one temperature',
    'mtsac': 'Parameters: multi-task SAC, multihead or shared networks, per-task temperature',
    'qmp_sac': 'Parameters + QMP: mtsac with the Q-switch over the heads collecting data',
    'uds_dnc': 'Data: per-task SAC with online unsupervised data sharing (UDS)',
    'qmp_uds_dnc': 'Data + QMP: uds_dnc with data collected by the Q-switch mixture',
    'decaf': 'per-task SAC whose critics mix all tasks\' critics with learned weights (DECAF)',
    'mcal': 'one multihead actor trained against per-task critics (MCAL)',
    'qmp_mcal': 'MCAL with the Q-switch over the actor\'s heads collecting data',
}
SEPARATED_METHODS = ('dnc_sac', 'qmp_dnc', 'uds_dnc', 'qmp_uds_dnc', 'decaf')
SHARING_METHODS = ('sac', 'mtsac', 'qmp_sac')
MCAL_METHODS = ('mcal', 'qmp_mcal')
QMP_METHODS = ('qmp_dnc', 'qmp_sac', 'qmp_uds_dnc', 'qmp_mcal')
UDS_METHODS = ('uds_dnc', 'qmp_uds_dnc')
ARCHITECTURES = ('separate', 'multihead', 'shared')
# Seeds stay below 2**31 so that every seed derived from them (per-task env seeds add up to
# n_tasks + 100) fits the 32-bit seeds of numpy's legacy generator and garage's set_seed.
MAX_SEED = 2 ** 31 - 1

# Methods where ``--partition random`` assigns each episode to a random policy and buffer.
RANDOM_PARTITION_METHODS = ('dnc_sac', 'uds_dnc', 'decaf')


# Help prefix of the flags kept only so the release's commands still parse.
NO_EFFECT = '[release compatibility, no effect]'


class ConfigError(ValueError):
    """A configuration a run cannot start with; ``run.py`` prints it on one line, exit 2."""


def _flag(default: Any, help_text: str, methods: tuple[str, ...] | None = None,
          choices: tuple[Any, ...] | None = None, **extra: Any) -> Any:
    metadata = {'help': help_text, 'methods': methods, 'choices': choices, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ExperimentConfig:
    """Every flag of ``run.py``. Units: "env steps" are summed over all tasks."""

    method: str = _flag('qmp_dnc', 'the method to run', choices=tuple(METHODS), positional=True)
    env: str = _flag(DEFAULT_ENV, 'environment id', choices=tuple(ENVS))
    seed: int = _flag(0, 'random seed (python, numpy, torch, env resets)')
    name: str = _flag('None', 'run-name component; the log dir is '
                      '<prefix><env>_<name>_<seed> (release naming)')
    gpu: int | None = _flag(None, 'CUDA device index; CPU when absent or CUDA is unavailable')
    notes: str = _flag('', 'wandb notes')
    wandb: bool = _flag(False, 'also log to Weights & Biases (off by default; set '
                        'WANDB_MODE=offline to log without a network)')
    wandb_project: str = _flag('p-task-mod', 'wandb project')
    wandb_entity: str | None = _flag(None, 'wandb entity (default: your wandb default)')
    gradient_steps_per_itr: int = _flag(1000, 'gradient steps per sampling round, split across '
                                        'tasks in proportion to the data each collected')
    min_buffer_size: int = _flag(10000, 'transitions a task buffer needs before it trains; '
                                 'while any buffer holds fewer, a round collects '
                                 'min_buffer_size x n_tasks env steps')
    target_update_tau: float = _flag(5e-3, 'Polyak coefficient of the target critics')
    target_entropy: float | None = _flag(None, 'SAC target entropy (default: -action dim)')
    discount: float = _flag(0.99, 'discount factor')
    buffer_batch_size: int = _flag(32, 'transitions per gradient step, per task')
    reward_scale: float = _flag(1.0, 'reward multiplier in the TD target')
    steps_per_epoch: int = _flag(1, 'sampling rounds (each followed by its gradient steps) '
                                 'per epoch')
    hidden_sizes: list[int] = _flag([256, 256], 'hidden layer widths of actors and critics',
                                    nargs='+')
    layer_norm: bool = _flag(False, 'LayerNorm in the critics')
    policy_architecture: str = _flag('separate', "actor architecture: 'separate' (one network "
                                     "per task; separated methods), 'multihead' (shared trunk, "
                                     "a head per task) or 'shared' (one network)",
                                     choices=ARCHITECTURES)
    Q_architecture: str = _flag('separate', 'critic architecture (as --policy_architecture)',
                                choices=ARCHITECTURES)
    use_pc_grad: bool = _flag(False, 'combine per-task gradients with PCGrad',
                              methods=SHARING_METHODS)
    skip_alpha_pc_grad: bool = _flag(True, 'with PCGrad, leave the temperature loss out of it',
                                     methods=SHARING_METHODS)
    n_epochs: int = _flag(1000, 'epochs to train')
    batch_size: int = _flag(1000, 'env steps collected per sampling round, summed over tasks')
    lr: float = _flag(3e-4, 'Adam learning rate of actors, critics and temperatures')
    sampler_type: str = _flag('vec', "sampler: 'vec' (all task envs stepped in lockstep, one "
                              "batched policy call per step; same episodes as 'local'), "
                              "'local' (garage's, one env at a time) or 'ray'",
                              choices=('vec', 'local', 'ray'))
    n_workers: int = _flag(1, "--sampler_type vec: processes stepping the envs (each a "
                           'lockstep share of them)')
    envs_per_task: int = _flag(1, '--sampler_type vec: envs per task, so that a task\'s '
                               'later episodes of a round run alongside its first')
    num_evaluation_episodes: int = _flag(10, 'evaluation episodes per evaluation mode, summed '
                                         'over tasks (per task: this // n_tasks)')
    evaluation_frequency: int = _flag(1, 'evaluate every this many epochs')
    snapshot_gap: int = _flag(1, 'rewrite the run\'s one snapshot (params.pkl) after every '
                              'this many epochs and after the last; a resume redoes the epochs '
                              'after the snapshot (up to this many minus one)')
    partition: str = _flag('task_id', "which policy (and buffer) an episode belongs to: "
                           "'task_id' (its task's) or 'random' (one drawn uniformly per "
                           'episode; dnc_sac, uds_dnc, decaf)', choices=('task_id', 'random'))
    include_task_id: bool = _flag(False, 'keep the task one-hot in the network input')
    norm_obs: bool = _flag(False, 'normalise observations with running per-env mean and '
                           'variance (JacoReachMT5-v1 and Walker2dMT4-v0, as the release)')
    sparse_tasks: list[int] = _flag([], 'task ids with sparse rewards (where the env has them)',
                                    nargs='*')
    task_name: str | None = _flag(None, 'comma-separated task indices to keep, e.g. "0,3,7" '
                                  '(where the env supports subsets)')
    kl_coeff: list[float] = _flag([0.0], 'DnC KL coefficients: one value for all pairs or '
                                  'n_tasks^2 values in the order 1->1 2->1 ... N->1 1->2 ... '
                                  '(entry i*N+j pulls policy i towards policy j)',
                                  methods=SEPARATED_METHODS, nargs='+')
    sampling_type: str = _flag('all', "states of the DnC KL term: 'all' (every task's buffer), "
                               "'i' (the regularised policy's), 'j' (the other policy's), "
                               "'i+j' (half of each)", methods=SEPARATED_METHODS,
                               choices=('all', 'i', 'j', 'i+j'))
    regularize_representation: bool = _flag(False, 'DnC: penalise the MSE between the '
                                            "policies' last hidden layers instead of the KL",
                                            methods=SEPARATED_METHODS)
    distillation_period: int | None = _flag(None, 'DnC: every this many epochs, distil all task '
                                            'policies into one and copy it back',
                                            methods=SEPARATED_METHODS)
    distillation_n_epochs: int = _flag(100, 'DnC: gradient steps of each distillation',
                                       methods=SEPARATED_METHODS)
    sharing_quantile: float = _flag(0.0, 'UDS: share another task\'s transition when the '
                                    "task's critic rates it above this quantile of its own "
                                    'batch (0 shares everything)', methods=UDS_METHODS)
    unsupervised: bool = _flag(True, "UDS: relabel shared rewards with the env's minimum "
                               'reward', methods=UDS_METHODS)
    policy_sampling_freq: int = _flag(1, 'Q-switch: re-select the acting policy every this '
                                      'many steps of an episode', methods=QMP_METHODS)
    qmp_score_action: str = _flag('mean', "Q-switch: score each proposal's 'mean' action (the "
                                  "release) or its 'sample' (the executed action)",
                                  methods=QMP_METHODS, choices=('mean', 'sample'))
    qmp_score_critic: str = _flag('q1', "Q-switch: score with 'q1' (the release) or 'min' of "
                                  'both critics', methods=QMP_METHODS, choices=('q1', 'min'))
    qmp_selection: str = _flag('qswitch', "'qswitch' (argmax of the score) or 'uniform' (the "
                               "paper's QMP-Uniform ablation)", methods=QMP_METHODS,
                               choices=('qswitch', 'uniform'))
    torch_threads: int = _flag(1, 'CPU threads torch may use; 1 is fastest for the per-step '
                               'calls of data collection, more can pay off for large '
                               'minibatches on an otherwise idle machine')
    log_root: str = _flag('data/local/experiment', 'directory that holds the run directories')
    dry_run: bool = _flag(False, 'print the resolved configuration and exit')
    console_table: bool = _flag(False, "print dowel's full table of every epoch on the console "
                                'instead of one line (the table always goes to debug.log)')
    vis_freq: int = _flag(-1, 'record videos of deterministic episodes at epoch 0 and every '
                          'this many epochs (a multiple of --evaluation_frequency) under '
                          'RUN_DIR/videos; -1 (any value <= 0) records none (the release: 10)')
    vis_num: int = _flag(10, 'episodes per recording and evaluation mode, divided across the '
                         'tasks (at least one each)')
    vis_width: int = _flag(500, 'video frame width in pixels')
    vis_height: int = _flag(500, 'video frame height in pixels')
    vis_fps: int = _flag(40, 'video frames per second')
    vis_format: str = _flag('mp4', 'video file format', choices=('mp4', 'gif'))
    # ---- Release compatibility: accepted so the release's commands run, but they change
    # nothing (the task count comes from the env, and garage's default worker is the only one).
    n_policies: int = _flag(4, f'{NO_EFFECT} number of tasks = policies = buffers; must equal '
                            "the env's (the env's task count is always used)")
    worker_type: str = _flag('default', f'{NO_EFFECT} garage worker (one env per worker)',
                             choices=('default',))

    @property
    def n_tasks(self) -> int:
        """Tasks in this run: the env's, or the ``--task_name`` subset."""
        return selected_task_count(self.env, self.task_name)


FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}

# Per-environment overrides of the release (spec §1.5). Keys must be flags (checked below).
ENV_PRESETS: dict[str, dict[str, Any]] = {
    'PointWallMT-v0': dict(n_policies=4, batch_size=400, gradient_steps_per_itr=400,
                           min_buffer_size=200, buffer_batch_size=64, steps_per_epoch=2,
                           n_epochs=30, num_evaluation_episodes=20, hidden_sizes=[64, 64],
                           lr=1e-3),
    'PointReachMT-v0': dict(n_policies=4, batch_size=400, gradient_steps_per_itr=400,
                            min_buffer_size=200, buffer_batch_size=64, steps_per_epoch=2,
                            n_epochs=30, num_evaluation_episodes=20, hidden_sizes=[64, 64],
                            lr=1e-3),
    'JacoReachMT5-v1': dict(n_policies=5, n_epochs=2000, num_evaluation_episodes=50),
    'MazeLarge-10-v0': dict(n_policies=10, batch_size=6000, gradient_steps_per_itr=1000,
                            min_buffer_size=3000, buffer_batch_size=256, steps_per_epoch=1,
                            n_epochs=2000, num_evaluation_episodes=100),
    'Walker2dMT4-v0': dict(n_policies=4, batch_size=4000, gradient_steps_per_itr=6000,
                           n_epochs=2000, num_evaluation_episodes=40),
    # The release also set ``num_epochs=500`` here, a typo with no effect (n_epochs stays 1000).
    'KitchenMTEasy-v0': dict(n_policies=10, batch_size=2000, gradient_steps_per_itr=500,
                             min_buffer_size=2000, buffer_batch_size=1280, steps_per_epoch=5,
                             num_evaluation_episodes=50),
    'MetaWorldCDS-v1': dict(n_policies=4, batch_size=2000, gradient_steps_per_itr=200,
                            min_buffer_size=5000, buffer_batch_size=256, steps_per_epoch=10,
                            lr=0.0015, n_epochs=500, num_evaluation_episodes=40),
    'MetaWorldMT10-v2': dict(n_policies=10, batch_size=5000, gradient_steps_per_itr=500,
                             min_buffer_size=5000, buffer_batch_size=2560, steps_per_epoch=10,
                             lr=0.0015, num_evaluation_episodes=100),
    'MetaWorldMT50-v2': dict(n_policies=50, batch_size=25000, gradient_steps_per_itr=2500,
                             min_buffer_size=1500, buffer_batch_size=1280, steps_per_epoch=8,
                             n_epochs=1000, num_evaluation_episodes=250,
                             hidden_sizes=[400, 400]),
}


def _check_presets() -> None:
    for method, preset in METHOD_PRESETS.items():
        if method not in METHODS or set(preset) - set(FIELDS):
            raise ConfigError(f'invalid method preset for {method!r}')
    for env_id, preset in ENV_PRESETS.items():
        if env_id not in ENVS:
            raise ConfigError(f'preset for unregistered env {env_id!r}')
        unknown = set(preset) - set(FIELDS)
        if unknown:
            raise ConfigError(f'preset for {env_id} sets unknown flags {sorted(unknown)}')
        if preset.get('n_policies', ENVS[env_id].n_tasks) != ENVS[env_id].n_tasks:
            raise ConfigError(f'preset for {env_id} has the wrong n_policies')


# Per-method overrides, applied after the env preset: the parameter-sharing methods need
# non-separate networks (the release's defaults made them fail an assertion, spec §10 item 3).
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    **{method: dict(policy_architecture='multihead', Q_architecture='multihead')
       for method in SHARING_METHODS},
    **{method: dict(policy_architecture='multihead', Q_architecture='separate')
       for method in MCAL_METHODS},
}

_check_presets()


def flags_for(method: str) -> list[dataclasses.Field]:
    """The flags ``method`` accepts, in declaration order (the method itself excluded)."""
    return [f for f in dataclasses.fields(ExperimentConfig)
            if not f.metadata.get('positional')
            and (f.metadata['methods'] is None or method in f.metadata['methods'])]


def resolve_config(method: str, typed: dict[str, Any]) -> ExperimentConfig:
    """defaults < env preset < typed flags; then ``validate``."""
    env_id = typed.get('env', DEFAULT_ENV)
    if env_id not in ENVS:
        raise ConfigError(f'unknown env {env_id!r}; available: {", ".join(ENVS)}')
    values = {**ENV_PRESETS.get(env_id, {}), **METHOD_PRESETS.get(method, {}), **typed,
              'method': method}
    if 'n_policies' not in typed and typed.get('task_name') is not None:
        # A task subset changes the task count; follow it unless the user set n_policies.
        with contextlib.suppress(ValueError):  # validate() reports a malformed --task_name
            values['n_policies'] = selected_task_count(env_id, typed['task_name'])
    config = ExperimentConfig(**values)
    validate(config)
    return config


def validate(config: ExperimentConfig) -> None:
    """Refuses configurations the release would crash on, hang on, or silently misread."""
    info = ENVS[config.env]
    if config.task_name is not None:
        _validate_task_name(config.task_name, config.env)
    if config.wandb and importlib.util.find_spec('wandb') is None:
        raise ConfigError('--wandb true needs the wandb package: pip install wandb==0.31.0 '
                          '(WANDB_MODE=offline logs without a network)')
    n_tasks = config.n_tasks
    positive = ('gradient_steps_per_itr', 'min_buffer_size', 'buffer_batch_size',
                'steps_per_epoch', 'n_epochs', 'batch_size', 'num_evaluation_episodes',
                'evaluation_frequency', 'snapshot_gap', 'n_policies', 'torch_threads')
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f'--{name} must be at least 1, got {getattr(config, name)}')
    if config.method in QMP_METHODS and config.policy_sampling_freq < 1:
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
        raise ConfigError(f'--target_update_tau must be in (0, 1], got '
                          f'{config.target_update_tau}')
    if not 0 <= config.discount <= 1:
        raise ConfigError(f'--discount must be in [0, 1], got {config.discount}')
    if not config.hidden_sizes or min(config.hidden_sizes) < 1:
        raise ConfigError(f'--hidden_sizes must be positive widths, got {config.hidden_sizes}')
    if config.n_policies != n_tasks:
        raise ConfigError(f'--n_policies {config.n_policies} does not match {config.env}, '
                          f'which has {n_tasks} tasks in this run')
    if config.num_evaluation_episodes < n_tasks:
        raise ConfigError(f'--num_evaluation_episodes {config.num_evaluation_episodes} is '
                          f'smaller than the {n_tasks} tasks of this run: each task is '
                          'evaluated on num_evaluation_episodes // n_tasks episodes, so it '
                          'must be at least n_tasks')
    horizon = info.max_episode_length
    if config.batch_size < n_tasks * horizon:
        raise ConfigError(
            f'--batch_size {config.batch_size} is smaller than n_tasks x episode length = '
            f'{n_tasks} x {horizon} = {n_tasks * horizon} on {config.env}: the '
            'sampler visits tasks round-robin from task 0 each round, so the last tasks '
            'would collect no data')
    if config.min_buffer_size < horizon:
        raise ConfigError(
            f'--min_buffer_size {config.min_buffer_size} is smaller than the episode length '
            f'{horizon} on {config.env}: warm-up rounds (min_buffer_size x n_tasks steps) '
            'would not reach every task')
    _validate_sampler(config, n_tasks)
    _validate_videos(config)
    _validate_architectures(config, n_tasks)
    _validate_network_memory(config, n_tasks)
    if config.sparse_tasks:
        if 'sparse_tasks' not in info.env_kwargs:
            raise ConfigError(f'{config.env} has no sparse-reward variant (--sparse_tasks)')
        bad = [t for t in config.sparse_tasks if not 0 <= t < n_tasks]
        if bad:
            raise ConfigError(f'--sparse_tasks {bad} are not tasks of {config.env} '
                              f'(0..{n_tasks - 1})')
    if config.method in SEPARATED_METHODS:
        _validate_dnc_options(config, n_tasks)
    _validate_release_options(config)


def _validate_videos(config: ExperimentConfig) -> None:
    """``--vis_*``: videos are recorded at evaluation epochs (the release's assertion)."""
    if config.vis_freq <= 0:
        return
    if config.vis_freq % config.evaluation_frequency:
        raise ConfigError(f'--vis_freq {config.vis_freq} must be a multiple of '
                          f'--evaluation_frequency {config.evaluation_frequency} (videos are '
                          'recorded at evaluations), or -1 for no videos')
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
            raise ConfigError(f'--{name} {value} needs --sampler_type vec (got '
                              f'{config.sampler_type})')
    if config.n_workers > n_tasks * config.envs_per_task:
        raise ConfigError(f'--n_workers {config.n_workers} exceeds the {n_tasks} x '
                          f'{config.envs_per_task} envs to step (n_tasks x --envs_per_task)')


def _validate_dnc_options(config: ExperimentConfig, n_tasks: int) -> None:
    """KL coefficients, distillation and data sharing of the separated methods."""
    n_coeffs = len(config.kl_coeff)
    if n_coeffs not in (1, n_tasks ** 2):
        raise ConfigError(f'--kl_coeff takes 1 or n_tasks^2 = {n_tasks ** 2} values on '
                          f'{config.env}, got {n_coeffs}')
    if any(c < 0 for c in config.kl_coeff):
        raise ConfigError(f'--kl_coeff values must be non-negative, got {config.kl_coeff}')
    if config.method in UDS_METHODS + ('decaf',) and any(c != 0 for c in config.kl_coeff):
        raise ConfigError(f'{config.method} does not combine with the DnC KL term: use '
                          '--kl_coeff 0')
    if config.method in UDS_METHODS:
        if not 0.0 <= config.sharing_quantile <= 1.0:
            raise ConfigError(f'--sharing_quantile must be in [0, 1], got '
                              f'{config.sharing_quantile}')
        if not config.unsupervised and not ENVS[config.env].has_reward_fns:
            raise ConfigError(f'--unsupervised false relabels shared data with each task\'s '
                              f'reward function, which {config.env} does not have (JacoReachMT5-v1 '
                              'has)')
    if config.distillation_period is not None:
        if config.method in QMP_METHODS:
            raise ConfigError(f'{config.method} does not distil (the release\'s QMP learners '
                              'never did): drop --distillation_period')
        if (config.distillation_period < 1
                or config.distillation_period % config.evaluation_frequency):
            raise ConfigError('--distillation_period must be a positive multiple of '
                              f'--evaluation_frequency ({config.evaluation_frequency})')
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
    separators = {'/', os.sep, os.altsep} - {None}
    if any(separator in name for separator in separators) or '..' in name or '\0' in name:
        raise ConfigError(f'--name {name!r} must not contain a path separator, ".." or a NUL '
                          'character: it becomes part of one directory name')


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
    floats = (4 * actors * mlp_parameters(1, 2)  # mean and log-std of one action dimension
              + (2 * 4 + 2) * critics * mlp_parameters(2, 1))  # Q(state, action)
    return 4 * floats


def _validate_network_memory(config: ExperimentConfig, n_tasks: int) -> None:
    """Refuses ``--hidden_sizes`` whose networks cannot be allocated, before anything starts
    (torch would fail inside the run, or the machine would start swapping)."""
    needed = network_memory_lower_bound(config, n_tasks)
    available = psutil.virtual_memory().available
    if needed > available:
        raise ConfigError(f'--hidden_sizes {" ".join(map(str, config.hidden_sizes))} need at '
                          f'least {needed / 2 ** 30:.1f} GiB for the networks of {n_tasks} '
                          f'tasks, but only {available / 2 ** 30:.1f} GiB of memory is available')


def _validate_release_options(config: ExperimentConfig) -> None:
    """``--norm_obs`` and ``--partition random``: where the release offered them."""
    if config.norm_obs:
        if 'norm_obs' not in ENVS[config.env].env_kwargs:
            raise ConfigError(f'--norm_obs is offered for JacoReachMT5-v1 and Walker2dMT4-v0 '
                              f'only (the release normalised only those), not {config.env}')
        if config.sampler_type == 'ray' or config.n_workers > 1:
            raise ConfigError('--norm_obs needs one collecting process (--sampler_type vec or '
                              'local, --n_workers 1): worker processes would keep the '
                              'normalisation statistics where snapshots cannot save them')
        if config.method in UDS_METHODS and not config.unsupervised:
            raise ConfigError('--norm_obs does not combine with --unsupervised false: the '
                              'reward functions read unnormalised observations')
    if config.partition == 'random' and config.method not in RANDOM_PARTITION_METHODS:
        raise ConfigError(f'--partition random is offered for {", ".join(RANDOM_PARTITION_METHODS)}'
                          f' (separated learners collecting with their own policies), not '
                          f'{config.method}')
    if config.partition == 'random' and (config.include_task_id or not config.unsupervised):
        raise ConfigError('--partition random stores each episode in the buffer of the policy '
                          'that acted, which does not keep its task one-hot: it does not '
                          'combine with --include_task_id true or --unsupervised false')


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
    """Which architectures each method can train (the release's assertions, spec §1.2)."""
    architectures = (config.policy_architecture, config.Q_architecture)
    if config.method in SEPARATED_METHODS and architectures != ('separate', 'separate'):
        raise ConfigError(f'{config.method} trains one network per task: it needs '
                          '--policy_architecture separate --Q_architecture separate')
    if config.method in SHARING_METHODS and 'separate' in architectures:
        raise ConfigError(f'{config.method} shares parameters across tasks: use multihead or '
                          'shared for --policy_architecture and --Q_architecture')
    if config.method in MCAL_METHODS and architectures != ('multihead', 'separate'):
        raise ConfigError(f'{config.method} trains a multihead actor against per-task critics: '
                          'it needs --policy_architecture multihead --Q_architecture separate')
    if config.method == 'qmp_sac' and architectures != ('multihead', 'multihead'):
        raise ConfigError('qmp_sac chooses among per-task heads: it needs '
                          '--policy_architecture multihead --Q_architecture multihead')
    if (config.method == 'mtsac' and n_tasks > 1 and 'shared' in architectures
            and not config.include_task_id):
        raise ConfigError('mtsac with a shared network needs --include_task_id true, or the '
                          'network cannot tell the tasks apart')


def run_name(config: ExperimentConfig) -> str:
    """The deterministic run name ``<method>_<env>_<name>_<seed>`` (the release's naming;
    it prefixed qmp_sac runs ``sac_qmp_`` and sac/mtsac runs both ``sac_``)."""
    name = re.sub(r'\s+', '-', config.name)
    return f'{config.method}_{config.env}_{name}_{config.seed}'


def env_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Constructor keyword arguments of the env family, from the flags it accepts."""
    kwargs = {'include_task_id': config.include_task_id, 'sparse_tasks': config.sparse_tasks,
              'task_name': config.task_name, 'norm_obs': config.norm_obs}
    return {key: value for key, value in kwargs.items() if key in ENVS[config.env].env_kwargs}


def as_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Plain-data form, written to the run's ``variant.json`` and printed by ``--dry_run``."""
    return dataclasses.asdict(config)


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
        raise ConfigError(f'--log_root {log_root!r}: cannot create directories in {existing} '
                          '(no write permission); choose a writable --log_root')


def resolve_device(config: ExperimentConfig) -> tuple[ExperimentConfig, str | None]:
    """``config`` with the device the run will use, and a warning line if that is not the
    one asked for: without CUDA, ``--gpu`` falls back to the CPU and ``gpu`` becomes None, so
    ``variant.json`` records the device actually used."""
    if config.gpu is None:
        return config, None
    import torch  # pylint: disable=import-outside-toplevel  (only --gpu needs torch here)
    if not torch.cuda.is_available():
        return (dataclasses.replace(config, gpu=None),
                f'--gpu {config.gpu} ignored: CUDA is not available, training on the CPU')
    if config.gpu >= torch.cuda.device_count():
        raise ConfigError(f'--gpu {config.gpu}: this machine has CUDA devices '
                          f'0..{torch.cuda.device_count() - 1}')
    return config, None


RUN_DIR_FILES = ('params.pkl', 'variant.json', 'progress.csv')


def check_run_dir(run_dir: str) -> ExperimentConfig:
    """Checks that ``run_dir`` holds a run that ``resume`` can load, before anything is
    written there; returns its configuration.

    ``variant.json`` must be JSON with a ``config`` whose keys are flags, whose values have
    the flags' types and which passes ``validate``; ``params.pkl`` must be a complete pickle
    whose classes and functions all still exist (read without building any object).
    """
    for name in RUN_DIR_FILES:
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise ConfigError(f'--snapshot_dir {run_dir!r} has no {name}: not a run '
                              'directory with a snapshot')
    config = _read_variant(run_dir)
    _check_snapshot(os.path.join(run_dir, 'params.pkl'))
    from learning.snapshot_info import missing_replay_chunks  # pylint: disable=C0415  (resume only)
    missing = missing_replay_chunks(run_dir)
    if missing:
        raise ConfigError(f'--snapshot_dir {run_dir!r}: replay/ lacks {len(missing)} chunk '
                          f'file(s) of the snapshot (e.g. {missing[0]}); copy the run '
                          'directory with its replay/')
    return config


def _read_variant(run_dir: str) -> ExperimentConfig:
    where = f'--snapshot_dir {run_dir!r}: variant.json'
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
        return isinstance(value, list) and all(_has_flag_type(item, type_name[5:-1])
                                               for item in value)
    if isinstance(value, bool):
        return type_name == 'bool'
    return isinstance(value, {'int': int, 'float': (int, float), 'str': str}.get(type_name, ()))


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


def _check_snapshot(path: str) -> None:
    """Refuses an empty, truncated or garbled ``params.pkl``, or one that names code which no
    longer exists, without unpickling it for real (resume does that, once)."""
    import learning.garage_compat  # noqa: F401  pylint: disable=C0415,W0611  (before garage)
    where = f'--snapshot_dir {os.path.dirname(path)!r}: params.pkl'
    if os.path.getsize(path) == 0:
        raise ConfigError(f'{where} is empty (the run was interrupted before its first '
                          'snapshot?)')
    try:
        with open(path, 'rb') as file:
            _SnapshotReader(file).load()
            trailing = file.read(1)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f'{where} needs code that no longer exists ({error})') from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError,
            OverflowError, MemoryError, struct.error, OSError) as error:
        raise ConfigError(f'{where} is truncated or not a snapshot '
                          f'({type(error).__name__}: {error})') from None
    if trailing:
        raise ConfigError(f'{where} has data after its end: not a snapshot')
