"""Atomic snapshots that say which epoch they hold, with the replay written incrementally.

garage's ``Snapshotter`` opens the final file and pickles into it, so an interrupted save
destroys the previous snapshot too. Here the pickle goes to a temporary file in the same
directory (``.params-*.tmp``), is flushed to disk, and replaces the old file with one
``os.replace``.

The replay stores are not pickled into ``params.pkl``: while it is written, every store writes
the rows added since the previous snapshot as uncompressed ``.npy`` chunks under ``replay/``
(each chunk file atomic as well) and pickles only its counters and its *manifest*, the list of
chunks that hold its live rows (``learning/transition_rings.py``, ``TransitionRings``; the
chunk context is ``infrastructure/replay_chunks.py``). The new
``params.pkl`` is moved into place after all its chunks exist, and only then are the chunks
that no manifest names any more deleted, so a kill at any moment leaves the previous snapshot
and every chunk it names intact. A snapshot writes the networks, optimizers, temperatures,
counters and RNG states in full, and of the replay only what is new: at MT10's capacity an
epoch adds 50,000 rows (a few MB) to a replay of up to 10 million (GBs).

Beside ``params.pkl`` a small ``snapshot.json`` records how many epochs the snapshot has
completed, so ``run.py resume`` can check a request without unpickling the learner
(``infrastructure/snapshot_info.py`` reads it), and the chunk files the snapshot needs.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import cloudpickle
from garage.experiment import Snapshotter

from infrastructure.replay_chunks import read_replay_chunks, write_replay_chunks
from infrastructure.snapshot_info import (
    INFO_FILE,
    PARAMS_FILE,
    REPLAY_DIR,
    TEMPORARY_PATTERN,
    atomic_write,
)


def atomic_pickle(obj: Any, path: str) -> int:
    """Writes ``cloudpickle(obj)`` to ``path`` atomically; returns the file's inode."""
    return atomic_write(path, lambda file: cloudpickle.dump(obj, file))


def remove_stray_temporaries(snapshot_dir: str) -> list[str]:
    """Deletes the temporary files a killed save left behind; returns their paths."""
    stray = sorted(
        glob.glob(os.path.join(snapshot_dir, TEMPORARY_PATTERN))
        + glob.glob(os.path.join(snapshot_dir, REPLAY_DIR, TEMPORARY_PATTERN))
    )
    for path in stray:
        os.unlink(path)
    return stray


def remove_unreferenced_chunks(snapshot_dir: str, referenced: set[str]) -> list[str]:
    """Deletes the chunk files of ``replay/`` that the current snapshot does not name (rows
    overwritten since, or chunks of a save that was killed); returns their names."""
    directory = os.path.join(snapshot_dir, REPLAY_DIR)
    if not os.path.isdir(directory):
        return []
    unreferenced = sorted(
        name for name in os.listdir(directory) if name.endswith('.npy') and name not in referenced
    )
    for name in unreferenced:
        os.unlink(os.path.join(directory, name))
    return unreferenced


class AtomicSnapshotter(Snapshotter):
    """Writes the replay chunks, then ``params.pkl`` atomically, then ``snapshot.json``
    (module docstring); ``load`` reads the chunks back.

    Which epochs are saved is the trainer's decision (``run_lifecycle.ExactTrainer``): every
    call here writes. Only the latest snapshot is kept.
    """

    def save_itr_params(self, itr: int, params: Any) -> None:
        with write_replay_chunks(self.snapshot_dir) as session:
            inode = atomic_pickle(params, os.path.join(self.snapshot_dir, PARAMS_FILE))
        remove_unreferenced_chunks(self.snapshot_dir, session.referenced)
        info = json.dumps(
            {
                'epochs_done': int(params.get('epochs_done', itr + 1)),
                'params_inode': inode,
                'replay_chunks': sorted(session.referenced),
            }
        ).encode()
        atomic_write(os.path.join(self.snapshot_dir, INFO_FILE), lambda file: file.write(info))

    def load(self, load_dir: str, itr: str | int = 'last') -> Any:
        """garage's ``load``, with the replay stores' rows read from their chunks.

        Raises:
            learning.transition_rings.ReplaySnapshotError: a chunk the snapshot names is
                missing or does not hold the rows its manifest says.
        """
        with read_replay_chunks(load_dir):
            return super().load(load_dir, itr)
