"""QMP's data-collection policy: the Q-switch mixture of the task policies (paper §4, Eq. 3).

For an observation of task i, every task policy π_j proposes an action; task i's critic scores
the proposals; the proposal with the best score is executed:

    π_i^mix(a|s) = π_{j*}(a|s),   j* = argmax_j  Q_i(s, â_j),   â_j from π_j(·|s).

The paper's rule is an expectation over each π_j's actions plus an entropy term; in practice
(paper §4, camera-ready l.207) Q_i is evaluated on one action per policy and the entropy term is
dropped. The release scores each proposal's *mean* action with Q1_i alone and executes the
chosen policy's *sampled* action (docs/deviations.md); that is the default here, and the flags
pick the variants the paper and the release's batched path use:

* ``score_action``: ``'mean'`` (default) or ``'sample'`` (score the action that will be run);
* ``score_critic``: ``'q1'`` (default) or ``'min'`` (min(Q1_i, Q2_i));
* ``sampling_freq`` k: re-select every k steps of an episode and keep acting with the chosen
  policy in between (temporally extended sharing; ``--policy_sampling_freq``);
* ``selection='uniform'``: pick j uniformly at random (the paper's QMP-Uniform ablation).

Only data collection changes: transitions are stored under ``task_id`` (whose reward they carry),
and ``selected_policy`` (which π_j acted) is reported for the selection-frequency metrics. The
single-observation call is the batched call on a batch of one, so the two cannot disagree (the
release's two paths did, docs/deviations.md).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from garage import EnvSpec

from environments.multitask import ObservationSplitter
from learning.networks.contract import ScoreCritic, ScoringCritics, TaskPolicies
from learning.policies.base import TorchSamplingPolicy

ScoreAction = Literal['mean', 'sample']
Selection = Literal['qswitch', 'uniform']


class QSwitchMixturePolicy(TorchSamplingPolicy):
    """The Q-switch mixture over ``policies``, scored by ``critics`` (see module docstring).

    Args:
        env_spec: spec of the raw (state + one-hot) observations.
        policies: the N task policies (the candidates).
        critics: the N task critics (row b is scored by its own task's critic).
        split_observation: raw observation -> (network input, task id).
        score_action: which action of each candidate is scored.
        score_critic: which critic value scores it.
        selection: ``'qswitch'`` (argmax of the score) or ``'uniform'``.
        sampling_freq: re-select every this many steps of an episode.
    """

    def __init__(
        self,
        env_spec: EnvSpec,
        policies: TaskPolicies,
        critics: ScoringCritics,
        split_observation: ObservationSplitter,
        *,
        score_action: ScoreAction = 'mean',
        score_critic: ScoreCritic = 'q1',
        selection: Selection = 'qswitch',
        sampling_freq: int = 1,
    ) -> None:
        super().__init__(
            env_spec,
            split_observation,
            {'policies': policies, 'critics': critics},
            'QSwitchMixture',
        )
        if sampling_freq < 1:
            raise ValueError(f'sampling_freq must be >= 1, got {sampling_freq}')
        self._policies = policies
        self._critics = critics
        self.score_action = score_action
        self.score_critic = score_critic
        self.selection = selection
        self.sampling_freq = sampling_freq
        # Per-row selection memory, only used when sampling_freq > 1.
        self._held: np.ndarray | None = None
        self._steps_since_selection: np.ndarray | None = None

    @property
    def rows_are_independent(self) -> bool:
        """Only without held selections (``sampling_freq`` 1) is each row acted on alone."""
        return self.sampling_freq == 1

    def reset(self, do_resets: np.ndarray | None = None) -> None:
        """Forgets the held selection of the rows that start a new episode."""
        if do_resets is None or self._held is None or self._steps_since_selection is None:
            self._held = None
            self._steps_since_selection = None
        else:
            self._steps_since_selection[np.asarray(do_resets, dtype=bool)] = 0

    def _rows_to_reselect(self, batch_size: int) -> np.ndarray:
        if (
            self._held is None
            or self._steps_since_selection is None
            or len(self._held) != batch_size
        ):
            self._held = np.zeros(batch_size, dtype=np.int64)
            self._steps_since_selection = np.zeros(batch_size, dtype=np.int64)
        return self._steps_since_selection % self.sampling_freq == 0

    @torch.inference_mode()
    def select(
        self, task_ids: torch.Tensor, states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The Q-switch on network inputs: returns (selected policy (B,), sampled (P, B, A),
        means (P, B, A)). Pure: no per-episode memory (``get_actions`` adds that)."""
        sampled, means = self._policies.propose(states)
        if self.selection == 'uniform':
            selected = torch.randint(sampled.shape[0], (states.shape[0],), device=states.device)
        else:
            scored = means if self.score_action == 'mean' else sampled
            scores = self._critics.score(task_ids, states, scored, self.score_critic)  # (P, B)
            selected = scores.argmax(dim=0)  # ties go to the lowest index, as in the release
        return selected, sampled, means

    @torch.inference_mode()
    def get_actions(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Executes the selected policy's sampled action for every row.

        Agent infos: ``mean`` (the selected policy's tanh(μ), executed by deterministic
        evaluation), ``task_id`` (whose critic chose, and whose buffer stores the step) and
        ``selected_policy`` (which π_j acted).

        Everything after the networks runs in numpy on host copies: indexing a few rows costs
        less there than in torch (the same holds for ``_split_to_torch``).
        """
        states, task_ids = self._split_to_torch(observations)
        selected_tensor, sampled, means = self.select(task_ids, states)
        selected = selected_tensor.cpu().numpy()
        if self.sampling_freq > 1:
            reselect = self._rows_to_reselect(len(selected))
            assert self._held is not None and self._steps_since_selection is not None
            self._held = np.where(reselect, selected, self._held)
            self._steps_since_selection += 1
            selected = self._held.copy()  # a copy: _held changes
        rows = np.arange(len(selected))
        return sampled.cpu().numpy()[selected, rows], {
            'mean': means.cpu().numpy()[selected, rows],
            'task_id': task_ids.cpu().numpy(),
            'selected_policy': selected,
        }
