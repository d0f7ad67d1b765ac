"""Shared test set-up: the garage compat layer first, one torch thread, and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from learning import garage_compat  # noqa: F401  (must precede any garage import)

REPO_ROOT = Path(__file__).resolve().parents[1]

# Two torch threads on a busy 2-core machine make tiny matmuls orders of magnitude slower.
torch.set_num_threads(1)

# Small settings under which the toy env trains for real within seconds.
TINY_TOY_FLAGS = ['--batch_size', '200', '--min_buffer_size', '50', '--gradient_steps_per_itr',
                  '20', '--buffer_batch_size', '16', '--steps_per_epoch', '1',
                  '--num_evaluation_episodes', '4', '--hidden_sizes', '16', '16']


def run_cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python run.py ARGS`` from the repository root, as a user would."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, 'run.py', *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli
