"""Online data sharing (UDS; Yu et al. 2022), the paper's data-sharing framework
(``uds_dnc``, ``qmp_uds_dnc``), as a part of the separated learner
(``DnCSAC(data_sharing=...)``).

At every gradient step, task i's minibatch (B own transitions) is extended with transitions
drawn from the other tasks' buffers (B // (N−1) from each non-empty one), relabelled with the
environment's minimum reward (the unsupervised relabelling: "other tasks' data is worth the
worst reward to me") or, with ``--unsupervised false``, with task i's own reward function
where the environment has one (supervised relabelling, CDS-style), and kept only where task
i's critic rates them at least as well as the ``sharing_quantile``-quantile of its own batch:

    threshold_i = sort([−∞] + Q1_i(own batch))[int(B · q)],   keep: Q1_i(s, a) > threshold_i

so q = 0 shares everything and q = 1 only what beats the best own transition. The combined
batch has a fixed shape, (N, B + (N−1)·m), with per-sample weights (1 for own transitions,
1 or 0 for shared ones); losses are weighted means, which equals training on the kept set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from learning.batches import TransitionBatch, as_batch, to_device
from learning.networks.contract import EACH_TASK, TaskCritics
from learning.replay import PerTaskReplayBuffer


def quantile_thresholds(own_q: torch.Tensor, sharing_quantile: float) -> torch.Tensor:
    """(N,) thresholds from (N, B) own-batch Q-values, as the release computes them."""
    n_tasks, batch_size = own_q.shape
    padded = torch.cat(
        [torch.full((n_tasks, 1), -torch.inf, device=own_q.device), own_q.sort(dim=1).values], dim=1
    )
    return padded[:, int(batch_size * sharing_quantile)]


def other_task_rows(n_tasks: int, device: torch.device | str = 'cpu') -> torch.Tensor:
    """(N, N−1) indices: row i lists every task but i, in task order (column c holds c below
    the diagonal and c + 1 from it on). Built on ``device`` itself, with no host copy."""
    columns = torch.arange(n_tasks - 1, device=device)
    rows = torch.arange(n_tasks, device=device)[:, None]
    return columns + (columns >= rows).long()


@dataclass(frozen=True)
class DataSharing:
    """The UDS rule with its settings.

    Attributes:
        sharing_quantile: q in [0, 1] (``--sharing_quantile``).
        min_reward: the reward unsupervised sharing relabels every shared transition with.
        reward_fns: per-task ``reward_fn(raw observations, actions)`` for supervised sharing
            (``--unsupervised false``); None for unsupervised sharing.
    """

    sharing_quantile: float
    min_reward: float
    reward_fns: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] | None = None

    stat_keys = ('SharedDataShare',)

    @property
    def supervised(self) -> bool:
        return self.reward_fns is not None

    def relabel(
        self,
        raw_observations: np.ndarray,
        actions: np.ndarray,
        device: torch.device | str = 'cpu',
    ) -> torch.Tensor:
        """(N, N, m) rewards of pool row j's transitions for task i (supervised sharing), on
        ``device``. The reward functions run on the host, on the stored raw observations."""
        if self.reward_fns is None:
            raise ValueError('relabel needs reward functions (supervised data sharing)')
        rewards = [reward_fn(raw_observations, actions) for reward_fn in self.reward_fns]
        return to_device(np.stack(rewards).astype(np.float32, copy=False), device)

    def combine(
        self,
        own: TransitionBatch,
        pool: TransitionBatch,
        pool_valid: torch.Tensor,
        own_q: torch.Tensor,
        pool_q: torch.Tensor,
        pool_rewards: torch.Tensor | None = None,
    ) -> tuple[TransitionBatch, torch.Tensor, torch.Tensor]:
        """Task i's own batch plus the other tasks' transitions it keeps.

        Args:
            own: (N, B) batch, row i from task i's buffer.
            pool: (N, m) transitions, row j from task j's buffer (the shared candidates).
            pool_valid: (N,) bool, whether task j's buffer had data.
            own_q: (N, B) Q1_i on row i's own batch.
            pool_q: (N, N−1, m) Q1_i on the candidates of every other task j (``other_task_rows``).
            pool_rewards: (N, N, m) task i's reward for pool row j's transitions, on the
                critics' device (supervised sharing); None relabels with ``min_reward``.

        Returns:
            The combined (N, B + (N−1)·m) batch with relabelled shared rewards, its (N, ·)
            weights, and (N,) the share of offered transitions each task kept.
        """
        n_tasks, m = pool.rewards.shape
        others = other_task_rows(n_tasks, own.rewards.device)  # (N, N-1)
        offered = pool_valid[others][:, :, None].expand(-1, -1, m)  # (N, N-1, m)
        kept = offered & (pool_q > quantile_thresholds(own_q, self.sharing_quantile)[:, None, None])

        def gather(own_values: torch.Tensor, pool_values: torch.Tensor) -> torch.Tensor:
            shared = pool_values[others].flatten(1, 2)  # (N, (N-1)·m, ...)
            return torch.cat([own_values, shared], dim=1)

        if pool_rewards is None:
            shared_rewards = torch.full_like(pool_q, self.min_reward).flatten(1)
        else:
            shared_rewards = pool_rewards.gather(1, others[:, :, None].expand(-1, -1, m)).flatten(1)
        combined = TransitionBatch(
            states=gather(own.states, pool.states),
            actions=gather(own.actions, pool.actions),
            rewards=torch.cat([own.rewards, shared_rewards], dim=1),
            next_states=gather(own.next_states, pool.next_states),
            terminals=gather(own.terminals, pool.terminals),
        )
        weights = torch.cat([torch.ones_like(own.rewards), kept.flatten(1).float()], dim=1)
        offered_count = offered.flatten(1).sum(1).float()
        share = kept.flatten(1).sum(1).float() / offered_count.clamp(min=1.0)
        return combined, weights, torch.where(offered_count > 0, share, torch.nan)

    def extend(
        self,
        own: TransitionBatch,
        replay_buffer: PerTaskReplayBuffer,
        has_data: np.ndarray,
        critics: TaskCritics,
        buffer_batch_size: int,
    ) -> tuple[TransitionBatch, torch.Tensor, dict[str, torch.Tensor]]:
        """Each task's batch plus the other tasks' transitions it keeps (see ``combine``).

        Draws ``buffer_batch_size // (N−1)`` candidates from every non-empty buffer and scores
        them with every task's Q1. Returns the combined batch, its weights, and the share each
        task kept (``SharedDataShare``).
        """
        n = replay_buffer.n_tasks
        m = max(buffer_batch_size // max(n - 1, 1), 1)
        arrays = replay_buffer.sample(m, has_data)  # row j: candidates from task j
        device = own.states.device
        pool = as_batch(arrays, device)
        pool_rewards = (
            self.relabel(arrays['raw_observations'], arrays['actions'], device)
            if self.supervised
            else None
        )
        with torch.no_grad():
            own_q = critics.for_rows(EACH_TASK, own.states, own.actions)[0]
            # Every critic i on every candidate row j, then row i keeps its others (N, N-1, m).
            states = pool.states.reshape(1, n * m, -1).expand(n, -1, -1)
            actions = pool.actions.reshape(1, n * m, -1).expand(n, -1, -1)
            all_q = critics.for_rows(EACH_TASK, states, actions)[0].view(n, n, m)
            others = other_task_rows(n, all_q.device)
            pool_q = all_q.gather(1, others[:, :, None].expand(-1, -1, m))
        combined, weights, share = self.combine(
            own, pool, to_device(has_data, device), own_q, pool_q, pool_rewards
        )
        return combined, weights, {'SharedDataShare': share}
