"""Shared test set-up: the garage compat layer first, one torch thread, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import akro
import numpy as np
import pytest
import torch
from garage import Environment, EnvSpec

REPO_ROOT = Path(__file__).resolve().parents[1]

# Two torch threads on a busy 2-core machine make tiny matmuls orders of magnitude slower.
torch.set_num_threads(1)

# Small settings under which the toy env trains for real within seconds.
TINY_TOY_FLAGS = (
    '--env=PointReachMT-v0 --batch_size 200 --min_buffer_size 50 --gradient_steps_per_itr 20 '
    '--buffer_batch_size 16 --steps_per_epoch 1 --num_evaluation_episodes 4 --hidden_sizes 16 16'
).split()


def run_cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python run.py ARGS`` from the repository root, as a user would."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run(
        [sys.executable, 'run.py', *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli


def render_offscreen(build_env: str) -> dict[str, Any]:
    """Renders one frame, after a reset, of the Gymnasium env that ``build_env`` (Python code
    assigning ``env``) builds, in a fresh interpreter with ``MUJOCO_GL=egl``: MuJoCo picks its
    GL backend at import, so this process cannot switch. Skips the calling test when this
    machine has no working EGL. Returns the frame's ``shape``, ``dtype`` and ``std``.
    """
    script = (
        f'import json\nimport environments\n{build_env}\nenv.reset(seed=0)\n'
        'image = env.render()\nenv.close()\n'
        'print(json.dumps({"shape": list(image.shape), "dtype": str(image.dtype), '
        '"std": float(image.std())}))\n'
    )
    python_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get('PYTHONPATH')) if p)
    result = subprocess.run(
        [sys.executable, '-c', script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, 'PYTHONPATH': python_path, 'MUJOCO_GL': 'egl'},
    )
    if result.returncode != 0 and ('EGL' in result.stderr or 'OpenGL' in result.stderr):
        pytest.skip(f'no off-screen EGL rendering on this machine: {result.stderr[-300:]}')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def steps_per_second(env: Any, seconds: float = 3.0) -> float:
    """Random-action env steps per second of a garage env (for the env test scripts)."""
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if env.step(env.action_space.sample()).last:
            env.reset()
        steps += 1
    return steps / (time.perf_counter() - start)


class FakeBoxEnv(Environment):
    """The garage ``Environment`` surface of a scripted test env with box spaces; subclasses
    define ``reset`` and ``step``."""

    def __init__(self, obs_dim: int, bound: float, max_episode_length: int) -> None:
        self._space = akro.Box(low=-bound, high=bound, shape=(obs_dim,), dtype=np.float32)
        self._actions = akro.Box(low=-1, high=1, shape=(1,), dtype=np.float32)
        self._max_episode_length = max_episode_length

    @property
    def action_space(self) -> akro.Box:
        return self._actions

    @property
    def observation_space(self) -> akro.Box:
        return self._space

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(self._space, self._actions, max_episode_length=self._max_episode_length)

    @property
    def render_modes(self) -> list[str]:
        return []

    def render(self, mode: str) -> None:
        return None

    def visualize(self) -> None:
        pass

    def close(self) -> None:
        pass
