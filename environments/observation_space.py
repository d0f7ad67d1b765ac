"""A garage wrapper base for the wrappers that change their env's observation space."""

from __future__ import annotations

import akro
import numpy as np
from garage import EnvSpec, Wrapper


class ObservationSpaceWrapper(Wrapper):
    """A garage ``Wrapper`` that changes its env's observation space (and so its spec)."""

    def _set_observation_space(self, low: np.ndarray, high: np.ndarray) -> None:
        self._observation_space = akro.Box(
            low=np.asarray(low, np.float32), high=np.asarray(high, np.float32), dtype=np.float32
        )
        self._spec = EnvSpec(
            observation_space=self._observation_space,
            action_space=self._env.action_space,
            max_episode_length=self._env.spec.max_episode_length,
        )

    @property
    def observation_space(self) -> akro.Box:
        return self._observation_space

    @property
    def spec(self) -> EnvSpec:
        return self._spec
