"""The Q-switch mixture (paper Eq. 3): hand-computed choices with mock networks,
the same rule on real networks, the single == batched path, and every variant flag."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from environments.multitask import ObservationSplitter
from environments.registry import make_env
from learning.networks import TaskTanhGaussianPolicies, TaskTwinCritics
from learning.policies import QSwitchMixturePolicy

N_TASKS = 3
SPLIT = ObservationSplitter(N_TASKS, 'slice', include_task_id=False)
# Each task's critic prefers actions near its target (Q1) and, for task 0, small actions (Q2).
TARGETS = torch.tensor([1.9, 0.1, 0.6])


class MockPolicies(nn.Module):
    """Policy j proposes mean j and sample j + 0.5, whatever the state (A = 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.calls = 0

    def propose(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        means = torch.arange(N_TASKS, dtype=torch.float32)[:, None, None].expand(
            N_TASKS, states.shape[0], 1
        )
        return means + 0.5, means.clone()


class MockCritics(nn.Module):
    """Q1_i(s, a) = -(a - target_i)^2 ;  Q2_i(s, a) = -a."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.targets = TARGETS.clone()

    def score(self, task_ids, states, candidates, critic):
        q1 = -((candidates[..., 0] - self.targets[task_ids][None, :]) ** 2)
        return torch.minimum(q1, -candidates[..., 0]) if critic == 'min' else q1


def observation(task_id: int, state: float = 0.0) -> np.ndarray:
    one_hot = np.zeros(N_TASKS, np.float32)
    one_hot[task_id] = 1.0
    return np.concatenate([[state], one_hot]).astype(np.float32)


def mixture(**kwargs) -> QSwitchMixturePolicy:
    return QSwitchMixturePolicy(None, MockPolicies(), MockCritics(), SPLIT, **kwargs)


@pytest.mark.parametrize('task_id, expected', [(0, 2), (1, 0), (2, 1)])
def test_release_rule_picks_argmax_of_q1_on_means(task_id, expected):
    # Means are 0, 1, 2; Q1_task is closest to TARGETS[task_id] -> known argmax.
    action, info = mixture().get_action(observation(task_id))
    assert info['selected_policy'] == expected
    assert info['task_id'] == task_id
    # The executed action is the chosen policy's *sample* (mean + 0.5); ``mean`` its mean.
    assert action == pytest.approx([expected + 0.5])
    assert info['mean'] == pytest.approx([expected])


def test_scoring_sampled_actions_changes_the_choice():
    # Task 0, target 1.9: means [0, 1, 2] -> policy 2; samples [.5, 1.5, 2.5] -> policy 1.
    _, info = mixture(score_action='sample').get_action(observation(0))
    assert info['selected_policy'] == 1


def test_min_of_both_critics_changes_the_choice():
    # Task 0 on means: Q1 = [-3.61, -0.81, -0.01], Q2 = [0, -1, -2] -> min picks policy 1.
    _, info = mixture(score_critic='min').get_action(observation(0))
    assert info['selected_policy'] == 1


def test_ties_go_to_the_lowest_index():
    policy = mixture()
    policy._critics.score = lambda task_ids, states, candidates, critic: torch.zeros(
        candidates.shape[:2]
    )
    assert policy.get_action(observation(2))[1]['selected_policy'] == 0


def test_batched_rows_use_their_own_task_critic():
    observations = np.stack([observation(t) for t in (0, 1, 2, 0)])
    actions, info = mixture().get_actions(observations)
    np.testing.assert_array_equal(info['selected_policy'], [2, 0, 1, 2])
    np.testing.assert_array_equal(info['task_id'], [0, 1, 2, 0])
    np.testing.assert_allclose(actions[:, 0], [2.5, 0.5, 1.5, 2.5])


def test_uniform_selection_ignores_the_critic_and_covers_all_policies():
    torch.manual_seed(0)
    policy = mixture(selection='uniform')
    observations = np.stack([observation(0)] * 3000)
    counts = np.bincount(policy.get_actions(observations)[1]['selected_policy'], minlength=N_TASKS)
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04)


def test_sampling_freq_holds_the_selection_between_reselections():
    policy = mixture(sampling_freq=3)
    targets = policy._critics.targets
    chosen = []
    for step in range(7):
        # The preferred policy of task 0 moves every step: target 0, 1, 2, 0, 1, 2, 0.
        targets[0] = float(step % 3)
        chosen.append(int(policy.get_action(observation(0))[1]['selected_policy']))
    assert chosen == [0, 0, 0, 0, 0, 0, 0]
    policy.reset()
    targets[0] = 2.0
    assert policy.get_action(observation(0))[1]['selected_policy'] == 2  # fresh episode


def test_sampling_freq_reselects_every_k_steps():
    policy = mixture(sampling_freq=2)
    chosen = []
    for step in range(6):
        policy._critics.targets[0] = float(step % 3)
        chosen.append(int(policy.get_action(observation(0))[1]['selected_policy']))
    assert chosen == [0, 0, 2, 2, 1, 1]


def test_invalid_sampling_freq_is_refused():
    with pytest.raises(ValueError):
        mixture(sampling_freq=0)


@pytest.fixture
def real_networks():
    torch.manual_seed(3)
    env = make_env('PointReachMT-v0')
    policies = TaskTanhGaussianPolicies(env.n_tasks, env.network_input_dim, env.action_dim, (8, 8))
    critics = TaskTwinCritics(env.n_tasks, env.network_input_dim, env.action_dim, (8, 8))
    observations = np.stack([env.get_train_envs()[t].reset()[0] for t in (0, 1, 2, 3, 2)])
    return env, policies, critics, observations


def test_real_networks_follow_the_rule(real_networks):
    env, policies, critics, observations = real_networks
    policy = QSwitchMixturePolicy(env.spec, policies, critics, env.split_observation)
    torch.manual_seed(11)
    actions, info = policy.get_actions(observations)
    states, task_ids = env.split_observation(torch.as_tensor(observations))
    with torch.no_grad():
        torch.manual_seed(11)
        sampled, means = policies.propose(states)
        for row in range(len(observations)):
            # Independent evaluation: Q1 of the row's task on every policy's mean action.
            task = int(task_ids[row])
            scores = [
                critics(
                    states[row].expand(env.n_tasks, 1, -1), means[j, row].expand(env.n_tasks, 1, -1)
                )[0][task, 0].item()
                for j in range(env.n_tasks)
            ]
            expected = int(np.argmax(scores))
            assert info['selected_policy'][row] == expected
            np.testing.assert_allclose(actions[row], sampled[expected, row].numpy(), atol=1e-6)
            np.testing.assert_allclose(info['mean'][row], means[expected, row].numpy(), atol=1e-6)


def test_single_step_call_is_the_batched_call(real_networks):
    env, policies, critics, observations = real_networks
    policy = QSwitchMixturePolicy(env.spec, policies, critics, env.split_observation)
    for row in range(len(observations)):
        torch.manual_seed(row)
        single_action, single_info = policy.get_action(observations[row])
        torch.manual_seed(row)
        batch_action, batch_info = policy.get_actions(observations[row : row + 1])
        np.testing.assert_array_equal(single_action, batch_action[0])
        assert single_info['selected_policy'] == batch_info['selected_policy'][0]


def test_param_values_carry_policies_and_critics(real_networks):
    env, policies, critics, observations = real_networks
    source = QSwitchMixturePolicy(env.spec, policies, critics, env.split_observation)
    torch.manual_seed(99)
    other_policies = TaskTanhGaussianPolicies(
        env.n_tasks, env.network_input_dim, env.action_dim, (8, 8)
    )
    other_critics = TaskTwinCritics(env.n_tasks, env.network_input_dim, env.action_dim, (8, 8))
    target = QSwitchMixturePolicy(env.spec, other_policies, other_critics, env.split_observation)
    target.set_param_values(source.get_param_values())
    for a, b in zip(
        list(policies.parameters()) + list(critics.parameters()),
        list(other_policies.parameters()) + list(other_critics.parameters()),
        strict=True,
    ):
        assert torch.equal(a, b)
    assert all(
        v.device.type == 'cpu' for part in source.get_param_values().values() for v in part.values()
    )
