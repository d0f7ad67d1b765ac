"""Divide-and-Conquer behaviour regularisation between task policies (Ghosh et al. 2018;
the release's DnC): ``dnc_sac --kl_coeff ...``.

Policy i's actor loss gets the penalty  Σ_{j≠i} β_ij · E_s[ KL(π_j(·|s) ‖ π_i(·|s)) ], the KL
between the pre-tanh diagonal Gaussians averaged (not summed) over action dimensions, with π_j
held fixed (only π_i is pulled). ``--regularize_representation`` replaces the KL with the MSE
between the policies' last hidden layers. Which states the expectation uses is
``--sampling_type``: ``all`` (B // N states from every task's buffer), ``i`` (task i's own
batch), ``j`` (task j's batch), ``i+j`` (half of each).

All pairs are computed at once: every policy is evaluated on every task row's states, giving
D[k, i, j], the divergence of π_i from π_j on row k's states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from learning.networks.separate import TaskTanhGaussianPolicies

SamplingType = Literal['all', 'i', 'j', 'i+j']


def coefficient_matrix(kl_coeff: Sequence[float], n_tasks: int) -> torch.Tensor:
    """β (N, N): one value for every pair, or N² values in the release's documented order
    ``1->1 2->1 ... N->1 1->2 ...``, i.e. entry i·N + j is β[i, j], the weight pulling policy i
    towards policy j. The diagonal is unused (a policy is not pulled towards itself)."""
    if len(kl_coeff) == 1:
        beta = torch.full((n_tasks, n_tasks), float(kl_coeff[0]))
    elif len(kl_coeff) == n_tasks**2:
        beta = torch.tensor(list(kl_coeff), dtype=torch.float32).view(n_tasks, n_tasks)
    else:
        raise ValueError(f'kl_coeff needs 1 or {n_tasks**2} values, got {len(kl_coeff)}')
    return beta.fill_diagonal_(0.0)


def gaussian_kl(
    mean_p: torch.Tensor, std_p: torch.Tensor, mean_q: torch.Tensor, std_q: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean_p, std_p²) ‖ N(mean_q, std_q²)) per dimension (closed form)."""
    return torch.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5


def pairwise_divergences(
    policies: TaskTanhGaussianPolicies, states: torch.Tensor, representation: bool
) -> torch.Tensor:
    """D (R, N, N): D[k, i, j] = mean over row k's states of KL(π_j ‖ π_i) (or the hidden-layer
    MSE), averaged over dimensions, with π_j detached. ``states`` is (R, M, S)."""
    rows, m, _ = states.shape
    flat = states.reshape(1, rows * m, -1).expand(policies.n_tasks, -1, -1)
    if representation:
        features = policies.trunk(flat).view(policies.n_tasks, rows, m, -1)  # (P, R, M, H)
        per_dim = (features[:, None] - features[None].detach()) ** 2
    else:
        mean, std = policies.gaussian(flat)
        mean = mean.view(policies.n_tasks, rows, m, -1)
        std = std.view(policies.n_tasks, rows, m, -1)
        per_dim = gaussian_kl(
            mean[None].detach(), std[None].detach(), mean[:, None], std[:, None]
        )  # (P_i, P_j, R, M, A): KL(pi_j || pi_i)
    return per_dim.mean(dim=(-1, -2)).permute(2, 0, 1)  # (R, P_i, P_j)


def dnc_divergences(
    policies: TaskTanhGaussianPolicies,
    states: torch.Tensor,
    has_data: torch.Tensor,
    sampling_type: SamplingType,
    representation: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, N) divergences of π_i from π_j on the states ``sampling_type`` picks, and (N, N)
    which pairs are defined (both tasks' buffers had data).

    Args:
        states: (N, B, S), row k sampled from task k's buffer (rows without data are ignored).
        has_data: (N,) bool, whose buffer had data.
    """
    n_tasks, batch_size, _ = states.shape
    defined = has_data[:, None] & has_data[None, :]
    if sampling_type == 'all':
        per_row = pairwise_divergences(
            policies, states[:, : max(batch_size // n_tasks, 1)], representation
        )
        weights = has_data.float()[:, None, None]
        divergence = (per_row * weights).sum(0) / weights.sum().clamp(min=1.0)
    elif sampling_type == 'i+j':
        per_row = pairwise_divergences(
            policies, states[:, : max(batch_size // 2, 1)], representation
        )
        own, other = per_row.diagonal(dim1=0, dim2=1).T, per_row.diagonal(dim1=0, dim2=2)
        divergence = (own + other) / 2  # own[i, j] = D[i, i, j]; other[i, j] = D[j, i, j]
    else:
        per_row = pairwise_divergences(policies, states, representation)
        divergence = (
            per_row.diagonal(dim1=0, dim2=1).T
            if sampling_type == 'i'
            else per_row.diagonal(dim1=0, dim2=2)
        )
    return divergence, defined


def dnc_penalty(
    divergence: torch.Tensor, defined: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """(N,) Σ_{j≠i} β_ij · D_ij over the defined pairs."""
    return (beta * torch.where(defined, divergence, torch.zeros_like(divergence))).sum(1)


class DnCPenalty:
    """The DnC penalty as a part of the separated learner (``DnCSAC(penalty=...)``).

    Args:
        beta: (N, N) coefficients (``coefficient_matrix``), not all zero.
        sampling_type: ``--sampling_type``.
        representation: ``--regularize_representation``.
    """

    stat_keys = ('PolicyKL', 'PolicyKLPenalty')

    def __init__(
        self, beta: torch.Tensor, sampling_type: SamplingType, representation: bool
    ) -> None:
        self.beta = beta
        self.sampling_type = sampling_type
        self.representation = representation

    def to(self, device: torch.device | str) -> None:
        """Moves β next to the policies (with the learner), so no step copies it."""
        self.beta = self.beta.to(device)

    @classmethod
    def from_flags(
        cls,
        kl_coeff: Sequence[float],
        n_tasks: int,
        sampling_type: SamplingType,
        representation: bool,
    ) -> DnCPenalty | None:
        """The penalty ``--kl_coeff`` asks for, or None when every coefficient is zero (plain
        separated SAC)."""
        beta = coefficient_matrix(kl_coeff, n_tasks)
        if not bool((beta != 0).any()):
            return None
        return cls(beta, sampling_type, representation)

    def __call__(
        self, policies: TaskTanhGaussianPolicies, states: torch.Tensor, has_data: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N,) penalties of the actor losses on (N, B, S) ``states`` (row k from task k's
        buffer), and their statistics: each policy's mean divergence from the others
        (``PolicyKL``) and its penalty (``PolicyKLPenalty``)."""
        divergence, defined = dnc_divergences(
            policies, states, has_data, self.sampling_type, self.representation
        )
        penalty = dnc_penalty(divergence, defined, self.beta)
        n_tasks = divergence.shape[0]
        off_diagonal = defined & ~torch.eye(n_tasks, dtype=torch.bool, device=defined.device)
        mean_divergence = (divergence * off_diagonal).sum(1) / off_diagonal.sum(1).clamp(min=1)
        return penalty, {'PolicyKL': mean_divergence, 'PolicyKLPenalty': penalty}
