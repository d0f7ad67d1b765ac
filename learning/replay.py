"""One garage ``PathBuffer`` per task, sampled together as (N, B, ...) arrays.

Transitions are routed by ``task_id`` (whose reward they carry), never by which policy acted:
under QMP, task i's buffer holds the transitions collected for task i whichever policy proposed
the action (paper §4; spec §3.5). Only ``StepType.TERMINAL`` steps are stored as terminal, so
time-outs are bootstrapped.
"""
from __future__ import annotations

import numpy as np
from garage import EpisodeBatch, StepType
from garage.replay_buffer import PathBuffer

from environments.multitask import ObservationSplitter

KEYS = ('observations', 'actions', 'rewards', 'next_observations', 'terminals')


class PerTaskReplayBuffer:
    """N FIFO replay buffers of ``capacity_per_task`` transitions each.

    Observations are stored split (``split_observation``), i.e. exactly as the networks see
    them, for every method that uses this buffer; ``keep_raw_observations`` also keeps the raw
    ones (``raw_observations``) for reward functions that read what the split hides.
    """

    def __init__(self, n_tasks: int, capacity_per_task: int,
                 split_observation: ObservationSplitter, keep_raw_observations: bool = False
                 ) -> None:
        self.n_tasks = n_tasks
        self.capacity_per_task = capacity_per_task
        self._split = split_observation
        # Supervised data sharing recomputes rewards from what the split hides (e.g. Jaco's hand).
        self.keep_raw_observations = keep_raw_observations
        self._buffers = [PathBuffer(capacity_in_transitions=capacity_per_task)
                         for _ in range(n_tasks)]

    def sizes(self) -> np.ndarray:
        """(N,) transitions stored per task."""
        return np.array([b.n_transitions_stored for b in self._buffers], dtype=np.int64)

    def add_episodes(self, episodes: EpisodeBatch, route_by: str | None = None) -> np.ndarray:
        """Stores every episode in the buffer of its task (or of the agent info ``route_by``,
        the random partition's ``partition_id``); returns (N,) transitions added."""
        added = np.zeros(self.n_tasks, dtype=np.int64)
        for episode in episodes.split():
            task_ids = np.asarray(episode.env_infos['task_id'] if route_by is None
                                  else episode.agent_infos[route_by])
            task_id = int(task_ids[0])
            if not np.all(task_ids == task_id):
                raise ValueError('an episode changed task mid-way; cannot route it')
            states, _ = self._split(episode.observations)
            next_states, _ = self._split(episode.next_observations)
            raw = ({'raw_observations': episode.observations.astype(np.float32)}
                   if self.keep_raw_observations else {})
            self._buffers[task_id].add_path({
                **raw,
                'observations': states.astype(np.float32),
                'actions': episode.actions.astype(np.float32),
                'rewards': episode.rewards.reshape(-1, 1).astype(np.float32),
                'next_observations': next_states.astype(np.float32),
                'terminals': (episode.step_types == StepType.TERMINAL).reshape(-1, 1)
                .astype(np.float32),
            })
            added[task_id] += len(episode.actions)
        return added

    def sample(self, batch_size: int, tasks: np.ndarray) -> dict[str, np.ndarray]:
        """Samples ``batch_size`` transitions uniformly (with replacement) from the buffer of
        each task where ``tasks`` (bool, (N,)) is true; other tasks' rows are zeros.

        Returns:
            dict of (N, batch_size, dim) float32 arrays under ``KEYS`` (and
            ``raw_observations`` when kept).
        """
        task_ids = np.flatnonzero(tasks)
        if len(task_ids) == 0:
            raise ValueError('sample() needs at least one task')
        samples = [self._buffers[task_id].sample_transitions(batch_size) for task_id in task_ids]
        batch = {key: np.zeros((self.n_tasks, batch_size, value.shape[-1]), np.float32)
                 for key, value in samples[0].items()}
        for task_id, sample in zip(task_ids, samples):
            for key, value in sample.items():
                batch[key][task_id] = value
        return batch

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_buffers'] = [compact_state(buffer) for buffer in self._buffers]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._buffers = [restore_compact_state(buffer) for buffer in state['_buffers']]


class SharedReplayBuffer:
    """One FIFO buffer for all tasks (the parameter-sharing methods, spec §3.2).

    It stores raw observations (state + one-hot), so a sampled transition still says which task
    it belongs to: the per-task temperature and the multihead networks read it from there.
    """

    def __init__(self, n_tasks: int, capacity: int, split_observation: ObservationSplitter
                 ) -> None:
        self.n_tasks = n_tasks
        self._split = split_observation
        self._buffer = PathBuffer(capacity_in_transitions=capacity)

    @property
    def size(self) -> int:
        return self._buffer.n_transitions_stored

    def sizes(self) -> np.ndarray:
        """(N,) transitions stored per task, read from the stored one-hots."""
        if self.size == 0:
            return np.zeros(self.n_tasks, dtype=np.int64)
        observations = self._buffer._buffer['observations'][:self.size]  # pylint: disable=W0212
        _, task_ids = self._split(observations)
        return np.bincount(task_ids, minlength=self.n_tasks).astype(np.int64)

    def add_episodes(self, episodes: EpisodeBatch) -> np.ndarray:
        """Stores every episode; returns (N,) transitions added per task."""
        added = np.zeros(self.n_tasks, dtype=np.int64)
        for episode in episodes.split():
            self._buffer.add_path({
                'observations': episode.observations.astype(np.float32),
                'actions': episode.actions.astype(np.float32),
                'rewards': episode.rewards.reshape(-1, 1).astype(np.float32),
                'next_observations': episode.next_observations.astype(np.float32),
                'terminals': (episode.step_types == StepType.TERMINAL).reshape(-1, 1)
                .astype(np.float32),
            })
            added[int(episode.env_infos['task_id'][0])] += len(episode.actions)
        return added

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly from all tasks' data: (B, dim) arrays."""
        return self._buffer.sample_transitions(batch_size)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_buffer'] = compact_state(self._buffer)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._buffer = restore_compact_state(state['_buffer'])


def compact_state(buffer: PathBuffer) -> dict:
    """A garage ``PathBuffer``'s state without its unused preallocated capacity.

    ``PathBuffer`` allocates ``capacity`` rows per key on first use; before it wraps around,
    transitions occupy rows ``[0, stored)``, so the rest is zeros and need not be written into
    every snapshot.
    """
    state = buffer.__dict__.copy()
    stored = buffer.n_transitions_stored
    if stored < state['_capacity']:
        state['_buffer'] = {key: value[:stored].copy() for key, value in state['_buffer'].items()}
    return state


def restore_compact_state(state: dict) -> PathBuffer:
    """The ``PathBuffer`` of a ``compact_state``, with its full capacity allocated again."""
    buffer = PathBuffer.__new__(PathBuffer)
    arrays = {}
    for key, value in state['_buffer'].items():
        full = np.zeros((state['_capacity'], value.shape[1]), value.dtype)
        full[:len(value)] = value
        arrays[key] = full
    buffer.__dict__.update(state)
    buffer._buffer = arrays  # pylint: disable=protected-access
    return buffer
