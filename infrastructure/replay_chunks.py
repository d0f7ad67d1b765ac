"""The context in which replay stores write and read their rows as snapshot chunk files.

A snapshot does not pickle the replay rows into ``params.pkl``: while ``write_replay_chunks`` is
active, a ring store that is pickled writes its new rows as chunk files and pickles only its
manifest; while ``read_replay_chunks`` is active, a store that is unpickled reads its rows back
(``learning/transition_rings.py``, ``TransitionRings``, does both).
``snapshots.AtomicSnapshotter`` opens these contexts around its save and load; the context is
plumbing, so it lives here and the snapshotter needs nothing from ``learning/``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class ChunkWriteSession:
    """One snapshot's chunk writing: the directory and the chunk files its manifest names."""

    directory: str
    referenced: set[str] = field(default_factory=set)
    store_ids: set[str] = field(default_factory=set)


# Set while a snapshot pickles (``write_replay_chunks``) or loads (``read_replay_chunks``).
_WRITE_SESSION: contextvars.ContextVar[ChunkWriteSession | None] = contextvars.ContextVar(
    'replay_chunk_write_session', default=None
)
_READ_DIR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    'replay_chunk_read_dir', default=None
)


@contextlib.contextmanager
def write_replay_chunks(directory: str) -> Iterator[ChunkWriteSession]:
    """While active, a ring store that is pickled writes its rows added since the previous
    snapshot as ``.npy`` chunks under ``directory/replay`` and pickles only its small state
    and its chunk manifest (see ``TransitionRings.__getstate__``)."""
    session = ChunkWriteSession(directory)
    token = _WRITE_SESSION.set(session)
    try:
        yield session
    finally:
        _WRITE_SESSION.reset(token)


@contextlib.contextmanager
def read_replay_chunks(directory: str) -> Iterator[None]:
    """While active, a ring store unpickled from a chunked snapshot reads its rows from the
    chunks under ``directory/replay``. Unpickled outside it, the store is *detached*: its
    counters are there, its rows are not (enough to replay a policy, not to train)."""
    token = _READ_DIR.set(directory)
    try:
        yield
    finally:
        _READ_DIR.reset(token)


def active_write_session() -> ChunkWriteSession | None:
    """The session of the ``write_replay_chunks`` being pickled under, or None outside one."""
    return _WRITE_SESSION.get()


def active_read_dir() -> str | None:
    """The snapshot directory of the ``read_replay_chunks`` being unpickled under, or None."""
    return _READ_DIR.get()
