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
import re
from dataclasses import dataclass, field
from typing import Any

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
    sampler_type: str = _flag('local', "garage sampler: 'local' (in-process) or 'ray'",
                              choices=('local', 'ray'))
    worker_type: str = _flag('default', 'garage worker (one env per worker)',
                             choices=('default',))
    num_evaluation_episodes: int = _flag(10, 'evaluation episodes per evaluation mode, summed '
                                         'over tasks (per task: this // n_tasks)')
    evaluation_frequency: int = _flag(1, 'evaluate every this many epochs')
    snapshot_gap: int = _flag(1, 'snapshot every this many epochs (1: keep the last only)')
    n_policies: int = _flag(4, 'number of tasks = policies = buffers; must equal the env\'s')
    partition: str = _flag('task_id', 'how observations map to policies', choices=('task_id',))
    include_task_id: bool = _flag(False, 'keep the task one-hot in the network input')
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
    for name in ('lr', 'target_update_tau'):
        if not getattr(config, name) > 0:
            raise ConfigError(f'--{name} must be positive, got {getattr(config, name)}')
    if not 0 <= config.discount <= 1:
        raise ConfigError(f'--discount must be in [0, 1], got {config.discount}')
    if not config.hidden_sizes or min(config.hidden_sizes) < 1:
        raise ConfigError(f'--hidden_sizes must be positive widths, got {config.hidden_sizes}')
    if config.n_policies != n_tasks:
        raise ConfigError(f'--n_policies {config.n_policies} does not match {config.env}, '
                          f'which has {n_tasks} tasks in this run')
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
    _validate_architectures(config, n_tasks)
    if config.sparse_tasks:
        if 'sparse_tasks' not in info.env_kwargs:
            raise ConfigError(f'{config.env} has no sparse-reward variant (--sparse_tasks)')
        bad = [t for t in config.sparse_tasks if not 0 <= t < n_tasks]
        if bad:
            raise ConfigError(f'--sparse_tasks {bad} are not tasks of {config.env} '
                              f'(0..{n_tasks - 1})')
    if config.method in SEPARATED_METHODS:
        _validate_dnc_options(config, n_tasks)


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
              'task_name': config.task_name}
    return {key: value for key, value in kwargs.items() if key in ENVS[config.env].env_kwargs}


def as_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Plain-data form, written to the run's ``variant.json`` and printed by ``--dry_run``."""
    return dataclasses.asdict(config)
