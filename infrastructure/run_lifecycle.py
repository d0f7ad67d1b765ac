"""What makes a run survive: exact snapshots, exact resumes, Ctrl-C and a closed console.

``ExactTrainer`` is garage's ``Trainer`` with three changes (docs/deviations.md):

* an epoch's row goes to ``progress.csv`` (and TensorBoard) *before* its snapshot is written, so
  a kill between the two leaves a row that the resume drops and repeats, never a snapshot
  without its row;
* a snapshot records how many epochs it completed (``epochs_done``), the wall time trained so
  far and the state of every global random generator (Python, NumPy, torch); the envs pickle
  their own generators (``environments/gymnasium_adapter.py``). A resume restores them, so a
  run killed and resumed writes the same metrics as an uninterrupted one (local sampler);
* ``snapshot_gap`` k writes ``params.pkl`` after every k-th epoch and after the last one.

``run_guard`` turns Ctrl-C into one line and exit code 130, and writes the traceback of any
other error to ``debug.log``. Python raises ``KeyboardInterrupt`` wherever the main thread is
when the signal arrives; raised inside a finalizer (``__del__``, run by the garbage collector,
e.g. just after a snapshot), it is printed as "Exception ignored" and lost. So the guard's
handler also records the request on the trainer, which raises it again at the end of the epoch;
``protect_stdout`` keeps a closed console (``run.py ... | head``)
from stopping the run.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from dowel import logger, tabular
from garage.experiment.deterministic import set_seed
from garage.experiment.experiment import ExperimentContext
from garage.trainer import Trainer

from infrastructure.snapshot_info import recorded_snapshot_epochs
from infrastructure.snapshots import AtomicSnapshotter, remove_stray_temporaries

INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def capture_rng_state() -> dict[str, Any]:
    """The states of the global generators that training draws from."""
    state: dict[str, Any] = {
        'python': random.getstate(),
        'numpy': np.random.get_state(),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['torch_cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Sets the global generators to ``capture_rng_state``'s result."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'torch_cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['torch_cuda'])


class ExactTrainer(Trainer):
    """garage's ``Trainer`` with exact snapshots and resumes (module docstring).

    Args:
        snapshot_dir: the run directory.
        snapshot_gap: write ``params.pkl`` after every ``snapshot_gap``-th epoch (and the last).
    """

    def __init__(self, snapshot_dir: str, snapshot_gap: int = 1) -> None:
        super().__init__(
            ExperimentContext(snapshot_dir=snapshot_dir, snapshot_mode='last', snapshot_gap=1)
        )
        self._snapshotter = AtomicSnapshotter(snapshot_dir, 'last', 1)
        self.snapshot_gap = snapshot_gap
        self.epochs_done = 0  # epochs completed (logged) so far
        self.snapshot_epochs: int | None = None  # epochs the latest snapshot holds
        self._wall_time_before = 0.0  # seconds trained by earlier sessions of this run
        self._session_start = time.time()
        self._pending_rng_state: dict[str, Any] | None = None
        # Set by ``run_guard``'s Ctrl-C handler; checked at the end of every epoch.
        self.interrupt_requested = False

    @property
    def algo(self) -> Any:
        """The learner being trained (garage's ``Trainer`` keeps it private, as ``_algo``)."""
        return self._algo

    @property
    def n_epochs(self) -> int | None:
        """The epoch count this session trains to (None before ``train``/``restore``)."""
        return None if self._train_args is None else self._train_args.n_epochs

    def wall_time(self) -> float:
        """Seconds trained so far, earlier sessions of a resumed run included."""
        return self._wall_time_before + time.time() - self._session_start

    def step_epochs(self) -> Iterator[int]:
        """garage's epoch generator, logging each epoch before saving its snapshot."""
        self._start_time = time.time()
        self.step_itr = self._stats.total_itr
        self.step_episode = None
        n_epochs = self._train_args.n_epochs
        for epoch in range(self._train_args.start_epoch, n_epochs):
            self._itr_start_time = time.time()
            with logger.prefix(f'epoch {epoch + 1}/{n_epochs} | '):
                yield epoch
                self._stats.last_episode = (
                    self.step_episode if self._train_args.store_episodes else None
                )
                self._stats.total_epoch = epoch
                self._stats.total_itr = self.step_itr
                self.epochs_done = epoch + 1
                if self.enable_logging:
                    self.log_diagnostics(self._train_args.pause_for_plot)
                    logger.dump_all(self.step_itr)
                    tabular.clear()
                if self.epochs_done % self.snapshot_gap == 0 or self.epochs_done == n_epochs:
                    self.save(epoch)
            self.raise_if_interrupted()

    def raise_if_interrupted(self) -> None:
        """Raises the ``KeyboardInterrupt`` of a Ctrl-C whose first one was swallowed."""
        if self.interrupt_requested:
            raise KeyboardInterrupt

    def log_diagnostics(self, pause_for_plot: bool = False) -> None:
        """garage's diagnostics plus the ``Epoch`` (epochs done) and ``WallTime`` columns."""
        tabular.record('Epoch', self.epochs_done)
        tabular.record('WallTime', self.wall_time())
        super().log_diagnostics(pause_for_plot)

    def save(self, epoch: int) -> None:
        """Writes the snapshot of epoch ``epoch`` (0-based) with its RNG states."""
        logger.log('Saving snapshot...')
        params = {
            'seed': self._seed,
            'train_args': self._train_args,
            'stats': self._stats,
            'env': self._env,
            'algo': self._algo,
            'n_workers': self._n_workers,
            'worker_class': self._worker_class,
            'worker_args': self._worker_args,
            'epochs_done': epoch + 1,
            'wall_time': self.wall_time(),
            'rng_state': capture_rng_state(),
        }
        self._snapshotter.save_itr_params(epoch, params)
        self.snapshot_epochs = epoch + 1
        logger.log(f'Saved the snapshot of epoch {epoch + 1}')

    def restore(self, from_dir: str, from_epoch: str | int = 'last') -> Any:
        """Loads the snapshot in ``from_dir``; training continues after its epoch with the
        generators as they were when it was written (applied by ``resume``)."""
        saved = self._snapshotter.load(from_dir, from_epoch)
        self._seed = saved['seed']
        self._train_args = saved['train_args']
        self._stats = saved['stats']
        set_seed(self._seed)
        self.setup(env=saved['env'], algo=saved['algo'])
        self.epochs_done = int(saved.get('epochs_done', self._stats.total_epoch + 1))
        self.snapshot_epochs = self.epochs_done
        self._wall_time_before = float(saved.get('wall_time', 0.0))
        self._pending_rng_state = saved.get('rng_state')
        self._train_args.start_epoch = self.epochs_done
        logger.log(
            f'Restored the snapshot of epoch {self.epochs_done} '
            f'({self._stats.total_env_steps} env steps) from {from_dir}'
        )
        return copy.copy(self._train_args)

    def resume(
        self,
        n_epochs: int | None = None,
        batch_size: int | None = None,
        plot: bool | None = None,
        store_episodes: bool | None = None,
        pause_for_plot: bool | None = None,
    ) -> float:
        """garage's ``resume``, with the snapshot's generator states set right before the first
        epoch (after the learner has been moved to its device)."""
        self._session_start = time.time()
        if self._pending_rng_state is not None:
            restore_rng_state(self._pending_rng_state)
            self._pending_rng_state = None
        return super().resume(n_epochs, batch_size, plot, store_episodes, pause_for_plot)


def interrupt_message(trainer: ExactTrainer, snapshot_dir: str, resume_flags: str = '') -> str:
    """The one line printed on Ctrl-C: where it stopped and how to continue."""
    n_epochs = trainer.n_epochs
    where = f'epoch {trainer.epochs_done + 1}/{n_epochs}' if n_epochs is not None else 'set-up'
    # What is on disk: a Ctrl-C right after a save may come before the trainer counted it.
    on_disk = recorded_snapshot_epochs(snapshot_dir)
    held = on_disk if on_disk is not None else trainer.snapshot_epochs
    if held is None:
        return (
            f'interrupted at {where}, before the first snapshot: nothing to resume '
            f'(logs in {snapshot_dir})'
        )
    repeat = ''
    if held < trainer.epochs_done:
        repeat = f' (the snapshot holds epoch {held}; later ones are redone)'
    return (
        f'interrupted at {where}; continue with: python run.py resume --snapshot_dir '
        f'{snapshot_dir}{resume_flags}{repeat}'
    )


@contextlib.contextmanager
def run_guard(trainer: ExactTrainer, snapshot_dir: str, resume_flags: str = '') -> Iterator[None]:
    """Ctrl-C: removes stray snapshot temporaries, prints ``interrupt_message`` and exits with
    code 130 (no traceback). Any other error: its traceback goes to ``debug.log``, then it
    propagates."""

    def on_sigint(signum: int, frame: Any) -> None:
        trainer.interrupt_requested = True
        raise KeyboardInterrupt

    trainer.interrupt_requested = False
    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except KeyboardInterrupt:
        remove_stray_temporaries(snapshot_dir)
        message = interrupt_message(trainer, snapshot_dir, resume_flags)
        logger.log(message)
        print(f'run.py: {message}', file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
    except Exception:
        logger.log(f'The run failed:\n{traceback.format_exc()}')
        raise
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        trainer.interrupt_requested = False


class _PipeSafeStream:
    """A text stream that, once its reader has gone (``BrokenPipeError``), points the file
    descriptor at ``os.devnull`` and drops further output instead of raising; also keeps the
    interpreter's final flush from failing."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self._stream.write(text)
                self._stream.flush()
            except BrokenPipeError:
                self._drop_output()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop_output()

    def _drop_output(self) -> None:
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def protect_stdout() -> None:
    """Makes ``sys.stdout`` survive a closed reader (console output only: the run's files are
    written as before). Idempotent."""
    if not isinstance(sys.stdout, _PipeSafeStream):
        sys.stdout = _PipeSafeStream(sys.stdout)
