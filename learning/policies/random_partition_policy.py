"""``--partition random``: each episode is assigned to a policy drawn uniformly at random.

The release's ``EnvPartitionPolicy`` in "random" mode drew one policy index per episode, and
that index (not the episode's task) chose the acting policy and the replay buffer the episode
went to, so every policy learns from a random share of every task's episodes (the DnC paper's
random-context baseline). Here the drawn index is reported as ``partition_id``, which the
separated learners route by (``replay_key``); ``task_id`` still says whose reward the episode
carries, and ``selected_policy`` which policy acted (the same index).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from garage import EnvSpec

from environments.multitask import ObservationSplitter
from learning.networks.contract import TaskPolicies
from learning.policies.base import TorchSamplingPolicy


class RandomPartitionPolicy(TorchSamplingPolicy):
    """Acts on every row with the policy its episode was assigned at reset (uniform over N)."""

    replay_key = 'partition_id'

    def __init__(
        self, env_spec: EnvSpec, policies: TaskPolicies, split_observation: ObservationSplitter
    ) -> None:
        super().__init__(env_spec, split_observation, {'policies': policies}, 'RandomPartition')
        self._policies = policies
        self._assigned: np.ndarray | None = None  # per row: this episode's policy

    def reset(self, do_resets: np.ndarray | None = None) -> None:
        """New episodes get a new draw (all rows when ``do_resets`` is None)."""
        if do_resets is None or self._assigned is None:
            self._assigned = None
            return
        restarting = np.asarray(do_resets, dtype=bool)
        self._assigned[restarting] = np.random.randint(
            self._policies.n_tasks, size=int(restarting.sum())
        )

    @torch.inference_mode()
    def get_actions(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """a_b ~ π_{k_b}(·|s_b) with k_b the row's episode assignment; ``mean`` = tanh(μ)."""
        states, task_ids = self._split_to_torch(observations)
        if self._assigned is None or len(self._assigned) != len(states):
            self._assigned = np.random.randint(self._policies.n_tasks, size=len(states))
        assigned = torch.as_tensor(self._assigned, device=states.device)
        distribution = self._policies.for_rows(assigned, states)
        return distribution.rsample().cpu().numpy(), {
            'mean': distribution.mean.cpu().numpy(),
            'task_id': task_ids.cpu().numpy(),
            'selected_policy': self._assigned.copy(),
            'partition_id': self._assigned.copy(),
        }
