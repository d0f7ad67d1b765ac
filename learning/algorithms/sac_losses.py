"""SAC's losses, per sample, for any arrangement of task networks.

The formulas are garage's torch SAC (Haarnoja et al. 2018: critic Eq. 5, actor Eq. 7,
temperature Eq. 18). Every function returns per-sample values and leaves the reduction to the
learner: the separated learner (``dnc_sac.py``) holds one row per task, ``(N, B)``, and averages
each row; the parameter-sharing learner (``mtsac.py``) holds one mixed batch, ``(B,)``, and
averages it, or averages per task for PCGrad. ``policy`` maps states to a TanhNormal over the
matching actions, ``critics`` maps (states, actions) to the twin Q-values (the learners pass
networks bound to their rows, ``learning/networks/contract.py``), and ``alpha`` broadcasts
against the per-sample shape (one temperature per row or per sample).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from learning.batches import TransitionBatch
from learning.networks.contract import CriticsOnRows
from learning.networks.distributions import TanhNormal

PolicyFn = Callable[[torch.Tensor], TanhNormal]
CriticFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def td_target(
    batch: TransitionBatch,
    policy: PolicyFn,
    target_critics: CriticFn,
    alpha: torch.Tensor,
    discount: float,
    reward_scale: float,
) -> torch.Tensor:
    """y = scale·r + (1 − d)·γ·(min_k Q̄_k(s', a') − α·log π(a'|s')),  a' ~ π(·|s')."""
    with torch.no_grad():
        next_distribution = policy(batch.next_states)
        pre_tanh, next_actions = next_distribution.rsample_with_pre_tanh_value()
        next_log_pi = next_distribution.log_prob(next_actions, pre_tanh_value=pre_tanh)
        target_q1, target_q2 = target_critics(batch.next_states, next_actions)
        soft_value = torch.minimum(target_q1, target_q2) - alpha * next_log_pi
        return reward_scale * batch.rewards + (1.0 - batch.terminals) * discount * soft_value


def critic_errors(
    batch: TransitionBatch, critics: CriticFn, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared TD errors (Q1(s, a) − y)², (Q2(s, a) − y)², and the predictions Q1, Q2."""
    q1, q2 = critics(batch.states, batch.actions)
    return (q1 - target) ** 2, (q2 - target) ** 2, q1, q2


def actor_objective(
    states: torch.Tensor, policy: PolicyFn, critics: CriticFn, alpha: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """α·log π(ã|s) − min_k Q_k(s, ã) per sample, ã ~ π(·|s) reparameterised.

    Returns the objective, log π(ã|s) (for the temperature loss) and the entropy of the
    pre-tanh Gaussian (for logging). When ``critics`` is a module (or bound critics) its
    weights are frozen for this forward pass: the actor step only needs ∂Q/∂ã, and skipping the
    critics' weight gradients (which no optimizer reads before they are cleared) saves a third
    of their backward pass without changing any update.
    """
    distribution = policy(states)
    pre_tanh, actions = distribution.rsample_with_pre_tanh_value()
    log_pi = distribution.log_prob(actions, pre_tanh_value=pre_tanh)
    with _frozen(critics):
        q1, q2 = critics(states, actions)
    return alpha * log_pi - torch.minimum(q1, q2), log_pi, distribution.entropy()


@contextmanager
def _frozen(module: object) -> Iterator[None]:
    """Turns off ``requires_grad`` of a module's (or bound critics') trainable parameters for
    the block; any other callable is left alone."""
    params = (
        [p for p in module.parameters() if p.requires_grad]
        if isinstance(module, torch.nn.Module | CriticsOnRows)
        else []
    )
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


def temperature_objective(
    log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """−log α·(log π + H̄) per sample: garage's form, used by the separated (DnC) family."""
    return -log_alpha * (log_pi.detach() + target_entropy)


def alpha_temperature_objective(
    log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """−α·(log π + H̄) per sample, α = exp(log α): the release's ``SAC`` class form, used by
    ``sac``, ``mtsac`` and ``qmp_sac``. Its gradient is α times garage's."""
    return -log_alpha.exp() * (log_pi.detach() + target_entropy)
