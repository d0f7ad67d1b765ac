"""How many CPU threads torch uses in each phase of a run.

The two phases want opposite settings (``benchmarks/update_step.py`` times both):

* **gradient steps** are large matrix products (MT10: 10 tasks x 2,560 transitions through
  256x256 layers), which torch splits over threads: on 2 cores a batched MT10 step takes about
  half the time with 2 threads that it takes with 1;
* **acting** (collection and evaluation) is one small batched policy call per env step, where
  waking a second thread costs more than it saves, so it always runs on one thread.

``--torch_threads`` sets the first (0, the default: every core this process may run on); the
learner's epoch loop runs collection and evaluation inside ``acting_threads()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Threads of the acting phases: per-step policy calls are fastest single-threaded.
ACTING_THREADS = 1


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_threads(torch_threads: int) -> int:
    """``--torch_threads``' thread count: the value itself, or every available core for 0."""
    if torch_threads < 0:
        raise ValueError(f'torch_threads must be 0 (all cores) or positive, got {torch_threads}')
    return torch_threads or available_cores()


def set_training_threads(torch_threads: int) -> int:
    """Sets torch's thread count for the gradient steps; returns the count set."""
    threads = resolve_threads(torch_threads)
    torch.set_num_threads(threads)
    return threads


@contextmanager
def acting_threads() -> Iterator[None]:
    """Runs its body on ``ACTING_THREADS`` torch threads, then restores the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(ACTING_THREADS)  # about a microsecond: no need to skip it
    try:
        yield
    finally:
        torch.set_num_threads(previous)
