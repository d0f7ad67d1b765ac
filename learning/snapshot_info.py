"""Which epoch a run's snapshot holds, read without importing garage (for ``run.py resume``).

``learning/snapshots.py`` writes ``snapshot.json`` beside ``params.pkl``: the number of epochs
the snapshot completed and the inode of the ``params.pkl`` it describes (a kill between the two
writes leaves a ``snapshot.json`` that no longer matches; the snapshot itself is then read).
"""
from __future__ import annotations

import json
import os
import pickle

PARAMS_FILE = 'params.pkl'
INFO_FILE = 'snapshot.json'
TEMPORARY_PATTERN = '.params-*.tmp'


def snapshot_epochs(snapshot_dir: str) -> int:
    """Number of epochs the run's ``params.pkl`` has completed.

    Reads ``snapshot.json`` when it describes the current ``params.pkl`` (same inode), else
    unpickles the snapshot (slow for large replay buffers; only after a kill between the two
    writes, or for a run from before ``snapshot.json`` existed).
    """
    params_path = os.path.join(snapshot_dir, PARAMS_FILE)
    try:
        with open(os.path.join(snapshot_dir, INFO_FILE)) as file:
            info = json.load(file)
        if info['params_inode'] == os.stat(params_path).st_ino:
            return int(info['epochs_done'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    import learning.garage_compat  # noqa: F401  pylint: disable=C0415,W0611
    with open(params_path, 'rb') as file:
        saved = pickle.load(file)
    if 'epochs_done' in saved:
        return int(saved['epochs_done'])
    return int(saved['stats'].total_epoch) + 1  # garage's snapshot: the 0-based epoch
