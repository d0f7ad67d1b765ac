"""Experiment configuration: the per-env presets, and how presets and flags combine.

The flags themselves are ``configuration/flags.py`` (one dataclass, ``ExperimentConfig``), the
methods ``configuration/methods.py`` and the checks ``configuration/validation.py``; this module
re-exports their public names. Per-environment presets (the release's ``run.py`` overrides)
live in ``ENV_PRESETS`` and are validated at import, so a preset key that is not a flag (the
release's ``num_epochs`` typo, docs/deviations.md) fails at once. Precedence: dataclass
defaults < env preset < method preset < flags the user typed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any

from configuration.flags import (
    FIELDS,
    MAX_SEED,
    NO_EFFECT,
    ConfigError,
    ExperimentConfig,
    flags_for,
)
from configuration.methods import METHODS, MethodSpec
from configuration.validation import (
    check_log_root,
    check_run_dir,
    network_memory_lower_bound,
    validate,
)
from environments.registry import DEFAULT_ENV, ENVS, selected_task_count

__all__ = [
    'ENV_PRESETS',
    'FIELDS',
    'MAX_SEED',
    'METHODS',
    'METHOD_PRESETS',
    'NO_EFFECT',
    'ConfigError',
    'ExperimentConfig',
    'MethodSpec',
    'as_dict',
    'check_log_root',
    'check_run_dir',
    'env_kwargs',
    'flags_for',
    'network_memory_lower_bound',
    'resolve_config',
    'resolve_device',
    'run_name',
    'validate',
]

# The point worlds' preset: small networks and 400-step rounds, so that 30 epochs (about 24k
# env steps) take a few minutes on 2 cores.
POINT_WORLD_PRESET: dict[str, Any] = dict(
    n_policies=4,
    batch_size=400,
    gradient_steps_per_itr=400,
    min_buffer_size=200,
    buffer_batch_size=64,
    steps_per_epoch=2,
    n_epochs=30,
    num_evaluation_episodes=20,
    hidden_sizes=[64, 64],
    lr=1e-3,
)

# Per-environment overrides of the release's run.py. Keys must be flags (checked below).
ENV_PRESETS: dict[str, dict[str, Any]] = {
    # reward_scale 10: the dense tasks become competent in the first epochs (the module
    # docstring of environments/point_shared_path.py says why that matters).
    'PointSharedPathMT-v0': {**POINT_WORLD_PRESET, 'reward_scale': 10.0},
    'PointSparseGoalMT-v0': {**POINT_WORLD_PRESET, 'reward_scale': 10.0},
    'PointWallMT-v0': dict(POINT_WORLD_PRESET),
    'PointReachMT-v0': dict(POINT_WORLD_PRESET),
    'JacoReachMT5-v1': dict(n_policies=5, n_epochs=2000, num_evaluation_episodes=50),
    'MazeLarge-10-v0': dict(
        n_policies=10,
        batch_size=6000,
        gradient_steps_per_itr=1000,
        min_buffer_size=3000,
        buffer_batch_size=256,
        steps_per_epoch=1,
        n_epochs=2000,
        num_evaluation_episodes=100,
    ),
    'Walker2dMT4-v0': dict(
        n_policies=4,
        batch_size=4000,
        gradient_steps_per_itr=6000,
        n_epochs=2000,
        num_evaluation_episodes=40,
    ),
    # The release also set ``num_epochs=500`` here, a typo with no effect (n_epochs stays 1000).
    'KitchenMTEasy-v0': dict(
        n_policies=10,
        batch_size=2000,
        gradient_steps_per_itr=500,
        min_buffer_size=2000,
        buffer_batch_size=1280,
        steps_per_epoch=5,
        num_evaluation_episodes=50,
    ),
    'MetaWorldCDS-v1': dict(
        n_policies=4,
        batch_size=2000,
        gradient_steps_per_itr=200,
        min_buffer_size=5000,
        buffer_batch_size=256,
        steps_per_epoch=10,
        lr=0.0015,
        n_epochs=500,
        num_evaluation_episodes=40,
    ),
    'MetaWorldMT10-v2': dict(
        n_policies=10,
        batch_size=5000,
        gradient_steps_per_itr=500,
        min_buffer_size=5000,
        buffer_batch_size=2560,
        steps_per_epoch=10,
        lr=0.0015,
        num_evaluation_episodes=100,
    ),
    'MetaWorldMT50-v2': dict(
        n_policies=50,
        batch_size=25000,
        gradient_steps_per_itr=2500,
        min_buffer_size=1500,
        buffer_batch_size=1280,
        steps_per_epoch=8,
        n_epochs=1000,
        num_evaluation_episodes=250,
        hidden_sizes=[400, 400],
    ),
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


# Per-method overrides, applied after the env preset (``MethodSpec.preset``: the architectures
# of the method's learner family).
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    name: spec.preset for name, spec in METHODS.items() if spec.preset
}

_check_presets()


def resolve_config(method: str, typed: dict[str, Any]) -> ExperimentConfig:
    """defaults < env preset < method preset < typed flags; then ``validate``."""
    env_id = typed.get('env', DEFAULT_ENV)
    if env_id not in ENVS:
        raise ConfigError(f'unknown env {env_id!r}; available: {", ".join(ENVS)}')
    values = {
        **ENV_PRESETS.get(env_id, {}),
        **METHOD_PRESETS.get(method, {}),
        **typed,
        'method': method,
    }
    if 'n_policies' not in typed and typed.get('task_name') is not None:
        # A task subset changes the task count; follow it unless the user set n_policies.
        with contextlib.suppress(ValueError):  # validate() reports a malformed --task_name
            values['n_policies'] = selected_task_count(env_id, typed['task_name'])
    config = ExperimentConfig(**values)
    validate(config)
    return config


def run_name(config: ExperimentConfig) -> str:
    """The deterministic run name ``<method>_<env>_<name>_<seed>`` (the release's naming;
    it prefixed qmp_sac runs ``sac_qmp_`` and sac/mtsac runs both ``sac_``)."""
    name = re.sub(r'\s+', '-', config.name)
    return f'{config.method}_{config.env}_{name}_{config.seed}'


def env_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Constructor keyword arguments of the env family, from the flags it accepts."""
    kwargs = {
        'include_task_id': config.include_task_id,
        'sparse_tasks': config.sparse_tasks,
        'task_name': config.task_name,
        'norm_obs': config.norm_obs,
    }
    return {key: value for key, value in kwargs.items() if key in ENVS[config.env].env_kwargs}


def as_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Plain-data form, written to the run's ``variant.json`` and printed by ``--dry_run``."""
    return dataclasses.asdict(config)


def resolve_device(config: ExperimentConfig) -> tuple[ExperimentConfig, str | None]:
    """``config`` with the device the run will use, and a warning line if that is not the
    one asked for: without CUDA, ``--gpu`` falls back to the CPU and ``gpu`` becomes None, so
    ``variant.json`` records the device actually used."""
    if config.gpu is None:
        return config, None
    import torch  # pylint: disable=import-outside-toplevel  (only --gpu needs torch here)

    if not torch.cuda.is_available():
        return (
            dataclasses.replace(config, gpu=None),
            f'--gpu {config.gpu} ignored: CUDA is not available, training on the CPU',
        )
    if config.gpu >= torch.cuda.device_count():
        raise ConfigError(
            f'--gpu {config.gpu}: this machine has CUDA devices 0..{torch.cuda.device_count() - 1}'
        )
    return config, None
