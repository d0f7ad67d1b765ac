"""The action distribution every actor here returns, and its standard-deviation clamp."""

from __future__ import annotations

import torch
from garage.torch.distributions import TanhNormal as GarageTanhNormal

# garage's TanhGaussianMLPPolicy clamps the log standard deviation to [-20, 2].
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class TanhNormal(GarageTanhNormal):
    """garage's tanh-squashed Gaussian, declaring its (empty) argument constraints.

    garage's class predates ``torch.distributions.Distribution.arg_constraints``; without the
    declaration torch warns on every construction. Behaviour is garage's.
    """

    arg_constraints: dict = {}


def clamped_std(log_std: torch.Tensor) -> torch.Tensor:
    """σ = exp(clamp(log σ, -20, 2)), garage's clamp."""
    return log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()


def tanh_gaussian(mean: torch.Tensor, log_std: torch.Tensor) -> TanhNormal:
    """tanh of N(mean, σ²) with σ clamped as garage clamps it."""
    return TanhNormal(mean, clamped_std(log_std))
