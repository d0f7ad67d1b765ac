"""garage experiments: the one recipe that builds and trains any method.

QMP is orthogonal to the learner: a method (a row of ``configuration/methods.py``) is a
learner family plus, optionally, the Q-switch mixture as its data-collection policy, data
sharing or DECAF critics. ``LEARNER_BUILDERS`` maps each learner family to the function that
builds its learner from the parts a row names.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import infrastructure.garage_compat as garage_compat  # must precede any garage import

import torch
from dowel import logger
from garage import wrap_experiment
from garage.experiment.deterministic import set_seed
from garage.sampler import DefaultWorker, LocalSampler, Sampler
from garage.torch import set_gpu_mode

from configuration.methods import LearnerFamily, MethodSpec
from environments.multitask import MultiTaskEnv, describe
from environments.registry import make_env
from experiment_utils import (
    METHODS,
    ExperimentConfig,
    as_dict,
    check_log_root,
    env_kwargs,
    run_name,
)
from infrastructure.logging_utils import (
    ConsoleLine,
    ConsoleOutput,
    FlushingTextOutput,
    OrderedCsvOutput,
    PurgingTensorBoardOutput,
    close_outputs,
    truncate_progress,
)
from infrastructure.plotting import plot_learning_curve
from infrastructure.run_lifecycle import ExactTrainer, protect_stdout, run_guard
from infrastructure.samplers import RoundRobinRaySampler
from infrastructure.snapshots import remove_stray_temporaries
from infrastructure.torch_threads import set_training_threads
from infrastructure.vectorized_sampler import VectorizedSampler
from infrastructure.videos import TrainingVideos, VideoSettings
from learning.algorithms import DnCSAC, MultiCriticActorLearning, MultiTaskSAC
from learning.algorithms.base import MultiTaskLearner
from learning.algorithms.sac_base import SACSettings
from learning.architectures import make_critics, make_policies
from learning.data_sharing import DataSharing
from learning.distillation import Distillation, distillation_sample_size
from learning.dnc_regularization import DnCPenalty
from learning.networks import DecafTwinCritics
from learning.policies import QSwitchMixturePolicy, RandomPartitionPolicy, TaskRoutingPolicy
from learning.replay import PerTaskReplayBuffer, SharedReplayBuffer


def make_sampler(config: ExperimentConfig, agent: Any, env: MultiTaskEnv) -> Sampler:
    """The release's collection (one episode per task env, tasks in turn from task 0) by the
    sampler ``--sampler_type`` names: in lockstep (``vec``, see
    ``infrastructure/vectorized_sampler.py``) or one worker per task env (``local``, ``ray``)."""
    if config.sampler_type == 'vec':
        return VectorizedSampler(
            agent,
            env.get_train_envs(),
            max_episode_length=env.max_episode_length,
            envs_per_task=config.envs_per_task,
            n_workers=config.n_workers,
        )
    kwargs = dict(
        agents=agent,
        envs=env.get_train_envs(),
        max_episode_length=env.max_episode_length,
        n_workers=env.n_tasks,
        worker_class=DefaultWorker,
    )
    if config.sampler_type == 'ray':
        garage_compat.init_ray()
        return RoundRobinRaySampler(**kwargs)
    return LocalSampler(**kwargs)


def video_settings(config: ExperimentConfig) -> VideoSettings:
    """The ``--vis_*`` flags of ``config``."""
    return VideoSettings(
        freq=config.vis_freq,
        num=config.vis_num,
        width=config.vis_width,
        height=config.vis_height,
        fps=config.vis_fps,
        video_format=config.vis_format,
    )


def build_algorithm(config: ExperimentConfig, env: MultiTaskEnv) -> MultiTaskLearner:
    """Networks, buffer, the sampling policy, the sampler and the learner of ``config``."""
    method = METHODS[config.method]
    hidden_sizes = tuple(config.hidden_sizes)
    policies = make_policies(
        config.policy_architecture, env.n_tasks, env.network_input_dim, env.action_dim, hidden_sizes
    )
    if method.decaf_critics:
        critics = DecafTwinCritics(
            env.n_tasks, env.network_input_dim, env.action_dim, hidden_sizes, config.layer_norm
        )
    else:
        critics = make_critics(
            config.Q_architecture,
            env.n_tasks,
            env.network_input_dim,
            env.action_dim,
            hidden_sizes,
            config.layer_norm,
        )
    split = env.split_observation
    exploration_policy = None
    if method.uses_qswitch:
        exploration_policy = QSwitchMixturePolicy(
            env.spec,
            policies,
            critics,
            split,
            score_action=config.qmp_score_action,
            score_critic=config.qmp_score_critic,
            selection=config.qmp_selection,
            sampling_freq=config.policy_sampling_freq,
        )
    partition_policy = RandomPartitionPolicy if config.partition == 'random' else TaskRoutingPolicy
    task_policy = partition_policy(env.spec, policies, split)
    sampler = make_sampler(config, exploration_policy or task_policy, env)
    settings = SACSettings(
        max_episode_length=env.max_episode_length,
        gradient_steps_per_itr=config.gradient_steps_per_itr,
        min_buffer_size=config.min_buffer_size,
        buffer_batch_size=config.buffer_batch_size,
        steps_per_epoch=config.steps_per_epoch,
        discount=config.discount,
        target_update_tau=config.target_update_tau,
        reward_scale=config.reward_scale,
        lr=config.lr,
        target_entropy=config.target_entropy,
        num_evaluation_episodes=config.num_evaluation_episodes,
        evaluation_frequency=config.evaluation_frequency,
        evaluation_workers=config.n_workers,
    )
    return LEARNER_BUILDERS[method.learner](
        config,
        method,
        env,
        _LearnerParts(policies, critics, sampler, task_policy, exploration_policy, settings),
    )


@dataclass(frozen=True)
class _LearnerParts:
    """What every learner family is built from (``build_algorithm`` makes them)."""

    policies: Any
    critics: Any
    sampler: Sampler
    task_policy: Any
    exploration_policy: QSwitchMixturePolicy | None
    settings: SACSettings


def _per_task_buffer(config: ExperimentConfig, env: MultiTaskEnv) -> PerTaskReplayBuffer:
    return PerTaskReplayBuffer(
        env.n_tasks,
        config.replay_capacity,
        env.split_observation,
        keep_raw_observations=not config.unsupervised,
    )


def _build_shared(
    config: ExperimentConfig, method: MethodSpec, env: MultiTaskEnv, parts: _LearnerParts
) -> MultiTaskLearner:
    buffer = SharedReplayBuffer(env.n_tasks, config.replay_capacity, env.split_observation)
    return MultiTaskSAC(
        env.spec,
        parts.policies,
        parts.critics,
        buffer,
        parts.sampler,
        parts.task_policy,
        env.get_test_envs(),
        parts.settings,
        per_task_temperature=method.per_task_temperature,
        exploration_policy=parts.exploration_policy,
        use_pc_grad=config.use_pc_grad,
        skip_alpha_pc_grad=config.skip_alpha_pc_grad,
    )


def _build_mcal(
    config: ExperimentConfig, method: MethodSpec, env: MultiTaskEnv, parts: _LearnerParts
) -> MultiTaskLearner:
    return MultiCriticActorLearning(
        env.spec,
        parts.policies,
        parts.critics,
        _per_task_buffer(config, env),
        parts.sampler,
        parts.task_policy,
        env.get_test_envs(),
        parts.settings,
        exploration_policy=parts.exploration_policy,
    )


def _build_separated(
    config: ExperimentConfig, method: MethodSpec, env: MultiTaskEnv, parts: _LearnerParts
) -> MultiTaskLearner:
    data_sharing = None
    if method.shares_data:
        reward_fns = None if config.unsupervised else tuple(env.reward_fns())
        data_sharing = DataSharing(config.sharing_quantile, env.min_reward, reward_fns)
    distillation = None
    if config.distillation_period:
        distillation = Distillation(
            parts.policies,
            config.distillation_period,
            config.distillation_n_epochs,
            distillation_sample_size(config.sampling_type, config.buffer_batch_size, env.n_tasks),
            config.lr,
        )
    penalty = DnCPenalty.from_flags(
        config.kl_coeff, env.n_tasks, config.sampling_type, config.regularize_representation
    )
    return DnCSAC(
        env.spec,
        parts.policies,
        parts.critics,
        _per_task_buffer(config, env),
        parts.sampler,
        parts.task_policy,
        env.get_test_envs(),
        parts.settings,
        exploration_policy=parts.exploration_policy,
        data_sharing=data_sharing,
        penalty=penalty,
        distillation=distillation,
    )


# How each learner family of the method table (configuration/methods.py) is built.
LEARNER_BUILDERS: dict[
    LearnerFamily,
    Callable[[ExperimentConfig, MethodSpec, MultiTaskEnv, _LearnerParts], MultiTaskLearner],
] = {
    'separated': _build_separated,
    'shared': _build_shared,
    'mcal': _build_mcal,
}


def _device(config: ExperimentConfig) -> torch.device:
    if config.gpu is not None and torch.cuda.is_available():
        set_gpu_mode(True, gpu_id=config.gpu)
        return torch.device(f'cuda:{config.gpu}')
    set_gpu_mode(False)
    return torch.device('cpu')


def _install_outputs(
    snapshot_dir: str, console: ConsoleOutput, resuming: bool = False, purge_step: int | None = None
) -> None:
    """The run's dowel outputs (``infrastructure/logging_utils.py``): ``debug.log`` flushed per
    message, ``progress.csv`` with a fixed column order (continued on resume), TensorBoard
    events (x-axis ``TotalEnvSteps``) and the console. Replaces what ``wrap_experiment`` added."""
    close_outputs()
    logger.add_output(FlushingTextOutput(os.path.join(snapshot_dir, 'debug.log')))
    logger.add_output(OrderedCsvOutput(os.path.join(snapshot_dir, 'progress.csv'), append=resuming))
    logger.add_output(
        PurgingTensorBoardOutput(snapshot_dir, x_axis='TotalEnvSteps', purge_step=purge_step)
    )
    logger.add_output(console)


def _train(ctxt: Any, config: dict[str, Any]) -> str:
    """The body run inside garage's ``wrap_experiment`` (which set up the log dir)."""
    cfg = ExperimentConfig(**config)
    _install_outputs(ctxt.snapshot_dir, ConsoleOutput(cfg.n_epochs, table=cfg.console_table))
    trainer = ExactTrainer(ctxt.snapshot_dir, cfg.snapshot_gap)
    with run_guard(trainer, ctxt.snapshot_dir):
        set_training_threads(cfg.torch_threads)
        set_seed(cfg.seed)
        if cfg.wandb:
            from infrastructure.wandb_output import start_wandb  # pylint: disable=C0415

            logger.add_output(start_wandb(config, run_name(cfg), ctxt.snapshot_dir))
        env = make_env(cfg.env, seed=cfg.seed, **env_kwargs(cfg))
        logger.log(f'Environment: {describe(env)}')
        logger.log(
            ConsoleLine(
                f'{cfg.method} on {cfg.env} ({env.n_tasks} tasks), '
                f'{cfg.n_epochs} epochs; logs in {ctxt.snapshot_dir}'
            )
        )
        algo = build_algorithm(cfg, env).to(_device(cfg))
        if cfg.vis_freq > 0:
            algo.videos = TrainingVideos(
                video_settings(cfg), os.path.join(ctxt.snapshot_dir, 'videos')
            )
        trainer.setup(algo=algo, env=env.get_train_envs())
        try:
            trainer.train(n_epochs=cfg.n_epochs, batch_size=cfg.batch_size)
        except BaseException:
            # garage leaves sampler workers (Ray actors) running when training raises.
            algo.shutdown_sampler()
            raise
        finally:
            env.close()
        plot_path = plot_learning_curve(ctxt.snapshot_dir)
        logger.log(f'Learning curve: {plot_path}')
    return ctxt.snapshot_dir


def run_experiment(config: ExperimentConfig) -> str:
    """Trains ``config`` in ``<log_root>/<run name>`` (``_1``, ``_2``... if that exists, so a
    rerun never overwrites a finished run); returns the log directory. Ctrl-C exits with code
    130 and one line saying how to resume (``infrastructure/run_lifecycle.py``).

    Raises:
        ConfigError: before anything is created, when no directory can be made under
            ``config.log_root``.
    """
    check_log_root(config.log_root)
    protect_stdout()
    experiment = wrap_experiment(
        _train,
        log_dir=os.path.join(config.log_root, run_name(config)),
        name=run_name(config),
        snapshot_mode='last',
        snapshot_gap=1,
        archive_launch_repo=False,
        use_existing_dir=False,
    )
    return experiment(config=as_dict(config))


def resume_experiment(snapshot_dir: str, n_epochs: int | None = None) -> str:
    """Continues the run in ``snapshot_dir`` from its snapshot (the release's ``resume``).

    The run continues exactly after the snapshot's epoch: rows of later epochs (written before a
    kill) are dropped from ``progress.csv`` and hidden in TensorBoard, and the random generators
    continue from the snapshot (``infrastructure/run_lifecycle.py``). garage's restore unpickles the
    learner, buffers, sampler and envs; ``to()`` then keeps the learned temperatures (the
    release lost them, docs/deviations.md). ``n_epochs`` is the total to reach (default: the
    run's own ``--n_epochs``).
    """
    protect_stdout()
    with open(os.path.join(snapshot_dir, 'variant.json')) as file:
        cfg = ExperimentConfig(**json.load(file)['config'])
    target = n_epochs or cfg.n_epochs
    set_training_threads(cfg.torch_threads)
    if cfg.sampler_type == 'ray':
        garage_compat.init_ray()  # before the snapshot's RaySampler is unpickled
    name = os.path.basename(os.path.normpath(snapshot_dir))
    remove_stray_temporaries(snapshot_dir)
    logger.add_output(FlushingTextOutput(os.path.join(snapshot_dir, 'debug.log')))
    logger.push_prefix(f'[{name}] ')
    trainer = ExactTrainer(snapshot_dir, cfg.snapshot_gap)
    resume_flags = f' --n_epochs {n_epochs}' if n_epochs else ''
    try:
        with run_guard(trainer, snapshot_dir, resume_flags):
            trainer.restore(snapshot_dir)
            done, env_steps = trainer.epochs_done, trainer.total_env_steps
            if target <= done:
                trainer.algo.shutdown_sampler()
                print(
                    f'run.py: error: the run already has {done} epochs; pass --n_epochs '
                    'larger than that to continue it',
                    file=sys.stderr,
                )
                raise SystemExit(2)
            dropped = truncate_progress(os.path.join(snapshot_dir, 'progress.csv'), done)
            logger.log(f'Resuming after epoch {done}; dropped {dropped} later rows of progress.csv')
            _install_outputs(
                snapshot_dir,
                ConsoleOutput(target, cfg.console_table, done, env_steps),
                resuming=True,
                purge_step=env_steps + 1,
            )
            logger.log(ConsoleLine(f'Resuming after epoch {done}/{target}; logs in {snapshot_dir}'))
            algo = trainer.algo.to(_device(cfg))
            if getattr(algo, 'videos', None) is not None:  # the run directory may have moved
                algo.videos.video_dir = os.path.join(snapshot_dir, 'videos')
            try:
                trainer.resume(n_epochs=target)
            except BaseException:
                algo.shutdown_sampler()
                raise
            logger.log(f'Learning curve: {plot_learning_curve(snapshot_dir)}')
    finally:
        logger.remove_all()
        logger.pop_prefix()
    return snapshot_dir
