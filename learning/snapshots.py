"""Atomic snapshots: a crash while saving never leaves a truncated ``params.pkl``.

garage's ``Snapshotter`` opens the final file and pickles into it, so an interrupted save
destroys the previous snapshot too. Here the pickle goes to a temporary file in the same
directory, is flushed to disk, and replaces the old file with one ``os.replace``.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

import cloudpickle
from garage.experiment import Snapshotter


def atomic_pickle(obj: Any, path: str) -> None:
    """Writes ``cloudpickle(obj)`` to ``path`` atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix='.params-', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as file:
            cloudpickle.dump(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class AtomicSnapshotter(Snapshotter):
    """garage's ``Snapshotter`` for the modes this project uses, with atomic writes.

    ``last`` keeps ``params.pkl`` of the latest epoch; ``gap_overwrite`` rewrites it every
    ``snapshot_gap`` epochs.
    """

    def save_itr_params(self, itr: int, params: Any) -> None:
        if self.snapshot_mode == 'last' or (self.snapshot_mode == 'gap_overwrite'
                                             and itr % self.snapshot_gap == 0):
            atomic_pickle(params, os.path.join(self.snapshot_dir, 'params.pkl'))
        elif self.snapshot_mode not in ('gap_overwrite', 'none'):
            raise ValueError(f'snapshot mode {self.snapshot_mode!r} is not supported here')
