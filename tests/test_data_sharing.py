"""UDS: the quantile threshold, which transitions are kept, relabelling, and
per-task statistics that are not aliased across tasks."""

from __future__ import annotations

import math

import numpy as np
import torch

from learning.algorithms.sac_losses import TransitionBatch
from learning.data_sharing import DataSharing, other_task_rows, quantile_thresholds


def batch(rewards: torch.Tensor) -> TransitionBatch:
    n, m = rewards.shape
    index = torch.arange(n * m, dtype=torch.float32).view(n, m, 1)
    return TransitionBatch(
        states=index,
        actions=index,
        rewards=rewards,
        next_states=index + 1000,
        terminals=torch.zeros(n, m),
    )


def test_threshold_is_the_release_quantile_with_minus_infinity_prepended():
    own_q = torch.tensor([[3.0, 1.0, 2.0, 4.0]])
    # sorted with -inf first: [-inf, 1, 2, 3, 4]; index int(4 q)
    assert quantile_thresholds(own_q, 0.0).item() == -math.inf
    assert quantile_thresholds(own_q, 0.5).item() == 2.0
    assert quantile_thresholds(own_q, 0.75).item() == 3.0
    assert quantile_thresholds(own_q, 1.0).item() == 4.0


def test_other_task_rows():
    assert other_task_rows(3).tolist() == [[1, 2], [0, 2], [0, 1]]
    for n_tasks in (1, 2, 5, 10):
        rows = other_task_rows(n_tasks)
        assert rows.dtype == torch.long and rows.shape == (n_tasks, n_tasks - 1)
        assert rows.tolist() == [[j for j in range(n_tasks) if j != i] for i in range(n_tasks)]


def test_kept_transitions_rewards_and_shares_on_a_hand_built_batch():
    own = batch(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    pool = batch(torch.tensor([[10.0, 11.0], [20.0, 21.0], [30.0, 31.0]]))
    own_q = torch.tensor([[0.0, 1.0], [5.0, 6.0], [0.0, 0.0]])
    # pool_q[i, k, :] = Q1_i on the candidates of the k-th other task of row i.
    pool_q = torch.tensor(
        [
            [[0.5, 2.0], [0.9, 1.5]],  # task 0 (threshold 0): rows 1, 2
            [[9.0, 5.0], [4.0, 7.0]],  # task 1 (threshold 5): rows 0, 2
            [[1.0, 1.0], [1.0, 1.0]],
        ]
    )  # task 2: task 1's buffer is empty
    sharing = DataSharing(sharing_quantile=0.5, min_reward=-7.0)
    combined, weights, share = sharing.combine(
        own, pool, torch.tensor([True, False, True]), own_q, pool_q
    )
    assert combined.rewards.shape == (3, 6)
    # Task 0 keeps Q > 0 of task 1's (offered? no: task 1 is empty) and task 2's candidates.
    assert weights.tolist() == [[1, 1, 0, 0, 1, 1], [1, 1, 1, 0, 0, 1], [1, 1, 1, 1, 0, 0]]
    # Shared rewards are relabelled; own rewards are untouched; states come from the source.
    assert combined.rewards[0].tolist() == [1.0, 1.0, -7.0, -7.0, -7.0, -7.0]
    assert combined.states[1, 2:, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert combined.next_states[2, 2, 0].item() == 1000.0
    # Shares per task, over the offered (non-empty) candidates only: not aliased.
    torch.testing.assert_close(share, torch.tensor([1.0, 0.5, 1.0]))  # task 1: 2 of 4


def test_quantile_zero_shares_everything_offered():
    own = batch(torch.zeros(2, 3))
    pool = batch(torch.ones(2, 3))
    sharing = DataSharing(sharing_quantile=0.0, min_reward=0.0)
    _, weights, share = sharing.combine(
        own, pool, torch.tensor([True, True]), torch.randn(2, 3), torch.randn(2, 1, 3)
    )
    assert weights.sum().item() == 12 and share.tolist() == [1.0, 1.0]


def test_supervised_sharing_relabels_with_the_receiving_task_reward():
    # Task i's reward of a transition: i * 100 + its action's first entry.
    reward_fns = tuple((lambda obs, act, i=i: i * 100.0 + act[..., 0]) for i in range(3))
    sharing = DataSharing(sharing_quantile=0.0, min_reward=-7.0, reward_fns=reward_fns)
    own = batch(torch.zeros(3, 1))
    pool = batch(torch.zeros(3, 2))  # pool row j's actions are 2j, 2j + 1
    pool_rewards = sharing.relabel(np.zeros((3, 2, 4)), pool.actions.numpy())
    assert pool_rewards.shape == (3, 3, 2)
    combined, _, _ = sharing.combine(
        own, pool, torch.ones(3, dtype=bool), torch.zeros(3, 1), torch.zeros(3, 2, 2), pool_rewards
    )
    # Task 1 receives rows 0 and 2: actions 0, 1 and 4, 5, rewarded 100 + action.
    assert combined.rewards[1, 1:].tolist() == [100.0, 101.0, 104.0, 105.0]
    assert combined.rewards[0, 1:].tolist() == [2.0, 3.0, 4.0, 5.0]
