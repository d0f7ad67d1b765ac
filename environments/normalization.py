"""``--norm_obs``: running observation normalisation of each per-task env (Jaco and Walker).

The release wrapped every Jaco and Walker train and test env in garage's
``normalize(env, normalize_obs=True)``. That wrapper keeps, per env instance, exponential moving
estimates of each observation dimension's mean and variance,

    μ ← (1 − α)·μ + α·o,    σ² ← (1 − α)·σ² + α·(o − μ)²     (μ₀ = 0, σ²₀ = 1, α = 0.001),

updated with every observation it returns (the reset's and every step's), and returns
``(o − μ) / (σ + 1e-8)`` computed with the just-updated estimates. This wrapper does the same,
with one difference (docs/deviations.md): the trailing task one-hot is passed through
unchanged. Normalised, the one-hot's own entry decays (0.47 after 1,000 steps of one env,
0.005 after 10,000, then about 5e-6 once the mean estimate reaches its float64 fixed point just
below 1), so with ``--include_task_id`` the networks would lose the task id, and the task id
read as the argmax would hinge on that rounding. The statistics are plain attributes,
so they travel with the env when it is pickled (snapshots) or copied (sampler workers).
"""

from __future__ import annotations

import numpy as np
from garage import Environment, EnvStep

from environments.observation_space import ObservationSpaceWrapper

OBS_ALPHA = 0.001  # garage's NormalizedEnv default
EPSILON = 1e-8


class ObservationNormalizer(ObservationSpaceWrapper):
    """Normalises every observation dimension but the trailing ``n_tasks`` (the one-hot).

    Args:
        env: a per-task env whose observations end with the task one-hot.
        n_tasks: width of that one-hot.
        obs_alpha: update rate of the moving estimates.
    """

    def __init__(self, env: Environment, n_tasks: int, obs_alpha: float = OBS_ALPHA) -> None:
        super().__init__(env)
        self.n_tasks = n_tasks
        self.obs_alpha = obs_alpha
        state_dim = env.observation_space.flat_dim - n_tasks
        self.obs_mean = np.zeros(state_dim)
        self.obs_var = np.ones(state_dim)
        inner = env.observation_space
        # Normalised states are unbounded; the one-hot keeps its bounds.
        self._set_observation_space(
            np.concatenate([np.full(state_dim, -np.inf), inner.low[state_dim:]]),
            np.concatenate([np.full(state_dim, np.inf), inner.high[state_dim:]]),
        )

    def normalize(self, observation: np.ndarray) -> np.ndarray:
        """Updates the estimates with ``observation`` and returns it normalised (float32)."""
        state_dim = len(self.obs_mean)
        state = np.asarray(observation, dtype=np.float64)[:state_dim]
        self.obs_mean = (1 - self.obs_alpha) * self.obs_mean + self.obs_alpha * state
        self.obs_var = (1 - self.obs_alpha) * self.obs_var + self.obs_alpha * np.square(
            state - self.obs_mean
        )
        normalized = (state - self.obs_mean) / (np.sqrt(self.obs_var) + EPSILON)
        return np.concatenate([normalized, observation[state_dim:]]).astype(np.float32)

    def reset(self) -> tuple[np.ndarray, dict]:
        observation, episode_info = self._env.reset()
        return self.normalize(observation), episode_info

    def step(self, action: np.ndarray) -> EnvStep:
        env_step = self._env.step(action)
        return EnvStep(
            env_spec=self._spec,
            action=env_step.action,
            reward=env_step.reward,
            observation=self.normalize(env_step.observation),
            env_info=env_step.env_info,
            step_type=env_step.step_type,
        )
