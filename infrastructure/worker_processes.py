"""Worker processes that own some envs and answer their parent's commands over a pipe.

The vectorised sampler (``--n_workers``) and the lockstep evaluator step their envs in such
processes, so that a machine's cores each run a share of the simulation. A worker holds one
*runner*: an object with ``handle(command, payload)`` (its answer goes back to the parent)
and ``close()``. The runner arrives pickled, so its envs and policy copy are built in the
worker; every later message is one command and its answer.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from garage.experiment import deterministic

# Seeds of the worker processes' generators: the run's seed plus this plus the worker's index.
WORKER_SEED_OFFSET = 1_000


class Runner(Protocol):
    """What a worker process runs: answers commands, closes its envs at the end."""

    def handle(self, command: str, payload: Any) -> Any: ...

    def close(self) -> None: ...


def _worker_main(connection: Any, runner_bytes: bytes, seed: int | None) -> None:
    """A worker process: answers its parent's commands until ``close`` or a broken pipe.

    It exits when the parent closes it or when its pipe breaks (the parent's process died), so
    it never outlives the run; Ctrl-C is left to the parent's process, which closes it. Acting
    is fastest on one torch thread (``infrastructure/torch_threads.py``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if seed is not None:
        deterministic.set_seed(seed)
    runner: Runner = pickle.loads(runner_bytes)
    try:
        while True:
            try:
                command, payload = connection.recv()
            except EOFError:
                return
            if command == 'close':
                return
            try:
                connection.send(('ok', runner.handle(command, payload)))
            except Exception:  # pylint: disable=broad-except  (reported to the parent)
                connection.send(('error', traceback.format_exc()))
    finally:
        runner.close()
        connection.close()


class WorkerProcess:
    """The parent's handle on one worker process running ``runner``.

    Args:
        runner: pickled into the new (spawned) process.
        seed: seed of the worker's Python, NumPy and torch generators (None: not seeded).
        role: what the worker does, for error messages (``'a VectorizedSampler worker'``).
    """

    def __init__(self, runner: Runner, seed: int | None, role: str = 'a worker') -> None:
        context = multiprocessing.get_context('spawn')
        self.role = role
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, daemon=True, args=(child, pickle.dumps(runner), seed)
        )
        self.process.start()
        child.close()

    def send(self, command: str, payload: Any) -> None:
        self.connection.send((command, payload))

    def receive(self) -> Any:
        """The answer to the oldest command not yet answered.

        Raises:
            RuntimeError: with the worker's traceback, when the command failed there.
        """
        status, payload = self.connection.recv()
        if status == 'error':
            raise RuntimeError(f'{self.role} failed:\n{payload}')
        return payload

    def close(self) -> None:
        """Asks the worker to stop and waits for it (terminating it if it does not)."""
        try:
            self.connection.send(('close', None))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self.connection.close()


def deal_rows(n_rows: int, n_workers: int) -> list[list[int]]:
    """Rows ``0 .. n_rows - 1`` dealt round-robin: worker w owns w, w + n_workers, ... so that
    neighbouring tasks (a benchmark's order often groups costly ones: MT10's first three step
    slowest) go to different workers."""
    return [list(range(index, n_rows, n_workers)) for index in range(n_workers)]


class WorkerPool:
    """Worker processes, worker w owning the rows ``deal_rows(n_rows, n)[w]``.

    Args:
        n_rows: the rows (envs) to share out.
        n_workers: processes to start.
        make_runner: the runner of the worker that owns the given rows.
        seed: the run's seed (worker w's generators get ``seed + WORKER_SEED_OFFSET + w``).
        role: what the workers do, for error messages.
    """

    def __init__(
        self,
        n_rows: int,
        n_workers: int,
        make_runner: Callable[[list[int]], Runner],
        seed: int | None,
        role: str,
    ) -> None:
        self.n_workers = n_workers
        self.workers = [
            WorkerProcess(
                make_runner(rows),
                None if seed is None else seed + WORKER_SEED_OFFSET + index,
                role,
            )
            for index, rows in enumerate(deal_rows(n_rows, n_workers))
        ]

    def broadcast(self, command: str, payload: Any) -> list[Any]:
        """Sends one command to every worker; their answers, in worker order."""
        for worker in self.workers:
            worker.send(command, payload)
        return [worker.receive() for worker in self.workers]

    def run_rows(self, command: str, rows: Sequence[int]) -> list[Any]:
        """Sends each owner its rows of ``rows`` (in order) as the payload of ``command``; each
        answers one item per row. Returns the items in the order of ``rows``."""
        shares: dict[int, list[int]] = {}
        for row in rows:
            shares.setdefault(row % self.n_workers, []).append(row)
        for index, share in shares.items():
            self.workers[index].send(command, share)
        by_row: dict[int, Any] = {}
        for index, share in shares.items():
            by_row.update(zip(share, self.workers[index].receive(), strict=True))
        return [by_row[row] for row in rows]

    def close(self) -> None:
        """Closes every worker (waiting for it)."""
        for worker in self.workers:
            worker.close()
