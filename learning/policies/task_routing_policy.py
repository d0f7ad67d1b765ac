"""Acts on each observation with the policy of its own task (no behaviour sharing).

This is ``algo.policy`` for the separated methods: the sampling policy of ``dnc_sac`` and the
policy evaluated under ``Evaluation/`` for every method (the release's ``MultiPolicyWrapper``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from garage import EnvSpec

from environments.multitask import ObservationSplitter
from learning.networks.contract import TaskPolicies
from learning.policies.base import TorchSamplingPolicy


class TaskRoutingPolicy(TorchSamplingPolicy):
    """π_task(s) for every row, with ``task_id`` read from the observation's one-hot."""

    def __init__(
        self, env_spec: EnvSpec, policies: TaskPolicies, split_observation: ObservationSplitter
    ) -> None:
        super().__init__(env_spec, split_observation, {'policies': policies}, 'TaskRouting')
        self._policies = policies

    @property
    def rows_are_independent(self) -> bool:
        """Stateless: each row is acted on alone."""
        return True

    def reset(self, do_resets: np.ndarray | None = None) -> None:
        """Stateless: nothing to reset."""

    @torch.inference_mode()
    def get_actions(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Samples a_b ~ π_{task_b}(·|s_b); ``mean`` = tanh(μ) is what evaluation executes."""
        states, task_ids = self._split_to_torch(observations)
        distribution = self._policies.for_rows(task_ids, states)
        actions = distribution.rsample()
        task_ids_np = task_ids.cpu().numpy()
        return actions.cpu().numpy(), {
            'mean': distribution.mean.cpu().numpy(),
            'task_id': task_ids_np,
            'selected_policy': task_ids_np.copy(),
        }
