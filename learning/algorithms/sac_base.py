"""The state every SAC learner here keeps, and what it does with it outside a gradient step.

``SACLearner`` holds the task actors and twin critics, the target critics (a frozen copy that
follows the critics by Polyak averaging), the log temperatures and the replay buffer; it moves
all of it, optimizer moments included, with ``to()``, and records the statistics a gradient
step returns. The learners (``dnc_sac.py``, ``mcal.py``, ``mtsac.py``) add their optimizers and
their gradient step.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from garage import Environment, EnvSpec
from garage.np.policies import Policy
from garage.sampler import Sampler
from torch import nn

from learning.algorithms.base import MultiTaskLearner
from learning.optim import TaskAdam, move_optimizer_state

# The losses every learner's step reports; NaN or ±inf in one means the networks diverged.
DIVERGENCE_KEYS = ('Qf1Loss', 'Qf2Loss', 'PolicyLoss')


class TrainingDivergedError(FloatingPointError):
    """A gradient step produced a non-finite loss: the networks' weights are no longer finite
    numbers, and every later step would only propagate them."""


def check_finite_losses(stats: Mapping[str, np.ndarray], trained: np.ndarray) -> None:
    """Raises ``TrainingDivergedError`` naming the losses and tasks that are not finite among
    the (N,) per-task ``stats`` of the tasks that ``trained``.

    This replaces torch's distribution argument checks, which stopped a diverged run at its
    first gradient step but read a value back from the device four times a step; here the
    check costs nothing, at the one copy of a round's statistics, a round later at most.
    """
    found = []
    for key in DIVERGENCE_KEYS:
        tasks = np.flatnonzero(trained & ~np.isfinite(stats.get(key, 0.0))).tolist()
        if tasks:
            found.append(f'{key} of tasks {tasks}')
    if found:
        raise TrainingDivergedError(
            f'training diverged: a gradient step gave a non-finite {"; ".join(found)} (try a '
            'smaller --lr or --reward_scale)'
        )


@dataclass(frozen=True)
class SACSettings:
    """The CLI flags of the same names that every SAC learner takes."""

    max_episode_length: int
    gradient_steps_per_itr: int
    min_buffer_size: int
    buffer_batch_size: int
    steps_per_epoch: int
    discount: float
    target_update_tau: float
    reward_scale: float
    lr: float
    target_entropy: float | None
    num_evaluation_episodes: int
    evaluation_frequency: int
    evaluation_workers: int = 1


class SACLearner(MultiTaskLearner):
    """SAC state and bookkeeping shared by the learners.

    Args:
        env_spec: spec of the raw per-task observations (its action width sets the default
            target entropy, −|A|).
        policies: the task actors.
        critics: the task twin critics.
        replay_buffer: the learner's replay buffer (``sizes()`` per task).
        sampler: garage sampler over the N training envs.
        policy: the task policies as one routing policy (evaluated under ``Evaluation/``).
        test_envs: one evaluation env per task.
        settings: the SAC flags.
        exploration_policy: the data-collection policy (the Q-switch mixture for QMP); None
            collects with ``policy``.
        n_tasks: N.
        n_temperatures: one log α per task (N) or one for all (1).
        evaluate_before_training: see ``MultiTaskLearner``.
    """

    def __init__(
        self,
        env_spec: EnvSpec,
        policies: nn.Module,
        critics: nn.Module,
        replay_buffer: Any,
        sampler: Sampler,
        policy: Policy,
        test_envs: list[Environment],
        settings: SACSettings,
        *,
        n_tasks: int,
        exploration_policy: Policy | None,
        n_temperatures: int,
        evaluate_before_training: bool,
    ) -> None:
        super().__init__(
            n_tasks,
            policy,
            exploration_policy,
            sampler,
            test_envs,
            max_episode_length=settings.max_episode_length,
            steps_per_epoch=settings.steps_per_epoch,
            discount=settings.discount,
            num_evaluation_episodes=settings.num_evaluation_episodes,
            evaluation_frequency=settings.evaluation_frequency,
            evaluate_before_training=evaluate_before_training,
            evaluation_workers=settings.evaluation_workers,
        )
        self.policies = policies
        self.critics = critics
        self.target_critics = copy.deepcopy(critics).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.zeros(n_temperatures))
        self.replay_buffer = replay_buffer
        self.gradient_steps_per_itr = settings.gradient_steps_per_itr
        self.min_buffer_size = settings.min_buffer_size
        self.buffer_batch_size = settings.buffer_batch_size
        self.tau = settings.target_update_tau
        self.reward_scale = settings.reward_scale
        self.target_entropy = (
            -float(env_spec.action_space.flat_dim)
            if settings.target_entropy is None
            else float(settings.target_entropy)
        )

    def replay_sizes(self) -> np.ndarray:
        return self.replay_buffer.sizes()

    def _device(self) -> torch.device:
        return self.log_alpha.device

    def _modules(self) -> list[nn.Module]:
        """Every module ``to()`` moves."""
        return [self.policies, self.critics, self.target_critics]

    def _optimizers(self) -> Sequence[TaskAdam | torch.optim.Optimizer]:
        """Every optimizer whose moments ``to()`` moves."""
        raise NotImplementedError

    # A round's gradient-step statistics not yet copied to the host: (keys, (K, N) float64
    # values, (N,) bool rows), on the networks' device (a class default, so that learners
    # unpickled from older snapshots have it too).
    _pending_stats: tuple[tuple[str, ...], torch.Tensor, torch.Tensor] | None = None

    def _keep_step_stats(self, stats: Mapping[str, torch.Tensor], rows: torch.Tensor) -> None:
        """Keeps one gradient step's (N,) statistics for the tasks where ``rows`` (bool (N,),
        on the statistics' device) is true, without leaving the device.

        ``flush_step_stats`` copies the round's last values to the host once: a copy per step
        would make a GPU wait for the host at every gradient step.
        """
        keys = tuple(stats)
        values = torch.stack([value.detach().double() for value in stats.values()])
        if self._pending_stats is not None and self._pending_stats[0] != keys:
            self.flush_step_stats()
        if self._pending_stats is None:
            self._pending_stats = (keys, torch.where(rows, values, torch.nan), rows.clone())
        else:
            _, kept, kept_rows = self._pending_stats
            self._pending_stats = (keys, torch.where(rows, values, kept), kept_rows | rows)

    def flush_step_stats(self) -> None:
        """Writes the kept statistics into ``last_stats`` / ``method_stats`` with one
        device-to-host copy: the same values as recording every step in turn, since a task's
        entry keeps its last step's value."""
        if self._pending_stats is None:
            return
        keys, kept, rows = self._pending_stats
        self._pending_stats = None
        host = torch.cat([kept.flatten(), rows.double()]).cpu().numpy()
        values = host[: kept.numel()].reshape(kept.shape)
        trained = host[kept.numel() :] > 0
        stats = dict(zip(keys, values, strict=True))
        check_finite_losses(stats, trained)
        self._record_stats(stats, trained)

    def _record_stats(self, stats: Mapping[str, np.ndarray], rows: np.ndarray) -> None:
        """Keeps ``stats[key][rows]`` (per-task (N,) values of a gradient step) for the epoch's
        log: SAC's keys in ``last_stats``, the method's own in ``method_stats``."""
        for key, values in stats.items():
            kept = self.last_stats if key in self.last_stats else self.method_stats
            kept[key][rows] = values[rows]

    @torch.no_grad()
    def _update_targets(self, tasks: np.ndarray | None = None) -> None:
        """Polyak averaging θ̄ ← θ̄ + τ(θ − θ̄) of the target critics: of every parameter
        (``tasks`` None or every task), or of the task slices where ``tasks`` (bool, (N,)) is
        true.

        One ``_foreach_lerp_`` over the tensors: lerp computes that formula in place, with at
        most one rounding less (a fused multiply-add) than spelling it as sub, mul and add,
        which allocated the differences: at the Jaco preset's critic shapes 0.3 ms against
        1.9 ms per update, about a tenth of a gradient step.
        """
        pairs = list(zip(self.target_critics.parameters(), self.critics.parameters(), strict=True))
        targets: list[torch.Tensor]
        onlines: list[torch.Tensor]
        if tasks is None or bool(np.all(tasks)):
            targets = [target for target, _ in pairs]
            onlines = [online for _, online in pairs]
        else:
            task_ids = np.flatnonzero(tasks).tolist()
            if not task_ids:
                return
            targets = [target[i] for target, _ in pairs for i in task_ids]
            onlines = [online[i] for _, online in pairs for i in task_ids]
        torch._foreach_lerp_(targets, onlines, self.tau)  # pylint: disable=protected-access

    def to(self, device: torch.device | str | None = None) -> SACLearner:
        """Moves every tensor to ``device``; learned state (α, Adam moments) is kept.

        garage's and the release's ``to()`` rebuilt log α, losing the learned temperatures
        after a restore (docs/deviations.md); this one only moves.
        """
        if device is None:
            from garage.torch import global_device  # pylint: disable=import-outside-toplevel

            device = global_device()
        for module in self._modules():
            module.to(device)
        self.log_alpha.data = self.log_alpha.data.to(device)
        for optimizer in self._optimizers():
            move_optimizer_state(optimizer, device)
        return self
