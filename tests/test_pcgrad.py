"""PCGrad (Yu et al. 2020): conflicting gradients are projected; the combination rule."""

from __future__ import annotations

import pytest
import torch

from learning.pcgrad import pcgrad_backward, project_conflicting


def test_a_conflicting_pair_projects_to_the_known_result():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # g1.g2 = -1 < 0:  g1' = g1 - (-1/2) g2 = (0.5, 0.5);  g2' = g2 - (-1/1) g1 = (0, 1)
    projected = project_conflicting([g1, g2])
    torch.testing.assert_close(projected[0], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(projected[1], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(g1, torch.tensor([1.0, 0.0]))  # inputs untouched


def test_agreeing_gradients_are_left_alone():
    gradients = [torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.1])]
    for original, projected in zip(gradients, project_conflicting(gradients), strict=True):
        torch.testing.assert_close(projected, original)


@pytest.mark.parametrize('absent_third_task', [False, True])
def test_backward_averages_shared_parameters_and_sums_the_others(absent_third_task):
    shared = torch.nn.Parameter(torch.zeros(2))
    head_a = torch.nn.Parameter(torch.zeros(1))
    head_b = torch.nn.Parameter(torch.zeros(1))
    # Task a's gradient on `shared` is (1, 0), task b's is (-1, 1); heads are task-specific.
    losses = [
        shared @ torch.tensor([1.0, 0.0]) + 3.0 * head_a.sum(),
        shared @ torch.tensor([-1.0, 1.0]) + 5.0 * head_b.sum(),
    ]
    present = None
    if absent_third_task:  # a task with no samples: its loss is 0 · (the shared weights)
        losses.append(0.0 * shared.sum())
        present = torch.tensor([True, True, False])
    pcgrad_backward(losses, [shared, head_a, head_b], present=present)
    # Full gradients: a = (1, 0, 3, 0), b = (-1, 1, 0, 5); a.b = -1 < 0, |a|^2 = 10, |b|^2 = 27.
    a, b = torch.tensor([1.0, 0.0, 3.0, 0.0]), torch.tensor([-1.0, 1.0, 0.0, 5.0])
    a_projected, b_projected = a + b / 27, b + a / 10
    # The mean over the shared weights is over the present tasks (two, not three).
    torch.testing.assert_close(shared.grad, ((a_projected + b_projected) / 2)[:2])
    torch.testing.assert_close(head_a.grad, (a_projected + b_projected)[2:3])
    torch.testing.assert_close(head_b.grad, (a_projected + b_projected)[3:4])


def test_a_zero_gradient_conflicts_with_nothing():
    gradients = [torch.tensor([1.0, -2.0]), torch.zeros(2), torch.tensor([-1.0, 0.0])]
    projected = project_conflicting(gradients, torch.Generator().manual_seed(0))
    # 0 and 2 conflict (dot −1): g0' = g0 − (−1/1)·g2 = (0, −2); g2' = g2 − (−1/5)·g0.
    torch.testing.assert_close(projected[0], torch.tensor([0.0, -2.0]))
    torch.testing.assert_close(projected[1], torch.zeros(2))
    torch.testing.assert_close(projected[2], torch.tensor([-0.8, -0.4]))


def _one_pair_at_a_time(gradients, generator):
    """Algorithm 1 as written: each g_i visits the others in its random order."""
    projected = []
    for i, gradient in enumerate(gradients):
        g_i = gradient.clone()
        others = [j for j in range(len(gradients)) if j != i]
        for index in torch.randperm(len(others), generator=generator).tolist():
            g_j = gradients[others[index]]
            if torch.dot(g_i, g_j) < 0:
                g_i = g_i - torch.dot(g_i, g_j) / torch.dot(g_j, g_j) * g_j
        projected.append(g_i)
    return torch.stack(projected)


def test_the_batched_projection_is_algorithm_1_one_pair_at_a_time():
    gradients = list(torch.randn(6, 50, generator=torch.Generator().manual_seed(1)))
    batched = project_conflicting(gradients, torch.Generator().manual_seed(2))
    reference = _one_pair_at_a_time(gradients, torch.Generator().manual_seed(2))
    torch.testing.assert_close(batched, reference)
    assert not torch.allclose(batched, torch.stack(gradients))  # some pairs did conflict
