"""Replay buffers: one FIFO ring per task (separated methods) or one for all tasks (shared).

Transitions are routed by ``task_id`` (whose reward they carry), never by which policy acted:
under QMP, task i's buffer holds the transitions collected for task i whichever policy proposed
the action (paper §4). Only ``StepType.TERMINAL`` steps are stored as terminal, so time-outs are
bootstrapped.

Layout (why it is compact). Every raw observation is ``[state, one_hot(task_id)]``
(``environments/multitask.py``), so a row stores only the state, the action, the reward and a
one-byte terminal flag; the raw observation is rebuilt from the state and the task id when
sampling, and the network input is ``split_observation`` of it (the split hides per family
what it hides, e.g. Jaco's hand), so supervised data sharing still reads the raw one. The next
state is not stored either: within an episode it is
the next row's state, and only an episode's last step points (``final_ids``) into a small ring
of final observations, one per episode. That is ``4 (S + A + 1) + 1 + 4`` bytes per transition
plus one state per episode, against ``4 (S + A + 2)`` for state, action, reward and terminal in
float32 (``benchmarks/update_step.py`` prints both). Arrays grow geometrically up to the
capacity instead of being allocated whole up front.

Semantics are those of one garage ``PathBuffer`` per buffer: transition ``g`` (counted from the
first ever added) lives in row ``g % capacity``, a new episode overwrites the oldest rows, and
``sample`` draws ``np.random.randint(stored, size=batch_size)`` rows per task, in task order,
from numpy's global generator, so the same seed selects the same transitions as the
``PathBuffer``-based buffers did (``tests/test_replay.py`` checks this against ``PathBuffer``).
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass

import numpy as np
import torch
from garage import EpisodeBatch, StepType

from environments.multitask import ObservationSplitter
from infrastructure.replay_chunks import ChunkWriteSession, active_read_dir, active_write_session
from infrastructure.snapshot_info import REPLAY_DIR, atomic_write
from learning.batches import TransitionBatch, as_batch

KEYS = ('observations', 'actions', 'rewards', 'next_observations', 'terminals')

_MIN_ROWS = 1024
_MIN_FINALS = 16
# The per-row arrays of a ring store (``task_ids`` only in a shared store): what snapshots
# write as chunks; everything else of the store is small and goes into params.pkl.
ROW_FIELDS = ('states', 'actions', 'rewards', 'terminals', 'final_ids', 'task_ids')


class ReplaySnapshotError(ValueError):
    """A snapshot's replay chunks are missing, unreadable or do not cover the stored rows."""


def chunk_file_name(store_id: str, sequence: int, field_name: str) -> str:
    """The name of a store's ``sequence``-th chunk of ``field_name`` (in ``replay/``)."""
    return f'{store_id}-{sequence:06d}-{field_name}.npy'


class TransitionRings:
    """R FIFO rings of ``capacity`` transitions each, stored without the next observation.

    Args:
        n_rings: R.
        capacity: transitions per ring.
        state_dim: S, the stored width of an observation.
        action_dim: A.
        with_task_ids: also store each row's task id (for a ring shared by several tasks).
    """

    def __init__(
        self,
        n_rings: int,
        capacity: int,
        state_dim: int,
        action_dim: int,
        with_task_ids: bool = False,
    ) -> None:
        if capacity < 1:
            raise ValueError(f'replay capacity must be at least 1, got {capacity}')
        self.n_rings = n_rings
        self.capacity = capacity
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.with_task_ids = with_task_ids
        self.added = np.zeros(n_rings, np.int64)  # transitions ever added, per ring
        self.finals_added = np.zeros(n_rings, np.int64)
        self.first_live_final = np.zeros(n_rings, np.int64)
        self._allocate_rows(0)
        self._allocate_finals(_MIN_FINALS)
        # Snapshot chunks (``__getstate__``): the store's name in chunk files, the chunks the
        # latest snapshot's manifest names ({'sequence', 'ranges': per ring [first, end) of
        # global row indices}), the rows they hold up to, and the next chunk's number.
        self.store_id = uuid.uuid4().hex[:16]
        self.chunks: list[dict] = []
        self.rows_in_chunks = np.zeros(n_rings, np.int64)
        self.next_chunk = 0
        self.rows_loaded = True

    # ------------------------------------------------------------------ storage
    def _allocate_rows(self, rows: int) -> None:
        r = self.n_rings
        self.states: np.ndarray = np.zeros((r, rows, self.state_dim), np.float32)
        self.actions: np.ndarray = np.zeros((r, rows, self.action_dim), np.float32)
        self.rewards: np.ndarray = np.zeros((r, rows), np.float32)
        self.terminals: np.ndarray = np.zeros((r, rows), np.uint8)
        # -1: not an episode's last step
        self.final_ids: np.ndarray = np.full((r, rows), -1, np.int32)
        self.task_ids: np.ndarray | None = (
            np.zeros((r, rows), np.int16) if self.with_task_ids else None
        )

    def _row_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            'states': self.states,
            'actions': self.actions,
            'rewards': self.rewards,
            'terminals': self.terminals,
            'final_ids': self.final_ids,
        }
        if self.task_ids is not None:
            arrays['task_ids'] = self.task_ids
        return arrays

    def _allocate_finals(self, slots: int) -> None:
        self.finals = np.zeros((self.n_rings, slots, self.state_dim), np.float32)
        # The global row index of the last step each final belongs to (for eviction).
        self.final_rows = np.zeros((self.n_rings, slots), np.int64)

    @property
    def allocated_rows(self) -> int:
        return self.states.shape[1]

    def _grow_rows(self, needed: int) -> None:
        """Geometric growth; rows [0, stored) are filled in order until the ring is full, and
        a ring only wraps once it has all ``capacity`` rows, so growing is a prefix copy."""
        rows = min(self.capacity, max(needed, 2 * self.allocated_rows, _MIN_ROWS))
        old = self._row_arrays()
        filled = self.allocated_rows
        self._allocate_rows(rows)
        for key, array in self._row_arrays().items():
            array[:, :filled] = old[key]

    def _grow_finals(self) -> None:
        old_finals, old_rows = self.finals, self.final_rows
        old_slots = old_finals.shape[1]
        self._allocate_finals(2 * old_slots)
        new_slots = self.finals.shape[1]
        for ring in range(self.n_rings):
            live = np.arange(self.first_live_final[ring], self.finals_added[ring])
            self.finals[ring, live % new_slots] = old_finals[ring, live % old_slots]
            self.final_rows[ring, live % new_slots] = old_rows[ring, live % old_slots]

    @property
    def nbytes(self) -> int:
        """Bytes held by every array of the store (allocated, filled or not)."""
        arrays = [
            *self._row_arrays().values(),
            self.finals,
            self.final_rows,
            self.added,
            self.finals_added,
            self.first_live_final,
        ]
        return int(sum(array.nbytes for array in arrays))

    def sizes(self) -> np.ndarray:
        """(R,) transitions stored per ring."""
        return np.minimum(self.added, self.capacity)

    # ------------------------------------------------------------------ writing
    def add(
        self,
        ring: int,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminals: np.ndarray,
        final_state: np.ndarray,
        task_ids: np.ndarray | None = None,
    ) -> None:
        """Appends one episode (L steps) to ``ring``, evicting its oldest transitions.

        ``final_state`` is the observation after the last step: the last step's next state.
        """
        self._require_rows()
        length = len(states)
        if length > self.capacity:
            raise ValueError(
                f'an episode of {length} steps does not fit in a replay buffer of '
                f'{self.capacity} transitions'
            )
        if self.task_ids is not None and task_ids is None:
            raise ValueError('this replay store keeps a task id per row; add() needs task_ids')
        if length == 0:
            return
        start_global = int(self.added[ring])
        end_global = start_global + length
        if self.allocated_rows < min(self.capacity, end_global):
            self._grow_rows(min(self.capacity, end_global))
        final_id = self._add_final(ring, final_state, end_global)
        values = {
            'states': states,
            'actions': actions,
            'rewards': rewards,
            'terminals': terminals,
            'final_ids': np.full(length, -1, np.int32),
        }
        values['final_ids'][-1] = final_id
        if task_ids is not None and self.task_ids is not None:
            values['task_ids'] = task_ids
        start = start_global % self.capacity
        first = min(length, self.capacity - start)
        for key, array in self._row_arrays().items():
            array[ring, start : start + first] = values[key][:first]
            array[ring, : length - first] = values[key][first:]
        self.added[ring] = end_global

    def _add_final(self, ring: int, final_state: np.ndarray, end_global: int) -> int:
        """Stores an episode's final observation; frees those whose last step is evicted."""
        oldest_live_row = end_global - self.capacity
        slots = self.finals.shape[1]
        while (
            self.first_live_final[ring] < self.finals_added[ring]
            and self.final_rows[ring, self.first_live_final[ring] % slots] < oldest_live_row
        ):
            self.first_live_final[ring] += 1
        if self.finals_added[ring] - self.first_live_final[ring] >= slots:
            self._grow_finals()
            slots = self.finals.shape[1]
        final_id = int(self.finals_added[ring])
        if final_id >= np.iinfo(np.int32).max:
            raise OverflowError('more episodes than the replay buffer can index')
        self.finals[ring, final_id % slots] = final_state
        self.final_rows[ring, final_id % slots] = end_global - 1
        self.finals_added[ring] += 1
        return final_id

    # ------------------------------------------------------------------ reading
    def draw_rows(self, rings: np.ndarray, batch_size: int) -> np.ndarray:
        """(k, B) uniform row indices per ring, drawn as ``PathBuffer.sample_transitions``
        draws them (``np.random.randint(stored, size=B)``, ring after ring)."""
        self._require_rows()
        sizes = self.sizes()
        for ring in rings:
            if sizes[ring] == 0:
                raise ValueError(f'cannot sample from empty replay ring {int(ring)}')
        return np.stack([np.random.randint(sizes[ring], size=batch_size) for ring in rings])

    def gather(self, rings: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The transitions at (``rings[i]``, ``rows[i, b]``): states, next states, actions,
        rewards and terminals (float32, (k, B, dim)) and, when stored, task ids (k, B)."""
        self._require_rows()
        ring_index = np.broadcast_to(np.asarray(rings)[:, None], rows.shape)
        next_rows = (rows + 1) % self.allocated_rows
        next_states = self.states[ring_index, next_rows]
        final_ids = self.final_ids[ring_index, rows]
        last = final_ids >= 0
        if last.any():
            next_states[last] = self.finals[
                ring_index[last], final_ids[last] % self.finals.shape[1]
            ]
        batch = {
            'states': self.states[ring_index, rows],
            'next_states': next_states,
            'actions': self.actions[ring_index, rows],
            'rewards': self.rewards[ring_index, rows][..., None],
            'terminals': self.terminals[ring_index, rows][..., None].astype(np.float32),
        }
        if self.task_ids is not None:
            batch['task_ids'] = self.task_ids[ring_index, rows].astype(np.int64)
        return batch

    # ------------------------------------------------------------------ pickling
    def _require_rows(self) -> None:
        if not self.rows_loaded:
            raise ReplaySnapshotError(
                'this replay store was unpickled without its chunks; load the snapshot with '
                'infrastructure.snapshots.AtomicSnapshotter.load to train on it'
            )

    def __getstate__(self) -> dict:
        """Only the rows that hold transitions (the ring's allocated tail is zeros); inside
        ``write_replay_chunks``, none: the new rows go to chunk files instead."""
        session = active_write_session()
        if session is not None:
            return self._chunked_state(session)
        state = self.__dict__.copy()
        if self.rows_loaded:
            used = int(self.sizes().max(initial=0))
            for key, array in self._row_arrays().items():
                state[key] = array[:, :used].copy()
        return state

    def _live_ranges(self, ranges: np.ndarray) -> np.ndarray:
        """(R, 2) ``[first, end)`` global rows of ``ranges`` not overwritten since."""
        oldest = np.maximum(self.added - self.capacity, 0)
        return np.stack(
            [np.maximum(ranges[:, 0], oldest), np.maximum(ranges[:, 1], oldest)], axis=1
        )

    def _chunked_state(self, session: ChunkWriteSession) -> dict:
        """Writes the rows added since the last snapshot as one chunk (one ``.npy`` per row
        field, the rings' new rows one after another), drops the chunks whose rows have all
        been overwritten since, and returns the state without rows but with the manifest.

        Rows are named by their global index g (stored at ``g % capacity``), so a ring that
        wrapped since the last snapshot writes only its last ``capacity`` rows, and a chunk
        stays valid for the part of its rows not overwritten yet.
        """
        self._require_rows()
        if self.store_id in session.store_ids:
            raise ReplaySnapshotError(
                'two replay stores share one store id (a deep copy?); '
                'their chunks would overwrite each other'
            )
        session.store_ids.add(self.store_id)
        first = np.maximum(self.rows_in_chunks, self.added - self.capacity)
        new = np.stack([first, self.added], axis=1)
        chunks = [
            chunk
            for chunk in self.chunks
            if np.any(np.diff(self._live_ranges(np.asarray(chunk['ranges'])), axis=1) > 0)
        ]
        if np.any(new[:, 1] > new[:, 0]):
            directory = os.path.join(session.directory, REPLAY_DIR)
            os.makedirs(directory, exist_ok=True)
            arrays = self._row_arrays()
            for key in ROW_FIELDS:
                if key not in arrays:
                    continue
                rows = np.concatenate(
                    [
                        arrays[key][ring, np.arange(start, end) % self.capacity]
                        for ring, (start, end) in enumerate(new)
                    ]
                )
                atomic_write(
                    os.path.join(directory, chunk_file_name(self.store_id, self.next_chunk, key)),
                    functools.partial(np.save, arr=rows, allow_pickle=False),
                )
            chunks.append({'sequence': self.next_chunk, 'ranges': new.tolist()})
            self.next_chunk += 1
        self.chunks = chunks
        self.rows_in_chunks = self.added.copy()
        fields = [key for key in ROW_FIELDS if key in self._row_arrays()]
        session.referenced.update(
            chunk_file_name(self.store_id, chunk['sequence'], key)
            for chunk in chunks
            for key in fields
        )
        state = self.__dict__.copy()
        for key in fields:
            state[key] = None
        state['rows_loaded'] = False
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault('store_id', uuid.uuid4().hex[:16])  # a snapshot from before chunks
        state.setdefault('chunks', [])
        state.setdefault('rows_in_chunks', np.zeros(state['n_rings'], np.int64))
        state.setdefault('next_chunk', 0)
        state.setdefault('rows_loaded', True)
        self.__dict__.update(state)
        if self.rows_loaded:
            return
        directory = active_read_dir()
        if directory is None:  # detached: counters without rows (read_replay_chunks)
            self._allocate_rows(0)
            return
        self._read_chunks(os.path.join(directory, REPLAY_DIR))
        self.rows_loaded = True

    def _read_chunks(self, directory: str) -> None:
        """Rebuilds the rows from the manifest's chunks, oldest first; refuses a missing or
        short chunk and a manifest that does not cover every stored row."""
        self._allocate_rows(int(self.sizes().max(initial=0)))
        covered = np.zeros(self.n_rings, np.int64)
        for chunk in self.chunks:
            ranges = np.asarray(chunk['ranges'], np.int64)
            live = self._live_ranges(ranges)
            offsets = np.concatenate([[0], np.cumsum(ranges[:, 1] - ranges[:, 0])])
            for key, array in self._row_arrays().items():
                name = chunk_file_name(self.store_id, chunk['sequence'], key)
                try:
                    rows = np.load(os.path.join(directory, name), allow_pickle=False)
                except (OSError, ValueError) as error:
                    raise ReplaySnapshotError(
                        f'replay chunk {name} is missing or unreadable '
                        f'({error}): the snapshot is incomplete'
                    ) from None
                if len(rows) != offsets[-1] or rows.shape[1:] != array.shape[2:]:
                    raise ReplaySnapshotError(
                        f'replay chunk {name} holds {rows.shape}, not the '
                        f'{int(offsets[-1])} rows its manifest names'
                    )
                for ring, (start, end) in enumerate(live):
                    skip = start - ranges[ring, 0]
                    array[ring, np.arange(start, end) % self.capacity] = rows[
                        offsets[ring] + skip : offsets[ring + 1]
                    ]
            covered += live[:, 1] - live[:, 0]
        if np.any(covered != self.sizes()):
            raise ReplaySnapshotError(
                f'the replay chunks hold {covered.tolist()} rows per ring, '
                f'the snapshot stores {self.sizes().tolist()}'
            )


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
