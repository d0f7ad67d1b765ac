"""Replay buffers: one FIFO ring per task (separated methods) or one for all tasks (shared).

Transitions are routed by ``task_id`` (whose reward they carry), never by which policy acted:
under QMP, task i's buffer holds the transitions collected for task i whichever policy proposed
the action (paper §4). Only ``StepType.TERMINAL`` steps are stored as terminal, so time-outs are
bootstrapped.

The rows live in ``learning/transition_rings.py``'s compact rings. Every raw observation is
``[state, one_hot(task_id)]`` (``environments/multitask.py``), so a ring stores only the state,
and the buffers here rebuild the raw observation from the state and the task id when sampling.
The network input is ``split_observation`` of it (the split hides per family what it hides,
e.g. Jaco's hand), so supervised data sharing still reads the raw one.

Semantics are those of one garage ``PathBuffer`` per buffer: transition ``g`` (counted from the
first ever added) lives in row ``g % capacity``, a new episode overwrites the oldest rows, and
``sample`` draws ``np.random.randint(stored, size=batch_size)`` rows per task, in task order,
from numpy's global generator, so the same seed selects the same transitions as the
``PathBuffer``-based buffers did (``tests/test_replay.py`` checks this against ``PathBuffer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from garage import EpisodeBatch, StepType

from environments.multitask import ObservationSplitter
from learning.batches import TransitionBatch, as_batch

# Snapshots written before the rings had a module of their own name the class
# ``learning.replay.TransitionRings``; this import is also what unpickles them.
from learning.transition_rings import TransitionRings

KEYS = ('observations', 'actions', 'rewards', 'next_observations', 'terminals')


def _episode_slices(episodes: EpisodeBatch) -> list[tuple[int, slice]]:
    """(episode index, its step slice) for every episode of the batch."""
    ends = np.cumsum(episodes.lengths)
    return [
        (index, slice(int(end - length), int(end)))
        for index, (end, length) in enumerate(zip(ends, episodes.lengths, strict=True))
    ]


def _task_of(task_ids: np.ndarray, steps: slice) -> int:
    """The one task (or buffer) id of an episode's ``steps``."""
    task_ids = np.asarray(task_ids[steps])
    task_id = int(task_ids[0])
    if not np.all(task_ids == task_id):
        raise ValueError('an episode changed task mid-way; cannot route it')
    return task_id


def _check_one_hot(observations: np.ndarray, n_tasks: int, task_id: int) -> None:
    one_hot = observations[..., -n_tasks:]
    expected = np.zeros(n_tasks, observations.dtype)
    expected[task_id] = 1
    if not np.all(one_hot == expected):
        raise ValueError(
            f'observations of task {task_id} do not end with its one-hot; the '
            f'replay buffer rebuilds the one-hot from the task id'
        )


def _with_one_hot(states: np.ndarray, task_ids: np.ndarray, n_tasks: int) -> np.ndarray:
    """The raw observations ``[states, one_hot(task_ids)]``."""
    # Annotated: numpy's stubs give np.zeros of a tuple[Any, ...] shape a 0-d type.
    out: np.ndarray = np.zeros(states.shape[:-1] + (states.shape[-1] + n_tasks,), np.float32)
    out[..., : states.shape[-1]] = states
    flat = out.reshape(-1, out.shape[-1])
    flat[np.arange(len(flat)), states.shape[-1] + task_ids.reshape(-1)] = 1.0
    return out


def _network_input(
    split: ObservationSplitter, states: np.ndarray, task_ids: np.ndarray
) -> np.ndarray:
    """What ``split_observation`` (the policies' rule) makes of ``[states, one_hot(task_ids)]``."""
    return split(_with_one_hot(states, task_ids, split.n_tasks))[0].astype(np.float32, copy=False)


@dataclass(frozen=True)
class _EpisodeRows:
    """One episode as the rings store it: its task and its rows without the one-hot."""

    task_id: int
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    final_state: np.ndarray

    def add_to(self, rings: TransitionRings, ring: int, task_ids: np.ndarray | None = None) -> None:
        rings.add(
            ring,
            self.states,
            self.actions,
            self.rewards,
            self.terminals,
            self.final_state,
            task_ids,
        )


def _episode_rows(episodes: EpisodeBatch, index: int, steps: slice, n_tasks: int) -> _EpisodeRows:
    """Episode ``index`` (``steps``) of ``episodes`` as stored rows: the one place where a
    transition's task id is decided (its env's ``task_id``, which the observations' one-hot
    must agree with) and the one-hot is cut off."""
    task_id = _task_of(episodes.env_infos['task_id'], steps)
    observations = episodes.observations[steps]
    last_observation = episodes.last_observations[index]
    _check_one_hot(observations, n_tasks, task_id)
    _check_one_hot(last_observation, n_tasks, task_id)
    return _EpisodeRows(
        task_id=task_id,
        states=observations[:, :-n_tasks].astype(np.float32),
        actions=episodes.actions[steps].astype(np.float32),
        rewards=episodes.rewards[steps].astype(np.float32),
        terminals=(episodes.step_types[steps] == StepType.TERMINAL).astype(np.uint8),
        final_state=last_observation[:-n_tasks],
    )


class PerTaskReplayBuffer:
    """N FIFO replay buffers of ``capacity_per_task`` transitions each.

    ``sample`` returns observations as ``split_observation`` makes them, i.e. exactly as the
    networks see them; ``keep_raw_observations`` also returns the raw ones
    (``raw_observations``) for reward functions that read what the split hides. Both come
    from the stored state and the task id (see the module docstring), so keeping the raw
    observations costs no memory.
    """

    def __init__(
        self,
        n_tasks: int,
        capacity_per_task: int,
        split_observation: ObservationSplitter,
        keep_raw_observations: bool = False,
    ) -> None:
        self.n_tasks = n_tasks
        self.capacity_per_task = capacity_per_task
        self._split = split_observation
        # Supervised data sharing recomputes rewards from what the split hides (e.g. Jaco's hand).
        self.keep_raw_observations = keep_raw_observations
        self._rings: TransitionRings | None = None  # built on the first episodes (dims)

    def _store(self, episodes: EpisodeBatch) -> TransitionRings:
        if self._rings is None:
            state_dim = episodes.observations.shape[1] - self.n_tasks
            self._rings = TransitionRings(
                self.n_tasks, self.capacity_per_task, state_dim, episodes.actions.shape[1]
            )
        return self._rings

    @property
    def nbytes(self) -> int:
        """Bytes held by the store's arrays."""
        return 0 if self._rings is None else self._rings.nbytes

    def sizes(self) -> np.ndarray:
        """(N,) transitions stored per task."""
        if self._rings is None:
            return np.zeros(self.n_tasks, dtype=np.int64)
        return self._rings.sizes().astype(np.int64)

    def add_episodes(self, episodes: EpisodeBatch, route_by: str | None = None) -> np.ndarray:
        """Stores every episode in the buffer of its task (or of the agent info ``route_by``,
        the random partition's ``partition_id``); returns (N,) transitions added."""
        added = np.zeros(self.n_tasks, dtype=np.int64)
        for index, steps in _episode_slices(episodes):
            episode = _episode_rows(episodes, index, steps, self.n_tasks)
            # The random partition stores an episode in the buffer of the policy that acted;
            # its one-hot is then rebuilt as that buffer's (validate() refuses the flags that
            # would read it: --include_task_id, --unsupervised false).
            buffer_id = (
                episode.task_id
                if route_by is None
                else _task_of(episodes.agent_infos[route_by], steps)
            )
            episode.add_to(self._store(episodes), buffer_id)
            added[buffer_id] += steps.stop - steps.start
        return added

    def _batch(self, rings: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The transitions at (rings, rows) in the layout ``sample`` returns, (k, B, dim)."""
        if self._rings is None:
            raise ValueError('cannot sample from an empty replay buffer')
        gathered = self._rings.gather(rings, rows)
        task_ids = np.broadcast_to(rings[:, None], rows.shape)
        batch = {
            'observations': _network_input(self._split, gathered['states'], task_ids),
            'actions': gathered['actions'],
            'rewards': gathered['rewards'],
            'next_observations': _network_input(self._split, gathered['next_states'], task_ids),
            'terminals': gathered['terminals'],
        }
        if self.keep_raw_observations:
            batch['raw_observations'] = _with_one_hot(gathered['states'], task_ids, self.n_tasks)
        return batch

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
        if self._rings is None:
            raise ValueError('cannot sample from an empty replay buffer')
        picked = self._batch(task_ids, self._rings.draw_rows(task_ids, batch_size))
        if len(task_ids) == self.n_tasks:
            return picked
        batch = {}
        for key, value in picked.items():
            batch[key] = np.zeros((self.n_tasks,) + value.shape[1:], np.float32)
            batch[key][task_ids] = value
        return batch

    def sample_batch(
        self, batch_size: int, tasks: np.ndarray, device: torch.device
    ) -> TransitionBatch:
        """``sample`` as an (N, ``batch_size``) ``TransitionBatch`` on ``device``."""
        return as_batch(self.sample(batch_size, tasks), device)

    def stored(self, task_id: int) -> dict[str, np.ndarray]:
        """Every transition stored for ``task_id``, oldest first, as ``sample`` lays them out
        ((n, dim) arrays)."""
        if self._rings is None:
            return {}
        size = int(self.sizes()[task_id])
        first = int(self._rings.added[task_id]) - size
        rows = (first + np.arange(size)) % self.capacity_per_task
        return {
            key: value[0] for key, value in self._batch(np.array([task_id]), rows[None]).items()
        }


class SharedReplayBuffer:
    """One FIFO buffer for all tasks (the parameter-sharing methods).

    Rows store the state and a task id; ``sample`` rebuilds the raw observations (state +
    one-hot) as garage's ``PathBuffer`` would return them, and ``sample_batch`` returns what
    the learner trains on: network inputs and each transition's task id, which the per-task
    temperature and the multihead networks read.
    """

    def __init__(self, n_tasks: int, capacity: int, split_observation: ObservationSplitter) -> None:
        self.n_tasks = n_tasks
        self.capacity = capacity
        self._split = split_observation
        self._rings: TransitionRings | None = None

    @property
    def size(self) -> int:
        return 0 if self._rings is None else int(self._rings.sizes()[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the store's arrays."""
        return 0 if self._rings is None else self._rings.nbytes

    def sizes(self) -> np.ndarray:
        """(N,) transitions stored per task (counted from the stored task ids, so a store
        unpickled without its chunks refuses rather than report zeros)."""
        if self._rings is None or self.size == 0:
            return np.zeros(self.n_tasks, dtype=np.int64)
        self._rings._require_rows()
        assert self._rings.task_ids is not None  # a shared store is built with_task_ids
        return np.bincount(self._rings.task_ids[0, : self.size], minlength=self.n_tasks).astype(
            np.int64
        )

    def add_episodes(self, episodes: EpisodeBatch) -> np.ndarray:
        """Stores every episode; returns (N,) transitions added per task."""
        added = np.zeros(self.n_tasks, dtype=np.int64)
        for index, steps in _episode_slices(episodes):
            episode = _episode_rows(episodes, index, steps, self.n_tasks)
            if self._rings is None:
                self._rings = TransitionRings(
                    1,
                    self.capacity,
                    episode.states.shape[1],
                    episodes.actions.shape[1],
                    with_task_ids=True,
                )
            length = steps.stop - steps.start
            episode.add_to(self._rings, 0, np.full(length, episode.task_id, np.int16))
            added[episode.task_id] += length
        return added

    def _batch(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self._rings is None:
            raise ValueError('cannot sample from an empty replay buffer')
        gathered = self._rings.gather(np.array([0]), rows[None])
        task_ids = gathered['task_ids'][0]
        return {
            'observations': _with_one_hot(gathered['states'][0], task_ids, self.n_tasks),
            'actions': gathered['actions'][0],
            'rewards': gathered['rewards'][0],
            'next_observations': _with_one_hot(gathered['next_states'][0], task_ids, self.n_tasks),
            'terminals': gathered['terminals'][0],
        }

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly from all tasks' data: (B, dim) arrays."""
        if self._rings is None:
            raise ValueError('cannot sample from an empty replay buffer')
        return self._batch(self._rings.draw_rows(np.array([0]), batch_size)[0])

    def sample_batch(self, batch_size: int, device: torch.device) -> TransitionBatch:
        """``batch_size`` transitions as the networks see them, (B,) on ``device``: the
        observations split as the policies split them, and each transition's stored task id
        (the one ``add_episodes`` checked against its one-hot)."""
        if self._rings is None:
            raise ValueError('cannot sample from an empty replay buffer')
        rows = self._rings.draw_rows(np.array([0]), batch_size)
        gathered = {key: value[0] for key, value in self._rings.gather(np.array([0]), rows).items()}
        task_ids = gathered['task_ids']
        return as_batch(
            {
                'observations': _network_input(self._split, gathered['states'], task_ids),
                'actions': gathered['actions'],
                'rewards': gathered['rewards'],
                'next_observations': _network_input(self._split, gathered['next_states'], task_ids),
                'terminals': gathered['terminals'],
                'task_ids': task_ids,
            },
            device,
        )

    def stored(self) -> dict[str, np.ndarray]:
        """Every stored transition, oldest first, as ``sample`` lays them out."""
        if self._rings is None:
            return {}
        first = int(self._rings.added[0]) - self.size
        return self._batch((first + np.arange(self.size)) % self.capacity)


def minimal_bytes_per_transition(state_dim: int, action_dim: int) -> int:
    """State, action, reward and terminal in float32: what a transition needs at least."""
    return 4 * (state_dim + action_dim + 2)
