"""``infrastructure/evaluation.py``: deterministic (mean) actions, any-step success, the episode
count per task, and hand-computed returns on scripted envs."""

from __future__ import annotations

import numpy as np
import pytest
from garage import EnvStep, StepType

from conftest import FakeBoxEnv
from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from infrastructure.evaluation import evaluate

HORIZON = 4


class RewardIsActionEnv(FakeBoxEnv):
    """Task ``task_id``: observation [0, one-hot(2)]; reward = action[0]; ``success`` only at
    step 2 (1-based) for task 0; task 1 terminates after its second step."""

    def __init__(self, task_id):
        super().__init__(obs_dim=3, bound=1, max_episode_length=HORIZON)
        self.task_id = task_id
        self._t = 0
        self._obs = np.array([0.0, task_id == 0, task_id == 1], dtype=np.float32)

    def reset(self):
        self._t = 0
        return self._obs.copy(), {}

    def step(self, action):
        self._t += 1
        success = float(self.task_id == 0 and self._t == 2)
        if self.task_id == 1 and self._t == 2:
            step_type = StepType.TERMINAL
        elif self._t == HORIZON:
            step_type = StepType.TIMEOUT
        else:
            step_type = StepType.MID
        return EnvStep(
            self.spec,
            action,
            float(action[0]),
            self._obs.copy(),
            {'success': success, 'task_id': self.task_id},
            step_type,
        )


class MeanDiffersFromSample:
    """Samples -1 but reports a mean of 0.5 (task 0) or 0.25 (task 1)."""

    def __init__(self):
        self.resets = 0

    def reset(self, do_resets=None):
        self.resets += 1

    def get_actions(self, observations):
        means = np.where(observations[:, 1:2] > 0, 0.5, 0.25).astype(np.float32)
        return -np.ones_like(means), {'mean': means}


def test_mean_actions_any_step_success_and_hand_computed_returns():
    policy = MeanDiffersFromSample()
    stats, task_ids = evaluate(
        policy,
        [RewardIsActionEnv(0), RewardIsActionEnv(1)],
        episodes_per_task=3,
        max_episode_length=HORIZON,
        discount=0.5,
    )
    assert policy.resets == 3
    np.testing.assert_array_equal(task_ids, [0, 1] * 3)
    # Task 0 runs 4 steps at reward 0.5 (the mean, not the sampled -1); task 1 stops after 2.
    np.testing.assert_allclose(stats['return'], [2.0, 0.5] * 3)
    np.testing.assert_allclose(
        stats['discounted_return'], [0.5 * (1 + 0.5 + 0.25 + 0.125), 0.25 * 1.5] * 3
    )
    np.testing.assert_array_equal(stats['length'], [4, 2] * 3)
    # Task 0 succeeded at step 2 only, and counts as a success (any step), not its last step.
    np.testing.assert_array_equal(stats['success'], [1.0, 0.0] * 3)
    np.testing.assert_array_equal(stats['terminated'], [0.0, 1.0] * 3)
    assert 'stages_completed' not in stats


@pytest.mark.parametrize('num_evaluation_episodes, per_task', [(10, 2), (4, 1), (13, 3)])
def test_episodes_per_task_is_the_total_divided_by_the_task_count(
    num_evaluation_episodes, per_task
):
    config = resolve_config(
        'dnc_sac', {'hidden_sizes': [8], 'num_evaluation_episodes': num_evaluation_episodes}
    )
    algorithm = build_algorithm(config, make_env('PointReachMT-v0'))
    results = algorithm._evaluate()
    assert algorithm._evaluator.episodes_per_task == per_task
    summary, task_success, task_return = results['Evaluation/']
    assert summary['NumEpisodes'] == 4 * per_task
    assert task_success.shape == task_return.shape == (4,)
