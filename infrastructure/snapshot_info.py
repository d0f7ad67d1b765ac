"""Which epoch a run's snapshot holds, read without importing garage (for ``run.py resume``).

``infrastructure/snapshots.py`` writes ``snapshot.json`` beside ``params.pkl``: the number of epochs
the snapshot completed and the inode of the ``params.pkl`` it describes (a kill between the two
writes leaves a ``snapshot.json`` that no longer matches; the snapshot itself is then read).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from typing import IO, Any

PARAMS_FILE = 'params.pkl'
INFO_FILE = 'snapshot.json'
TEMPORARY_PATTERN = '.params-*.tmp'
# Where the replay stores' chunks live, inside the run directory (``learning/transition_rings.py``).
REPLAY_DIR = 'replay'


def atomic_write(path: str, write: Callable[[IO[bytes]], object]) -> int:
    """Calls ``write(file)`` on a temporary file (``TEMPORARY_PATTERN``) in ``path``'s
    directory, flushes it to disk and moves it onto ``path`` with one ``os.replace``, so that
    ``path`` holds either its old or its new content, whenever the process is killed.
    Returns the new file's inode."""
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
        # A Ctrl-C may arrive just after ``os.replace`` moved the temporary file.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return inode


def current_snapshot_info(snapshot_dir: str) -> dict[str, Any] | None:
    """``snapshot.json`` when it describes the current ``params.pkl`` (same inode), else None
    (no such file, unreadable, or left stale by a kill between the two writes)."""
    try:
        with open(os.path.join(snapshot_dir, INFO_FILE)) as file:
            info = json.load(file)
        if info['params_inode'] == os.stat(os.path.join(snapshot_dir, PARAMS_FILE)).st_ino:
            return info
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def missing_replay_chunks(snapshot_dir: str) -> list[str]:
    """The replay chunk files (``replay/``) that the current snapshot names but that are not
    there, read from ``snapshot.json`` when it describes the current ``params.pkl``; [] when it
    does not (loading the snapshot then checks the chunks itself)."""
    info = current_snapshot_info(snapshot_dir)
    names = [str(name) for name in info.get('replay_chunks', [])] if info else []
    directory = os.path.join(snapshot_dir, REPLAY_DIR)
    return [name for name in names if not os.path.isfile(os.path.join(directory, name))]


def recorded_snapshot_epochs(snapshot_dir: str) -> int | None:
    """The epochs of ``snapshot.json`` when it describes the current ``params.pkl``, else None;
    cheap, never unpickles."""
    info = current_snapshot_info(snapshot_dir)
    try:
        return int(info['epochs_done']) if info is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def snapshot_epochs(snapshot_dir: str) -> int:
    """Number of epochs the run's ``params.pkl`` has completed.

    Reads ``snapshot.json`` when it describes the current ``params.pkl`` (same inode), else
    unpickles the snapshot (slow for large replay buffers; only after a kill between the two
    writes, or for a run from before ``snapshot.json`` existed).
    """
    recorded = recorded_snapshot_epochs(snapshot_dir)
    if recorded is not None:
        return recorded
    params_path = os.path.join(snapshot_dir, PARAMS_FILE)
    import infrastructure.garage_compat  # noqa: F401  pylint: disable=C0415,W0611

    with open(params_path, 'rb') as file:
        saved = pickle.load(file)
    if 'epochs_done' in saved:
        return int(saved['epochs_done'])
    return int(saved['stats'].total_epoch) + 1  # garage's snapshot: the 0-based epoch
