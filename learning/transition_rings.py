"""The rings that hold replay transitions compactly, and their incremental snapshots.

``TransitionRings`` is the storage of every replay buffer (``learning/replay.py``): R FIFO rings
of preallocated float32 arrays, one per task or one shared by all tasks.

Layout (why it is compact). A row stores only the state (the observation without its task
one-hot), the action, the reward and a one-byte terminal flag; the buffers rebuild the one-hot
and the raw observation when sampling. The next state is not stored either: within an episode
it is the next row's state, and only an episode's last step points (``final_ids``) into a small
ring of final observations, one per episode. That is ``4 (S + A + 1) + 1 + 4`` bytes per
transition plus one state per episode, against ``4 (S + A + 2)`` for state, action, reward and
terminal in float32 (``benchmarks/update_step.py`` prints both). Arrays grow geometrically up to
the capacity instead of being allocated whole up front.

Snapshots. Pickled inside ``infrastructure/replay_chunks.py``'s write session, a store writes
only the rows added since the previous snapshot, as one ``.npy`` file per row field, and
pickles a manifest of its chunks instead of its rows; unpickled inside a read session, it
rebuilds its rows from those chunks (``infrastructure/snapshots.py`` opens both sessions).
"""

from __future__ import annotations

import functools
import os
import uuid

import numpy as np

from infrastructure.replay_chunks import ChunkWriteSession, active_read_dir, active_write_session
from infrastructure.snapshot_info import REPLAY_DIR, atomic_write

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
