"""What the two sampling policies share: garage's ``Policy`` surface over torch networks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import akro
import numpy as np
import torch
from garage import EnvSpec
from garage.np.policies import Policy
from torch import nn

from environments.multitask import ObservationSplitter


class TorchSamplingPolicy(Policy):
    """A garage ``Policy`` that acts with torch modules and ships their weights to workers.

    ``get_param_values`` returns CPU state dicts of every module in ``networks``; garage's
    trainer broadcasts exactly that to the sampler workers before each collection.

    The subclasses act under ``torch.inference_mode``: their outputs leave as numpy arrays, so
    no autograd bookkeeping is needed, and it took about 10 % off a toy-env Q-switch call.

    ``replay_key`` names the agent info whose value picks an episode's replay buffer; None
    (every policy but the random partition's) routes by the env's ``task_id``.
    """

    replay_key: str | None = None

    def __init__(
        self,
        env_spec: EnvSpec,
        split_observation: ObservationSplitter,
        networks: Mapping[str, object],
        name: str,
    ) -> None:
        self._env_spec = env_spec
        self._split = split_observation
        self._modules: dict[str, nn.Module] = {}
        for key, network in networks.items():
            if not isinstance(network, nn.Module):
                raise TypeError(
                    f'{key} must be a torch module: its weights are sent to the sampler workers'
                )
            self._modules[key] = network
        self._name = name

    @property
    def rows_are_independent(self) -> bool:
        """Whether a row's action depends on that row's observation only (no per-row memory
        between calls), so that a lockstep loop may call the policy on a subset of its rows."""
        return False

    @property
    def env_spec(self) -> EnvSpec:
        return self._env_spec

    @property
    def name(self) -> str:
        return self._name

    @property
    def observation_space(self) -> akro.Space:
        return self._env_spec.observation_space

    @property
    def action_space(self) -> akro.Space:
        return self._env_spec.action_space

    def _device(self) -> torch.device:
        return next(next(iter(self._modules.values())).parameters()).device

    def _split_to_torch(self, observations: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        # Split on the host: numpy's slicing and argmax on a few rows cost less than torch's.
        states, task_ids = self._split(np.asarray(observations, dtype=np.float32))
        device = self._device()
        return torch.as_tensor(states, device=device), torch.as_tensor(task_ids, device=device)

    def get_action(self, observation: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Single-observation call: the batched path on a batch of one (never a second rule)."""
        actions, infos = self.get_actions(np.asarray(observation)[None])
        return actions[0], {key: value[0] for key, value in infos.items()}

    def get_param_values(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            key: {k: v.detach().cpu() for k, v in module.state_dict().items()}
            for key, module in self._modules.items()
        }

    def set_param_values(self, params: dict[str, dict[str, torch.Tensor]]) -> None:
        for key, module in self._modules.items():
            module.load_state_dict(params[key])
