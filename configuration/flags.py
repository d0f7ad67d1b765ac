"""Every flag of ``run.py``: one dataclass, ``ExperimentConfig``, with the release's defaults.

Each field is a flag with its help line. A flag that only some methods take names its group
(``configuration/methods.py``, ``FLAG_GROUPS``); which methods take it follows from the method
table, so a new method row gets its flags without touching this file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from configuration.methods import FLAG_GROUPS, METHODS
from environments.registry import DEFAULT_ENV, ENVS, selected_task_count

ARCHITECTURES = ('separate', 'multihead', 'shared')
# Seeds stay below 2**31 so that every seed derived from them (per-task env seeds add up to
# n_tasks + 100) fits the 32-bit seeds of numpy's legacy generator and garage's set_seed.
MAX_SEED = 2**31 - 1
# Help prefix of the flags kept only so the release's commands still parse.
NO_EFFECT = '[release compatibility, no effect]'
RANDOM_PARTITION_METHODS = tuple(
    name for name, spec in METHODS.items() if spec.takes_random_partition
)


class ConfigError(ValueError):
    """A configuration a run cannot start with; ``run.py`` prints it on one line, exit 2."""


def _flag(
    default: Any,
    help_text: str,
    group: str | None = None,
    choices: tuple[Any, ...] | None = None,
    **extra: Any,
) -> Any:
    """A field of ``ExperimentConfig``: ``group`` (one of ``FLAG_GROUPS``) limits the flag to
    the methods whose row takes that group; None offers it to every method."""
    if group is not None and group not in FLAG_GROUPS:
        raise ValueError(f'unknown flag group {group!r}')
    metadata = {'help': help_text, 'group': group, 'choices': choices, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ExperimentConfig:
    """Every flag of ``run.py``. Units: "env steps" are summed over all tasks."""

    method: str = _flag('qmp_dnc', 'the method to run', choices=tuple(METHODS), positional=True)
    env: str = _flag(DEFAULT_ENV, 'environment id', choices=tuple(ENVS))
    seed: int = _flag(0, 'random seed (python, numpy, torch, env resets)')
    name: str = _flag(
        'None', 'run-name component; the log dir is <prefix><env>_<name>_<seed> (release naming)'
    )
    gpu: int | None = _flag(None, 'CUDA device index; CPU when absent or CUDA is unavailable')
    notes: str = _flag('', 'wandb notes')
    wandb: bool = _flag(
        False,
        'also log to Weights & Biases (off by default; set '
        'WANDB_MODE=offline to log without a network)',
    )
    wandb_project: str = _flag('p-task-mod', 'wandb project')
    wandb_entity: str | None = _flag(None, 'wandb entity (default: your wandb default)')
    gradient_steps_per_itr: int = _flag(
        1000,
        'gradient steps per sampling round, split across '
        'tasks in proportion to the data each collected',
    )
    min_buffer_size: int = _flag(
        10000,
        'transitions a task buffer needs before it trains; '
        'while any buffer holds fewer, a round collects '
        'min_buffer_size x n_tasks env steps',
    )
    replay_capacity: int = _flag(
        1_000_000,
        'transitions a replay buffer keeps (the oldest are '
        'overwritten): per task for the separated and MCAL methods, '
        'in all for the one buffer of the parameter-sharing methods',
    )
    target_update_tau: float = _flag(5e-3, 'Polyak coefficient of the target critics')
    target_entropy: float | None = _flag(None, 'SAC target entropy (default: -action dim)')
    discount: float = _flag(0.99, 'discount factor')
    buffer_batch_size: int = _flag(32, 'transitions per gradient step, per task')
    reward_scale: float = _flag(1.0, 'reward multiplier in the TD target')
    steps_per_epoch: int = _flag(
        1, 'sampling rounds (each followed by its gradient steps) per epoch'
    )
    hidden_sizes: list[int] = _flag(
        [256, 256], 'hidden layer widths of actors and critics', nargs='+'
    )
    layer_norm: bool = _flag(False, 'LayerNorm in the critics')
    policy_architecture: str = _flag(
        'separate',
        "actor architecture: 'separate' (one network "
        "per task; separated methods), 'multihead' (shared trunk, "
        "a head per task) or 'shared' (one network)",
        choices=ARCHITECTURES,
    )
    Q_architecture: str = _flag(
        'separate', 'critic architecture (as --policy_architecture)', choices=ARCHITECTURES
    )
    use_pc_grad: bool = _flag(False, 'combine per-task gradients with PCGrad', group='pcgrad')
    skip_alpha_pc_grad: bool = _flag(
        True, 'with PCGrad, leave the temperature loss out of it', group='pcgrad'
    )
    n_epochs: int = _flag(1000, 'epochs to train')
    batch_size: int = _flag(1000, 'env steps collected per sampling round, summed over tasks')
    lr: float = _flag(3e-4, 'Adam learning rate of actors, critics and temperatures')
    sampler_type: str = _flag(
        'vec',
        "sampler: 'vec' (all task envs stepped in lockstep, one "
        "batched policy call per step; same episodes as 'local'), "
        "'local' (garage's, one env at a time) or 'ray'",
        choices=('vec', 'local', 'ray'),
    )
    n_workers: int = _flag(
        1,
        '--sampler_type vec: processes stepping the training envs and the '
        'evaluation envs (each a lockstep share of them)',
    )
    envs_per_task: int = _flag(
        1,
        "--sampler_type vec: envs per task, so that a task's "
        'later episodes of a round run alongside its first',
    )
    num_evaluation_episodes: int = _flag(
        10, 'evaluation episodes per evaluation mode, summed over tasks (per task: this // n_tasks)'
    )
    evaluation_frequency: int = _flag(1, 'evaluate every this many epochs')
    snapshot_gap: int = _flag(
        1,
        "rewrite the run's one snapshot (params.pkl) after every "
        'this many epochs and after the last; a resume redoes the epochs '
        'after the snapshot (up to this many minus one)',
    )
    partition: str = _flag(
        'task_id',
        'which policy (and buffer) an episode belongs to: '
        "'task_id' (its task's) or 'random' (one drawn uniformly per "
        f'episode; {", ".join(RANDOM_PARTITION_METHODS)})',
        choices=('task_id', 'random'),
    )
    include_task_id: bool = _flag(False, 'keep the task one-hot in the network input')
    norm_obs: bool = _flag(
        False,
        'normalise observations with running per-env mean and '
        'variance (JacoReachMT5-v1 and Walker2dMT4-v0, as the release)',
    )
    sparse_tasks: list[int] = _flag(
        [], 'task ids with sparse rewards (where the env has them)', nargs='*'
    )
    task_name: str | None = _flag(
        None, 'comma-separated task indices to keep, e.g. "0,3,7" (where the env supports subsets)'
    )
    kl_coeff: list[float] = _flag(
        [0.0],
        'DnC KL coefficients: one value for all pairs or '
        'n_tasks^2 values in the order 1->1 2->1 ... N->1 1->2 ... '
        '(entry i*N+j pulls policy i towards policy j)',
        group='dnc',
        nargs='+',
    )
    sampling_type: str = _flag(
        'all',
        "states of the DnC KL term: 'all' (every task's buffer), "
        "'i' (the regularised policy's), 'j' (the other policy's), "
        "'i+j' (half of each)",
        group='dnc',
        choices=('all', 'i', 'j', 'i+j'),
    )
    regularize_representation: bool = _flag(
        False,
        "DnC: penalise the MSE between the policies' last hidden layers instead of the KL",
        group='dnc',
    )
    distillation_period: int | None = _flag(
        None,
        'DnC: every this many epochs, distil all task policies into one and copy it back',
        group='dnc',
    )
    distillation_n_epochs: int = _flag(100, 'DnC: gradient steps of each distillation', group='dnc')
    sharing_quantile: float = _flag(
        0.0,
        "UDS: share another task's transition when the "
        "task's critic rates it above this quantile of its own "
        'batch (0 shares everything)',
        group='uds',
    )
    unsupervised: bool = _flag(
        True, "UDS: relabel shared rewards with the env's minimum reward", group='uds'
    )
    policy_sampling_freq: int = _flag(
        1,
        'Q-switch: re-select the acting policy every this many steps of an episode',
        group='qswitch',
    )
    qmp_score_action: str = _flag(
        'mean',
        "Q-switch: score each proposal's 'mean' action (the "
        "release) or its 'sample' (the executed action)",
        group='qswitch',
        choices=('mean', 'sample'),
    )
    qmp_score_critic: str = _flag(
        'q1',
        "Q-switch: score with 'q1' (the release) or 'min' of both critics",
        group='qswitch',
        choices=('q1', 'min'),
    )
    qmp_selection: str = _flag(
        'qswitch',
        "'qswitch' (argmax of the score) or 'uniform' (the paper's QMP-Uniform ablation)",
        group='qswitch',
        choices=('qswitch', 'uniform'),
    )
    torch_threads: int = _flag(
        0,
        'CPU threads of the gradient steps; 0: every core this process may use '
        '(collection and evaluation always act on one thread, fastest for their '
        'per-step calls; infrastructure/torch_threads.py)',
    )
    log_root: str = _flag('data/local/experiment', 'directory that holds the run directories')
    dry_run: bool = _flag(False, 'print the resolved configuration and exit')
    console_table: bool = _flag(
        False,
        "print dowel's full table of every epoch on the console "
        'instead of one line (the table always goes to debug.log)',
    )
    vis_freq: int = _flag(
        -1,
        'record videos of deterministic episodes at epoch 0 and every '
        'this many epochs (a multiple of --evaluation_frequency) under '
        'RUN_DIR/videos; -1 (any value <= 0) records none (the release: 10)',
    )
    vis_num: int = _flag(
        10,
        'episodes per recording and evaluation mode, divided across the tasks (at least one each)',
    )
    vis_width: int = _flag(500, 'video frame width in pixels')
    vis_height: int = _flag(500, 'video frame height in pixels')
    vis_fps: int = _flag(40, 'video frames per second')
    vis_format: str = _flag('mp4', 'video file format', choices=('mp4', 'gif'))
    # ---- Release compatibility: accepted so the release's commands run, but they change
    # nothing (the task count comes from the env, and garage's default worker is the only one).
    n_policies: int = _flag(
        4,
        f'{NO_EFFECT} number of tasks = policies = buffers; must equal '
        "the env's (the env's task count is always used)",
    )
    worker_type: str = _flag(
        'default', f'{NO_EFFECT} garage worker (one env per worker)', choices=('default',)
    )

    @property
    def n_tasks(self) -> int:
        """Tasks in this run: the env's, or the ``--task_name`` subset."""
        return selected_task_count(self.env, self.task_name)


FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}


def flags_for(method: str) -> list[dataclasses.Field]:
    """The flags ``method`` accepts, in declaration order (the method itself excluded)."""
    groups = METHODS[method].flag_groups
    return [
        f
        for f in dataclasses.fields(ExperimentConfig)
        if not f.metadata.get('positional')
        and (f.metadata['group'] is None or f.metadata['group'] in groups)
    ]
