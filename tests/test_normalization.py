"""``--norm_obs``: garage's running observation normalisation, the one-hot left alone."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from garage import EnvStep, StepType
from garage.envs import normalize

from conftest import FakeBoxEnv
from environments.normalization import ObservationNormalizer
from environments.point_reach import PointReachMT
from environments.registry import make_env

N_TASKS = 2


class ScriptedEnv(FakeBoxEnv):
    """Returns the observations it was given, one per reset/step: [state (2), one-hot (2)]."""

    def __init__(self, states):
        super().__init__(obs_dim=4, bound=10, max_episode_length=100)
        self._observations = [np.concatenate([s, [0.0, 1.0]]).astype(np.float32) for s in states]
        self._index = 0

    def _next(self):
        observation = self._observations[self._index]
        self._index += 1
        return observation

    def reset(self):
        return self._next(), {}

    def step(self, action):
        return EnvStep(self.spec, action, 0.0, self._next(), {}, StepType.MID)


def test_hand_computed_values_with_a_large_alpha():
    env = ObservationNormalizer(ScriptedEnv([[2.0, 0.0], [4.0, 0.0]]), N_TASKS, obs_alpha=0.5)
    first, _ = env.reset()
    # mu = 0.5*0 + 0.5*2 = 1; var = 0.5*1 + 0.5*(2 - 1)^2 = 1; (2 - 1) / 1
    np.testing.assert_allclose(first, [1.0, 0.0, 0.0, 1.0], rtol=1e-6)
    second = env.step(np.zeros(1)).observation
    # mu = 0.5*1 + 0.5*4 = 2.5; var = 0.5*1 + 0.5*1.5^2 = 1.625; 1.5 / sqrt(1.625)
    np.testing.assert_allclose(second, [1.5 / math.sqrt(1.625), 0.0, 0.0, 1.0], rtol=1e-6)
    # the one-hot passes through unchanged
    assert second.dtype == np.float32 and second[2:].tolist() == [0.0, 1.0]


def test_state_dims_match_garage_normalize_with_its_default_alpha():
    rng = np.random.default_rng(0)
    states = rng.normal(3.0, 2.0, size=(60, 2))
    ours = ObservationNormalizer(ScriptedEnv(states), N_TASKS)
    garages = normalize(ScriptedEnv(states), normalize_obs=True)
    observations = [(ours.reset()[0], garages.reset()[0])]
    for _ in range(59):
        observations.append(
            (ours.step(np.zeros(1)).observation, garages.step(np.zeros(1)).observation)
        )
    for mine, reference in observations:
        np.testing.assert_allclose(mine[:2], reference[:2], rtol=1e-5, atol=1e-6)
        # garage normalises the one-hot too: its own entry drifts below 1
        assert mine[3] == 1.0 and reference[3] < 1.0


def test_statistics_survive_pickling_and_the_spec_is_unbounded():
    env = ObservationNormalizer(ScriptedEnv([[1.0, 2.0]] * 4), N_TASKS)
    env.reset()
    env.step(np.zeros(1))
    restored = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(restored.obs_mean, env.obs_mean)
    np.testing.assert_array_equal(restored.obs_var, env.obs_var)
    np.testing.assert_array_equal(
        restored.step(np.zeros(1)).observation, env.step(np.zeros(1)).observation
    )
    assert np.all(np.isinf(env.observation_space.low[:2]))
    assert env.observation_space.high[2:].tolist() == [10.0, 10.0]  # the one-hot's, kept


def test_the_family_wraps_every_train_and_test_env_with_its_own_statistics():
    family = PointReachMT()
    family.normalize_observations()
    train, test = family.get_train_envs(), family.get_test_envs()
    assert all(isinstance(env, ObservationNormalizer) for env in train + test)
    train[0].reset()
    assert not np.array_equal(train[0].obs_mean, test[0].obs_mean)  # separate instances
    observation, _ = train[1].reset()
    _, task_ids = family.split_observation(observation)
    assert int(task_ids) == 1
    assert train[1].task_id == 1  # the per-task env's attributes stay reachable
    with pytest.raises(RuntimeError):
        family.normalize_observations()


def test_registry_offers_norm_obs_where_the_release_did():
    with pytest.raises(ValueError, match='does not take'):
        make_env('PointReachMT-v0', norm_obs=True)
