"""Atomic snapshots that say which epoch they hold.

garage's ``Snapshotter`` opens the final file and pickles into it, so an interrupted save
destroys the previous snapshot too. Here the pickle goes to a temporary file in the same
directory (``.params-*.tmp``), is flushed to disk, and replaces the old file with one
``os.replace``.

Beside ``params.pkl`` a small ``snapshot.json`` records how many epochs the snapshot has
completed, so ``run.py resume`` can check a request without unpickling the replay buffers
(``learning/snapshot_info.py`` reads it).
"""
from __future__ import annotations

import glob
import json
import os
import tempfile
from typing import Any

import learning.garage_compat  # noqa: F401  (must precede any garage import)

import cloudpickle
from garage.experiment import Snapshotter

from learning.snapshot_info import INFO_FILE, PARAMS_FILE, TEMPORARY_PATTERN


def _atomic_write(path: str, write: Any) -> int:
    """Calls ``write(file)`` on a temporary file that then replaces ``path``; returns the
    new file's inode."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix='.params-', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
            inode = os.fstat(file.fileno()).st_ino
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; a run's files are readable
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return inode


def atomic_pickle(obj: Any, path: str) -> int:
    """Writes ``cloudpickle(obj)`` to ``path`` atomically; returns the file's inode."""
    return _atomic_write(path, lambda file: cloudpickle.dump(obj, file))


def remove_stray_temporaries(snapshot_dir: str) -> list[str]:
    """Deletes the temporary files a killed save left behind; returns their paths."""
    stray = sorted(glob.glob(os.path.join(snapshot_dir, TEMPORARY_PATTERN)))
    for path in stray:
        os.unlink(path)
    return stray


class AtomicSnapshotter(Snapshotter):
    """Writes ``params.pkl`` atomically, then ``snapshot.json`` (module docstring).

    Which epochs are saved is the trainer's decision (``run_lifecycle.ExactTrainer``): every
    call here writes. Only the latest snapshot is kept.
    """

    def save_itr_params(self, itr: int, params: Any) -> None:
        inode = atomic_pickle(params, os.path.join(self.snapshot_dir, PARAMS_FILE))
        info = json.dumps({'epochs_done': int(params.get('epochs_done', itr + 1)),
                           'params_inode': inode}).encode()
        _atomic_write(os.path.join(self.snapshot_dir, INFO_FILE),
                      lambda file: file.write(info))
