"""Incremental replay snapshots: each snapshot writes only the rows added since the previous
one, as ``.npy`` chunks under ``replay/``; the manifest inside ``params.pkl`` names the live
chunks; a kill mid-snapshot leaves the previous snapshot loadable.

The stores here hold hand-made rows whose state is their global index (the g-th transition
ever added to a ring has state g), so which rows a chunk holds can be read off directly.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import infrastructure.snapshot_info as snapshot_info
from environments.multitask import ObservationSplitter
from infrastructure.snapshots import AtomicSnapshotter, remove_stray_temporaries
from learning.replay import SharedReplayBuffer
from learning.transition_rings import ReplaySnapshotError, TransitionRings

CAPACITY = 5


def _add(rings: TransitionRings, ring: int, first: int, length: int) -> None:
    """One episode of ``length`` steps whose states (and actions, rewards) are their global
    row indices ``first, first + 1, ...`` and whose final state is ``-(last + 1)``."""
    values = np.arange(first, first + length, dtype=np.float32)
    rings.add(
        ring,
        values[:, None],
        values[:, None] * 10,
        values,
        np.zeros(length, np.uint8),
        np.array([-(first + length)], np.float32),
    )


def _save(directory, rings: TransitionRings, epoch: int) -> AtomicSnapshotter:
    snapshotter = AtomicSnapshotter(str(directory), 'last', 1)
    snapshotter.save_itr_params(epoch, {'replay': rings, 'epochs_done': epoch + 1})
    return snapshotter


def _load(directory) -> TransitionRings:
    return AtomicSnapshotter(str(directory), 'last', 1).load(str(directory))['replay']


def _chunk_states(directory) -> dict[int, list[float]]:
    """Chunk number -> the states it holds (all rings, in ring order)."""
    folder = directory / 'replay'
    return {
        int(name.split('-')[1]): np.load(folder / name)[:, 0].tolist()
        for name in sorted(os.listdir(folder))
        if name.endswith('-states.npy')
    }


def _assert_same_rows(actual: TransitionRings, expected: TransitionRings) -> None:
    np.testing.assert_array_equal(actual.added, expected.added)
    for ring in range(expected.n_rings):
        rows = np.arange(int(expected.sizes()[ring]))[None]
        for key, value in expected.gather(np.array([ring]), rows).items():
            np.testing.assert_array_equal(
                actual.gather(np.array([ring]), rows)[key], value, err_msg=key
            )


def test_each_snapshot_writes_only_the_new_rows_and_drops_overwritten_chunks(tmp_path):
    rings = TransitionRings(2, CAPACITY, 1, 1)
    _add(rings, 0, 0, 3)  # ring 0: rows 0-2; ring 1 empty
    _save(tmp_path, rings, 0)
    assert _chunk_states(tmp_path) == {0: [0, 1, 2]}
    _add(rings, 0, 3, 4)  # ring 0 holds rows 2-6 (0 and 1 overwritten)
    _add(rings, 1, 0, 2)
    _save(tmp_path, rings, 1)
    # Chunk 0 still holds live row 2; chunk 1 only rows 3-6 of ring 0, then ring 1's 0-1.
    assert _chunk_states(tmp_path) == {0: [0, 1, 2], 1: [3, 4, 5, 6, 0, 1]}
    _assert_same_rows(_load(tmp_path), rings)
    _add(rings, 0, 7, 4)  # ring 0 holds rows 7-10 and 6: chunk 0 is all overwritten
    _save(tmp_path, rings, 2)
    assert _chunk_states(tmp_path) == {1: [3, 4, 5, 6, 0, 1], 2: [7, 8, 9, 10]}
    _assert_same_rows(_load(tmp_path), rings)


def test_a_ring_that_wrapped_since_the_last_snapshot_writes_its_last_capacity_rows(tmp_path):
    rings = TransitionRings(1, CAPACITY, 1, 1)
    _add(rings, 0, 0, 2)
    _save(tmp_path, rings, 0)
    for first, length in ((2, 4), (6, 3)):  # 7 rows added, more than the capacity
        _add(rings, 0, first, length)
    _save(tmp_path, rings, 1)
    assert _chunk_states(tmp_path) == {1: [4, 5, 6, 7, 8]}  # chunk 0 dropped
    restored = _load(tmp_path)
    _assert_same_rows(restored, rings)
    # Next states come from the next row or, for an episode's last step, its final state:
    # row 4's is row 5's state, rows 5 and 8 end episodes (finals -6 and -9).
    batch = restored.gather(np.array([0]), np.array([[4, 5, 8]]) % CAPACITY)
    np.testing.assert_array_equal(batch['next_states'][0, :, 0], [5, -6, -9])
    # The restored store keeps filling like the original.
    for store in (rings, restored):
        _add(store, 0, 9, 3)
    _assert_same_rows(restored, rings)


def test_a_kill_before_params_pkl_is_replaced_leaves_the_previous_snapshot(tmp_path, monkeypatch):
    rings = TransitionRings(1, CAPACITY, 1, 1)
    _add(rings, 0, 0, 3)
    _save(tmp_path, rings, 0)
    previous = pickle.loads(pickle.dumps(rings))
    _add(rings, 0, 3, 4)
    replace = os.replace

    def killed_at_params(source, target):
        if os.path.basename(target) == 'params.pkl':
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(snapshot_info.os, 'replace', killed_at_params)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, rings, 1)
    monkeypatch.undo()
    # The new chunk was written, the old params.pkl does not name it: it is ignored.
    assert sorted(_chunk_states(tmp_path)) == [0, 1]
    (tmp_path / 'replay' / '.params-left-by-a-kill.tmp').write_bytes(b'partial')
    restored = _load(tmp_path)
    _assert_same_rows(restored, previous)
    assert remove_stray_temporaries(str(tmp_path)) == [
        str(tmp_path / 'replay' / '.params-left-by-a-kill.tmp')
    ]
    # The resumed run's next snapshot rewrites chunk 1 and deletes nothing it needs.
    _add(restored, 0, 3, 4)
    _save(tmp_path, restored, 1)
    assert _chunk_states(tmp_path) == {0: [0, 1, 2], 1: [3, 4, 5, 6]}
    _assert_same_rows(_load(tmp_path), rings)


def test_a_missing_or_short_chunk_is_refused(tmp_path):
    rings = TransitionRings(1, CAPACITY, 1, 1)
    _add(rings, 0, 0, 3)
    _save(tmp_path, rings, 0)
    _add(rings, 0, 3, 1)
    _save(tmp_path, rings, 1)
    (name,) = [name for name in os.listdir(tmp_path / 'replay') if '-000001-actions' in name]
    np.save(tmp_path / 'replay' / name, np.zeros((2, 1), np.float32))
    with pytest.raises(ReplaySnapshotError, match=f'{name} holds .* not the 1 rows'):
        _load(tmp_path)
    os.unlink(tmp_path / 'replay' / name)
    with pytest.raises(ReplaySnapshotError, match=f'{name} is missing'):
        _load(tmp_path)


def test_params_pkl_alone_unpickles_a_detached_store(tmp_path):
    rings = TransitionRings(2, CAPACITY, 1, 1)
    _add(rings, 1, 0, 4)
    _save(tmp_path, rings, 0)
    with open(tmp_path / 'params.pkl', 'rb') as file:
        detached = pickle.load(file)['replay']
    np.testing.assert_array_equal(detached.sizes(), [0, 4])
    assert detached.states.shape[1] == 0  # the rows stay in the chunks
    with pytest.raises(ReplaySnapshotError, match='without its chunks'):
        detached.draw_rows(np.array([1]), 2)


def test_a_detached_shared_buffer_refuses_to_count_its_tasks(tmp_path):
    """The shared buffer counts each task's rows from the stored task ids, which stay in the
    chunks: unpickled from params.pkl alone it refuses instead of reporting zeros."""
    buffer = SharedReplayBuffer(2, CAPACITY, ObservationSplitter(2, 'slice', False))
    buffer._rings = TransitionRings(1, CAPACITY, 1, 1, with_task_ids=True)
    values = np.arange(3, dtype=np.float32)
    buffer._rings.add(
        0,
        values[:, None],
        values[:, None],
        values,
        np.zeros(3, np.uint8),
        np.array([-3.0], np.float32),
        np.array([1, 1, 0], np.int16),
    )
    np.testing.assert_array_equal(buffer.sizes(), [1, 2])
    AtomicSnapshotter(str(tmp_path), 'last', 1).save_itr_params(0, {'buffer': buffer})
    with open(tmp_path / 'params.pkl', 'rb') as file:
        detached = pickle.load(file)['buffer']
    assert detached.size == 3
    with pytest.raises(ReplaySnapshotError, match='without its chunks'):
        detached.sizes()
    loaded = AtomicSnapshotter(str(tmp_path), 'last', 1).load(str(tmp_path))['buffer']
    np.testing.assert_array_equal(loaded.sizes(), [1, 2])


def test_a_store_pickled_under_its_former_module_path_still_loads():
    """Snapshots written before the rings left ``learning/replay.py`` name the class
    ``learning.replay.TransitionRings``; they must unpickle to the same class and rows."""
    rings = TransitionRings(2, CAPACITY, state_dim=1, action_dim=1)
    _add(rings, 0, 0, 3)
    _add(rings, 1, 0, 2)
    current = pickle.dumps(rings, protocol=2)  # protocol 2 names classes as plain text lines
    new_path, old_path = (
        b'learning.transition_rings\nTransitionRings',
        b'learning.replay\nTransitionRings',
    )
    assert new_path in current
    restored = pickle.loads(current.replace(new_path, old_path))
    assert type(restored) is TransitionRings
    _assert_same_rows(restored, rings)
