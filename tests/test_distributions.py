"""The lazily built ``TanhNormal`` computes exactly what garage's eager one computes."""

import pytest
import torch
from garage.torch.distributions import TanhNormal as GarageTanhNormal

from learning.networks.distributions import TanhNormal, tanh_gaussian


class EagerTanhNormal(GarageTanhNormal):
    """garage's class as it is, with the constraint declaration that silences torch's warning."""

    arg_constraints: dict = {}


def _pair(loc_shape: tuple[int, ...], scale_shape: tuple[int, ...]):
    generator = torch.Generator().manual_seed(3)
    loc = torch.randn(loc_shape, generator=generator)
    scale = torch.rand(scale_shape, generator=generator) + 0.1
    return TanhNormal(loc, scale), EagerTanhNormal(loc, scale)


@pytest.mark.parametrize(
    ('loc_shape', 'scale_shape', 'sample_shape'),
    [((4, 2), (4, 2), ()), ((3, 5, 2), (3, 5, 2), (2,)), ((4, 2), (1, 2), ())],
)
def test_samples_are_garages_for_the_same_random_draws(loc_shape, scale_shape, sample_shape):
    ours, garages = _pair(loc_shape, scale_shape)
    torch.manual_seed(11)
    ours_pre, ours_action = ours.rsample_with_pre_tanh_value(sample_shape)
    ours_rsample = ours.rsample(sample_shape)
    ours_sample = ours.sample(sample_shape)
    torch.manual_seed(11)
    garage_pre, garage_action = garages.rsample_with_pre_tanh_value(sample_shape)
    garage_rsample = garages.rsample(sample_shape)
    garage_sample = garages.sample(sample_shape)
    assert ours_action.shape == torch.Size(sample_shape) + torch.Size(loc_shape)
    assert torch.equal(ours_pre, garage_pre)
    assert torch.equal(ours_action, garage_action)
    assert torch.equal(ours_rsample, garage_rsample)
    assert torch.equal(ours_sample, garage_sample)


def test_mean_log_prob_and_entropy_are_garages():
    ours, garages = _pair((6, 3), (6, 3))
    torch.manual_seed(5)
    pre_tanh, action = garages.rsample_with_pre_tanh_value()
    assert torch.equal(ours.mean, garages.mean)
    assert torch.equal(ours.mean, torch.tanh(ours._loc))
    assert torch.equal(ours.log_prob(action, pre_tanh), garages.log_prob(action, pre_tanh))
    assert torch.equal(ours.log_prob(action), garages.log_prob(action))
    assert torch.equal(ours.entropy(), garages.entropy())
    assert torch.equal(ours.variance, garages.variance)


def test_gradients_reach_loc_and_scale_as_in_garage():
    gradients = []
    for cls in (TanhNormal, EagerTanhNormal):
        loc = torch.tensor([[0.3, -0.2]], requires_grad=True)
        log_std = torch.tensor([[-0.5, 0.1]], requires_grad=True)
        torch.manual_seed(2)
        pre_tanh, action = cls(loc, log_std.exp()).rsample_with_pre_tanh_value()
        (action.sum() + cls(loc, log_std.exp()).log_prob(action, pre_tanh).sum()).backward()
        gradients.append((loc.grad.clone(), log_std.grad.clone()))
    assert torch.equal(gradients[0][0], gradients[1][0])
    assert torch.equal(gradients[0][1], gradients[1][1])


def test_tanh_gaussian_clamps_the_log_std_as_garage():
    distribution = tanh_gaussian(torch.zeros(1, 2), torch.tensor([[-30.0, 5.0]]))
    assert torch.allclose(distribution._scale, torch.tensor([[torch.e**-20, torch.e**2]]))


def test_expand_samples_from_the_expanded_parameters():
    # garage's own ``expand`` fails (it builds a placeholder with scale 0); ours works.
    ours, _ = _pair((1, 2), (1, 2))
    torch.manual_seed(4)
    expanded = ours.expand((3,)).rsample()
    torch.manual_seed(4)
    reference = torch.tanh(ours._normal.expand((3,)).rsample())
    assert expanded.shape == (3, 2)
    assert torch.equal(expanded, reference)
