"""The action distribution every actor here returns, and its standard-deviation clamp."""

from __future__ import annotations

from functools import cached_property

import torch
from garage.torch.distributions import TanhNormal as GarageTanhNormal
from torch.distributions import Distribution, Independent, Normal

# garage's TanhGaussianMLPPolicy clamps the log standard deviation to [-20, 2].
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class TanhNormal(GarageTanhNormal):
    """garage's tanh-squashed Gaussian, built lazily.

    garage's constructor builds ``Independent(Normal(loc, scale), 1)`` at once; with torch's
    argument validation that cost more than the networks of a small acting step (about 160 µs
    of a 640 µs routing-policy call on the toy env). Sampling and the mean need only ``loc``
    and ``scale``, so the ``Normal`` is built on first use, by the methods that need it
    (``log_prob``, ``entropy``, ``variance``, ...). The samples are garage's to the bit: the
    same standard-normal draw, ``tanh(loc + ε·scale)`` (``tests/test_distributions.py``).

    The empty ``arg_constraints`` declaration keeps torch from warning that garage's class
    predates ``Distribution.arg_constraints``.
    """

    arg_constraints: dict = {}

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor) -> None:
        Distribution.__init__(self, validate_args=False)
        if loc.shape != scale.shape:
            loc, scale = torch.broadcast_tensors(loc, scale)
        self._loc, self._scale = loc, scale

    @cached_property
    def _normal(self) -> Independent:
        # Without torch's argument validation: it checks the parameters and every sample with
        # an ``if`` on a tensor, which on a GPU waits for the device (four times a gradient
        # step). A diverged run is caught where the step statistics reach the host instead
        # (``SACLearner.flush_step_stats``).
        normal = Normal(self._loc, self._scale, validate_args=False)
        return Independent(normal, 1, validate_args=False)

    @classmethod
    def _from_distribution(cls, new_normal: Independent) -> TanhNormal:
        """garage's ``expand`` path: the new Normal's parameters become ``loc`` and ``scale``."""
        new = cls(new_normal.mean, new_normal.stddev)
        new._normal = new_normal
        return new

    def rsample_with_pre_tanh_value(
        self, sample_shape: torch.Size | tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, tanh(z)), z = loc + ε·scale with ε drawn as ``Normal.rsample`` draws it."""
        shape = torch.Size(sample_shape) + self._loc.shape
        noise = torch.empty(shape, dtype=self._loc.dtype, device=self._loc.device).normal_()
        pre_tanh = self._loc + noise * self._scale
        return pre_tanh, torch.tanh(pre_tanh)

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        """tanh(loc + ε·scale), gradients flowing to loc and scale."""
        return self.rsample_with_pre_tanh_value(sample_shape)[1]

    @property
    def mean(self) -> torch.Tensor:
        """tanh(loc): the deterministic action (not the distribution's true mean, as in
        garage)."""
        return torch.tanh(self._loc)


def clamped_std(log_std: torch.Tensor) -> torch.Tensor:
    """σ = exp(clamp(log σ, -20, 2)), garage's clamp."""
    return log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()


def tanh_gaussian(mean: torch.Tensor, log_std: torch.Tensor) -> TanhNormal:
    """tanh of N(mean, σ²) with σ clamped as garage clamps it."""
    return TanhNormal(mean, clamped_std(log_std))
