"""PCGrad (Yu et al. 2020): conflicting gradients are projected; the combination rule."""

from __future__ import annotations

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


def test_backward_averages_shared_parameters_and_sums_the_others():
    shared = torch.nn.Parameter(torch.zeros(2))
    head_a = torch.nn.Parameter(torch.zeros(1))
    head_b = torch.nn.Parameter(torch.zeros(1))
    # Task a's gradient on `shared` is (1, 0), task b's is (-1, 1); heads are task-specific.
    loss_a = shared @ torch.tensor([1.0, 0.0]) + 3.0 * head_a.sum()
    loss_b = shared @ torch.tensor([-1.0, 1.0]) + 5.0 * head_b.sum()
    pcgrad_backward([loss_a, loss_b], [shared, head_a, head_b])
    # Full gradients: a = (1, 0, 3, 0), b = (-1, 1, 0, 5); a.b = -1 < 0, |a|^2 = 10, |b|^2 = 27.
    a, b = torch.tensor([1.0, 0.0, 3.0, 0.0]), torch.tensor([-1.0, 1.0, 0.0, 5.0])
    a_projected, b_projected = a + b / 27, b + a / 10
    torch.testing.assert_close(shared.grad, ((a_projected + b_projected) / 2)[:2])
    torch.testing.assert_close(head_a.grad, (a_projected + b_projected)[2:3])
    torch.testing.assert_close(head_b.grad, (a_projected + b_projected)[3:4])
