"""A ``garage.Environment`` over a Gymnasium environment.

garage's own ``GymEnv`` needs gym<=0.21 (4-tuple ``step``, observation-only ``reset``), so
Gymnasium environments reach garage through this adapter instead. It also fixes what garage
cannot digest from modern environments:

* the 5-tuple ``step``: ``terminated`` becomes ``StepType.TERMINAL``; reaching
  ``max_episode_length`` (or Gymnasium's own truncation) becomes ``StepType.TIMEOUT``, so that
  only real terminations are stored as terminal and time-outs are bootstrapped;
* ``reset`` info is dropped (garage stacks episode infos, and scalars break that);
* only numeric scalar/array ``info`` entries are kept (garage stacks env infos per step);
* observations are copied and cast to float32 (some environments reuse one array);
* pickling goes through the factory, not the simulator state, so snapshots and sampler
  workers stay small. Factories must be importable (module-level functions or partials). The
  pickle keeps the env's random state: Gymnasium's ``np_random`` and whatever a wrapper layer
  returns from ``get_random_state()`` (restored with ``set_random_state``), so a resumed run's
  resets continue the same random streams. Episodes in progress are not kept; every episode
  starts with a reset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import akro
import gymnasium
import numpy as np
from garage import Environment, EnvSpec, EnvStep, StepType


def to_akro_box(space: gymnasium.spaces.Box, dtype: type = np.float32) -> akro.Box:
    """Converts a Gymnasium Box to the akro Box garage's buffers and policies expect."""
    return akro.Box(low=space.low.astype(dtype), high=space.high.astype(dtype), dtype=dtype)


def _box(space: gymnasium.spaces.Space, name: str) -> gymnasium.spaces.Box:
    """``space`` as a Box: garage's buffers and policies take only continuous boxes."""
    if not isinstance(space, gymnasium.spaces.Box):
        raise TypeError(f'the {name} space must be a gymnasium Box, got {type(space).__name__}')
    return space


def numeric_infos(info: dict[str, Any]) -> dict[str, Any]:
    """Keeps the entries garage can stack across steps: numbers and numeric arrays."""
    kept: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, (bool, int, float, np.number, np.bool_)):
            kept[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in 'biuf':
            kept[key] = value.copy()
    return kept


class _RandomStateLayer(Protocol):
    """A wrapper layer whose random state the pickle keeps (see the module docstring)."""

    def get_random_state(self) -> Any: ...

    def set_random_state(self, state: Any) -> None: ...


class GymnasiumEnv(Environment):
    """Adapts one Gymnasium env to garage's ``Environment`` API (see module docstring).

    Args:
        make_env: importable zero-argument factory of the Gymnasium env.
        max_episode_length: horizon; the step that reaches it is a TIMEOUT.
        seed: passed to the first ``reset`` so that the env's own RNG is reproducible.
    """

    def __init__(
        self,
        make_env: Callable[[], gymnasium.Env],
        max_episode_length: int,
        seed: int | None = None,
    ) -> None:
        self._make_env = make_env
        self._max_episode_length = max_episode_length
        self._seed = seed
        self._env = make_env()
        observation_space = _box(self._env.observation_space, 'observation')
        action_space = _box(self._env.action_space, 'action')
        self._spec = EnvSpec(
            observation_space=to_akro_box(observation_space),
            action_space=to_akro_box(action_space),
            max_episode_length=max_episode_length,
        )
        self._step_count = 0
        self._needs_reset = True

    @property
    def unwrapped_env(self) -> gymnasium.Env:
        """The wrapped Gymnasium environment."""
        return self._env

    @property
    def action_space(self) -> akro.Box:
        return self._spec.action_space

    @property
    def observation_space(self) -> akro.Box:
        return self._spec.observation_space

    @property
    def spec(self) -> EnvSpec:
        return self._spec

    @property
    def render_modes(self) -> list[str]:
        return list(self._env.metadata.get('render_modes', []))

    def reset(self) -> tuple[np.ndarray, dict]:
        observation, _ = self._env.reset(seed=self._seed)
        self._seed = None  # seed once; later resets continue the env's own RNG stream
        self._step_count = 0
        self._needs_reset = False
        return np.array(observation, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> EnvStep:
        if self._needs_reset:
            raise RuntimeError('reset() must be called before step()')
        observation, reward, terminated, truncated, info = self._env.step(action)
        self._step_count += 1
        step_type = self._step_type(bool(terminated), bool(truncated))
        self._needs_reset = step_type in (StepType.TERMINAL, StepType.TIMEOUT)
        return EnvStep(
            env_spec=self._spec,
            action=action,
            reward=float(reward),
            observation=np.array(observation, dtype=np.float32),
            env_info=numeric_infos(info),
            step_type=step_type,
        )

    def _step_type(self, terminated: bool, truncated: bool) -> StepType:
        """TERMINAL for a real termination (even on the horizon step), else TIMEOUT at the horizon.

        garage's ``StepType.get_step_type`` lets the horizon win over termination; a success
        that ends the episode on its last step must not be bootstrapped, so termination wins here.
        """
        if terminated:
            return StepType.TERMINAL
        if truncated or self._step_count >= self._max_episode_length:
            return StepType.TIMEOUT
        return StepType.FIRST if self._step_count == 1 else StepType.MID

    def render(self, mode: str) -> Any:
        return self._env.render()

    def visualize(self) -> None:
        raise NotImplementedError('interactive visualisation is not supported; use render()')

    def close(self) -> None:
        self._env.close()

    def __getstate__(self) -> dict:
        layers = _layers(self._env)
        return {
            'make_env': self._make_env,
            'max_episode_length': self._max_episode_length,
            'seed': self._seed,
            'np_random': self._env.unwrapped._np_random,  # pylint: disable=W0212
            'layer_states': [
                layer.get_random_state() if hasattr(layer, 'get_random_state') else None
                for layer in layers
            ],
        }

    def __setstate__(self, state: dict) -> None:
        GymnasiumEnv.__init__(self, state['make_env'], state['max_episode_length'], state['seed'])
        if state.get('np_random') is not None:
            self._env.unwrapped._np_random = state['np_random']  # pylint: disable=W0212
        # A state without 'layer_states' restores no layer, hence no strict zip.
        layer_states = state.get('layer_states', ())
        for layer, layer_state in zip(_layers(self._env), layer_states, strict=False):
            if layer_state is not None:  # saved only by layers with get_random_state
                cast(_RandomStateLayer, layer).set_random_state(layer_state)


def _layers(env: gymnasium.Env) -> list[gymnasium.Env]:
    """The wrapper chain of ``env``, outermost first, the unwrapped env last."""
    layers = [env]
    while isinstance(layers[-1], gymnasium.Wrapper):
        layers.append(layers[-1].env)
    return layers
