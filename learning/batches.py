"""The minibatch the learners train on, and the one conversion from replay arrays to it.

Both replay buffers (``learning/replay.py``) return numpy arrays keyed ``observations``,
``actions``, ``rewards``, ``next_observations``, ``terminals`` (and, for the shared buffer,
``task_ids``), the observations already split into network inputs. ``TransitionBatch`` lives
here, below the learners and their parts (``algorithms/``, ``data_sharing.py``), so every one
of them imports it downward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TransitionBatch:
    """A minibatch with leading shape (N, B) (one row per task) or (B,) (mixed tasks).

    ``terminals`` is 1.0 only for real terminations (``StepType.TERMINAL``), so time-outs are
    bootstrapped. ``task_ids`` says whose transition each sample is, for a mixed batch; a
    per-task batch leaves it None (row i is task i's).
    """

    states: torch.Tensor  # (..., S) network inputs
    actions: torch.Tensor  # (..., A)
    rewards: torch.Tensor  # (...)
    next_states: torch.Tensor  # (..., S)
    terminals: torch.Tensor  # (...)
    task_ids: torch.Tensor | None = None  # (...) for a mixed batch


def to_device(array: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``array`` as a tensor on ``device``, for the arrays the host hands every gradient step
    (minibatches, masks of the tasks that train).

    To a CUDA device the copy goes through pinned (page-locked) memory and does not block: a
    copy from ordinary memory makes the host wait until the GPU has run everything queued
    before it, once per tensor and step. The pinned staging copy is taken at once, so the
    caller may reuse ``array``; PyTorch keeps the pinned block until the transfer is done. On
    the CPU the tensor shares the array's memory, as ``torch.as_tensor`` does.
    """
    device = torch.device(device)
    if device.type != 'cuda':
        return torch.as_tensor(array, device=device)
    return torch.as_tensor(array).pin_memory().to(device, non_blocking=True)


def as_batch(arrays: Mapping[str, np.ndarray], device: torch.device) -> TransitionBatch:
    """The replay buffers' arrays as tensors on ``device`` (rewards and terminals lose their
    trailing axis of 1)."""
    tensors = {
        key: to_device(value, device)
        for key, value in arrays.items()
        if key
        in ('observations', 'actions', 'rewards', 'next_observations', 'terminals', 'task_ids')
    }
    return TransitionBatch(
        states=tensors['observations'],
        actions=tensors['actions'],
        rewards=tensors['rewards'][..., 0],
        next_states=tensors['next_observations'],
        terminals=tensors['terminals'][..., 0],
        task_ids=tensors.get('task_ids'),
    )
