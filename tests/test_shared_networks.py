"""Parameter-sharing networks: shapes, head independence, single tanh, and the Q-switch over
heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from environments.multitask import ObservationSplitter
from learning.architectures import make_critics, make_policies
from learning.networks.multihead import MultiheadTanhGaussianPolicy, MultiheadTwinCritics
from learning.policies import QSwitchMixturePolicy, TaskRoutingPolicy

N, S, A, B = 3, 5, 2, 4


@pytest.fixture
def nets():
    torch.manual_seed(0)
    return (
        MultiheadTanhGaussianPolicy(N, N, S, A, (16, 16)),
        MultiheadTwinCritics(N, N, S, A, (16, 16)),
    )


def test_multihead_shapes_and_row_selection(nets):
    policy, critics = nets
    states, task_ids = torch.randn(B, S), torch.tensor([2, 0, 1, 2])
    distribution = policy.for_rows(task_ids, states)
    assert distribution.mean.shape == (B, A)
    sampled, means = policy.propose(states)
    assert sampled.shape == means.shape == (N, B, A)
    rows = torch.arange(B)
    torch.testing.assert_close(means[task_ids, rows], distribution.mean)
    torch.testing.assert_close(
        policy.for_rows(task_ids, states[:, None]).mean[:, 0], distribution.mean
    )
    q1, q2 = critics.for_rows(task_ids, states, distribution.mean)
    assert q1.shape == q2.shape == (B,)
    torch.testing.assert_close(critics.score(task_ids, states, means, 'q1')[task_ids, rows], q1)
    torch.testing.assert_close(
        critics.score(task_ids, states, means, 'min')[task_ids, rows], torch.minimum(q1, q2)
    )


def test_heads_are_independent_outputs_of_one_trunk(nets):
    policy, critics = nets
    states = torch.randn(B, S)
    before = policy.propose(states)[1]
    with torch.no_grad():  # perturb only head 1's rows of the output layer
        policy.heads.weight.view(N, 2, A, -1)[1] += 1.0
        critics.q1[1].weight[1] += 1.0
    after = policy.propose(states)[1]
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]])
    assert not torch.allclose(after[1], before[1])
    actions = torch.rand(B, A)
    q_before = critics.q1[1].weight.clone()
    assert critics.for_rows(torch.zeros(B, dtype=torch.long), states, actions)[0].shape == (B,)
    assert torch.equal(q_before, critics.q1[1].weight)


def test_the_action_distribution_is_a_single_tanh(nets):
    policy, _ = nets
    states, task_ids = torch.randn(B, S), torch.tensor([0, 1, 2, 0])
    mean, _ = policy._all_heads(states)
    expected = torch.tanh(mean[torch.arange(B), task_ids])
    torch.testing.assert_close(policy.for_rows(task_ids, states).mean, expected)
    # The release's double tanh would confine the mode to about (-0.76, 0.76).
    with torch.no_grad():
        policy.heads.bias.view(N, 2, A)[:, 0] = 5.0
    assert policy.for_rows(task_ids, states).mean.min() > 0.99


def test_shared_architecture_uses_one_head_for_every_task():
    torch.manual_seed(1)
    policy = make_policies('shared', N, S, A, (8,))
    critics = make_critics('shared', N, S, A, (8,), layer_norm=False)
    states = torch.randn(B, S)
    same_task = policy.for_rows(torch.zeros(B, dtype=torch.long), states).mean
    other_tasks = policy.for_rows(torch.tensor([1, 2, 0, 1]), states).mean
    torch.testing.assert_close(same_task, other_tasks)
    actions = torch.rand(B, A)
    torch.testing.assert_close(
        critics.for_rows(torch.zeros(B, dtype=torch.long), states, actions)[0],
        critics.for_rows(torch.tensor([2, 1, 0, 2]), states, actions)[0],
    )
    with pytest.raises(ValueError, match='one head per task'):
        policy.propose(states)


def test_qswitch_over_heads_picks_the_hand_computed_argmax(nets):
    policy_net, critics = nets
    split = ObservationSplitter(N, 'zero', include_task_id=False)
    one_hots = torch.eye(N)[torch.tensor([0, 1, 2, 1])]
    observations = torch.cat([torch.randn(B, S - N), one_hots], dim=1).numpy()
    mixture = QSwitchMixturePolicy(None, policy_net, critics, split)
    torch.manual_seed(5)
    actions, info = mixture.get_actions(observations)
    states, task_ids = split(torch.as_tensor(observations))
    with torch.no_grad():
        torch.manual_seed(5)
        sampled, means = policy_net.propose(states)
        for row in range(B):
            # Independently: head task's Q1 of every head's mean action, one at a time.
            scores = [
                critics.for_rows(
                    task_ids[row : row + 1], states[row : row + 1], means[j, row : row + 1]
                )[0].item()
                for j in range(N)
            ]
            expected = int(np.argmax(scores))
            assert info['selected_policy'][row] == expected
            np.testing.assert_allclose(actions[row], sampled[expected, row].numpy(), atol=1e-6)


def test_routing_policy_acts_with_the_task_head(nets):
    policy_net, _ = nets
    split = ObservationSplitter(N, 'zero', include_task_id=False)
    observations = torch.cat([torch.randn(N, S - N), torch.eye(N)], dim=1).numpy()
    _, info = TaskRoutingPolicy(None, policy_net, split).get_actions(observations)
    states, task_ids = split(torch.as_tensor(observations))
    expected = policy_net.for_rows(task_ids, states).mean.detach().numpy()
    np.testing.assert_allclose(info['mean'], expected, atol=1e-6)


def test_each_task_rows_use_head_i_on_row_i(nets):
    """``for_rows(EACH_TASK, ...)`` on (N, K, S) is row i through head i: what MCAL's actor
    trains with, equal to giving every row its task id."""
    from learning.networks import EACH_TASK

    policy, critics = nets
    states, actions = torch.randn(N, 3, S), torch.rand(N, 3, A)
    each = policy.for_rows(EACH_TASK, states)
    assert each.mean.shape == (N, 3, A)
    for row in range(N):
        alone = policy.for_rows(torch.full((3,), row), states[row])
        torch.testing.assert_close(each.mean[row], alone.mean)
        torch.testing.assert_close(each.stddev[row], alone.stddev)
        q1_each = critics.for_rows(EACH_TASK, states, actions)[0][row]
        q1_alone = critics.for_rows(torch.full((3,), row), states[row], actions[row])[0]
        torch.testing.assert_close(q1_each, q1_alone)
