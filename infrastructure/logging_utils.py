"""Recording metrics to dowel's tabular with a fixed set of keys every epoch.

dowel's CSV output fixes its columns at the first dump and drops keys that appear later, so
every key a run will ever log is recorded every epoch (NaN where there is no value this epoch,
e.g. evaluation keys between evaluations).

The dowel outputs of a run are here too: a CSV with a fixed column order that can continue an
existing file, a ``debug.log`` flushed per message, TensorBoard events that a resume can purge
from its snapshot's step on, and the compact console.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorboardX
from dowel import (
    CsvOutput,
    LogOutput,
    StdOutput,
    TabularInput,
    TensorBoardOutput,
    TextOutput,
    logger,
    tabular,
)
from dowel.simple_outputs import FileOutput
from tensorboardX.proto.summary_pb2 import Summary

from infrastructure.videos import VideoRecord, gif_bytes


def close_outputs() -> None:
    """Closes and removes every output of dowel's logger. ``logger.remove_all`` only forgets
    them, leaving their files open; dowel has no public list of its outputs, so this one place
    reads its private ``_outputs``."""
    for output in logger._outputs:  # pylint: disable=protected-access
        output.close()
    logger.remove_all()


def record(prefix: str, values: Mapping[str, float]) -> None:
    """Records ``values`` under ``prefix`` (e.g. ``'Evaluation/'``)."""
    for key, value in values.items():
        tabular.record(f'{prefix}{key}', float(value))


def record_per_task(prefix: str, values: Mapping[str, np.ndarray]) -> None:
    """Records ``values[key][i]`` as ``{prefix}Task{i}/{key}``."""
    for key, per_task in values.items():
        for task_id, value in enumerate(np.asarray(per_task, dtype=np.float64)):
            tabular.record(f'{prefix}Task{task_id}/{key}', float(value))


def nanmean(values: np.ndarray) -> float:
    """Mean over the finite entries; NaN (without a warning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float('nan')


# The columns every progress.csv starts with, in this order; every other key follows sorted, so
# the file's layout does not depend on the order keys were recorded or on PYTHONHASHSEED.
LEADING_COLUMNS = ('Epoch', 'TotalEnvSteps', 'WallTime')
# Columns whose values depend on the machine's speed, not on the run's seed: ``WallTime``, the
# ``Time/...`` phase timings and ``Train/EnvStepsPerSecond``.
WALL_TIME_COLUMNS = ('WallTime', 'Train/EnvStepsPerSecond')


def is_wall_time_column(key: str) -> bool:
    """Whether ``key``'s values measure the machine's speed (they differ between reruns)."""
    return key in WALL_TIME_COLUMNS or key.startswith('Time/')


def column_order(keys: Iterable[str]) -> list[str]:
    """``LEADING_COLUMNS`` (those present) first, then the other keys sorted."""
    keys = set(keys)
    return [key for key in LEADING_COLUMNS if key in keys] + sorted(keys - set(LEADING_COLUMNS))


class OrderedCsvOutput(CsvOutput):
    """dowel's CSV output with a fixed column order (``column_order``).

    dowel keeps its column names in a ``set``, so two runs with the same seed write their
    columns in different orders unless ``PYTHONHASHSEED`` is fixed. Each row is flushed as it is
    written, so a row is on disk before the snapshot of its epoch (``run_lifecycle``).
    With ``append=True`` an existing file is continued: its header is kept and no second one is
    written (``resume``; dowel would truncate the file).
    """

    def __init__(self, file_name: str, append: bool = False) -> None:
        header: list[str] | None = None
        if append and os.path.exists(file_name) and os.path.getsize(file_name) > 0:
            with open(file_name, newline='') as file:
                header = next(csv.reader(file))
        FileOutput.__init__(self, file_name, mode='a' if append else 'w')
        self._writer: csv.DictWriter[str] | None = None
        self._fieldnames: set[str] | None = None
        self._warned_once: set[str] = set()
        self._disable_warnings = False
        if header is not None:
            self._start_writer(header, write_header=False)

    def _start_writer(self, header: list[str], write_header: bool) -> None:
        self._fieldnames = set(header)
        self._writer = csv.DictWriter(self._log_file, fieldnames=header, extrasaction='ignore')
        if write_header:
            self._writer.writeheader()

    def record(self, data: Any, prefix: str = '') -> None:
        if isinstance(data, TabularInput) and self._writer is None and data.as_primitive_dict:
            self._start_writer(column_order(data.as_primitive_dict), write_header=True)
        super().record(data, prefix)
        self._log_file.flush()


class AppendingCsvOutput(OrderedCsvOutput):
    """``OrderedCsvOutput`` continuing an existing ``progress.csv``."""

    def __init__(self, file_name: str) -> None:
        super().__init__(file_name, append=True)


def truncate_progress(file_name: str, epochs_done: int) -> int:
    """Keeps the header and the rows of epochs ``1..epochs_done`` of a ``progress.csv``.

    A resumed run restarts after its snapshot's epoch, so rows written after that snapshot
    would otherwise appear twice. Rows without a complete set of fields (a row cut by a kill)
    are dropped too. Files from before the ``Epoch`` column keep their first ``epochs_done``
    rows. The file is replaced atomically; returns the number of rows dropped.
    """
    with open(file_name, newline='') as file:
        rows = list(csv.reader(file))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    complete = [row for row in body if len(row) == len(header)]
    if 'Epoch' in header:
        column = header.index('Epoch')
        kept = [row for row in complete if _as_epoch(row[column]) <= epochs_done]
    else:
        kept = complete[:epochs_done]
    if len(kept) == len(body):
        return 0
    temporary = f'{file_name}.tmp'
    with open(temporary, 'w', newline='') as file:
        csv.writer(file).writerows([header, *kept])
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, file_name)
    return len(body) - len(kept)


def _as_epoch(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float('inf')


class FlushingTextOutput(TextOutput):
    """dowel's text output (``debug.log``) flushed after every message, so the file shows what
    the run is doing, and holds the last message before a crash or a kill."""

    def record(self, data: Any, prefix: str = '') -> None:
        super().record(data, prefix)
        self._log_file.flush()


class PurgingTensorBoardOutput(TensorBoardOutput):
    """dowel's TensorBoard output; ``purge_step`` hides earlier events at or after that step.

    A resumed run passes the env-step count of its snapshot plus one: tensorboardX then writes a
    new event file that starts with a session-start marker at that step, and TensorBoard drops
    the events of the previous files with ``step >= purge_step`` (the epochs the resume
    repeats). The old event files themselves are left as they are.

    NaN values (a metric with no value this epoch, e.g. evaluation keys between evaluations) are
    left out: TensorBoard draws nothing for them anyway, and tensorboardX would print a warning
    line for each one on every epoch.
    """

    _writer: tensorboardX.SummaryWriter  # set by dowel's __init__

    def __init__(self, log_dir: str, x_axis: str, purge_step: int | None = None) -> None:
        super().__init__(log_dir, x_axis=x_axis)
        if purge_step is not None:
            self._writer.close()
            self._writer = tensorboardX.SummaryWriter(log_dir, purge_step=purge_step)

    @property
    def types_accepted(self) -> tuple[type, ...]:
        return (*super().types_accepted, VideoRecord)

    def record(self, data: Any, prefix: str = '') -> None:
        if isinstance(data, VideoRecord):
            self._record_video(data)
        else:
            super().record(data, prefix)

    def _record_video(self, video: VideoRecord) -> None:
        """An animated GIF image summary, which TensorBoard's Images tab plays (what
        tensorboardX's ``add_video`` writes, without its moviepy dependency)."""
        height, width = video.frames.shape[1:3]
        image = Summary.Image(
            height=height,
            width=width,
            colorspace=3,
            encoded_image_string=gif_bytes(video.frames, video.fps),
        )
        self._writer.file_writer.add_summary(
            Summary(value=[Summary.Value(tag=video.tag, image=image)]), video.step
        )

    def _record_kv(self, key: str, value: Any, step: int) -> None:
        if isinstance(value, float | np.floating) and not np.isfinite(value):
            return
        super()._record_kv(key, value, step)


class ConsoleLine(str):
    """A message that the compact console prints too (other messages go to ``debug.log``)."""


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return '?'
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}'


def _rate(value: Any) -> str:
    return '-' if value is None or not np.isfinite(value) else f'{value:.2f}'


class ConsoleOutput(LogOutput):
    """The console: one compact line per epoch, or dowel's full table with ``table=True``.

    The compact line holds the epoch (``epoch k/N``: k epochs done of N), env steps, the latest
    evaluation's success rate (task policies, and for QMP the mixture; ``-`` in epochs without
    an evaluation), the evaluation and training average returns, env steps per second and the
    elapsed time and ETA of this session. The full table always goes to ``debug.log``.

    Args:
        n_epochs: the epoch count the run trains to.
        table: print dowel's table and every message, as garage does.
        start_epochs: epochs already done when this session started (resume).
        start_env_steps: env steps already collected then.
    """

    def __init__(
        self, n_epochs: int, table: bool = False, start_epochs: int = 0, start_env_steps: int = 0
    ) -> None:
        self._n_epochs = n_epochs
        self._table = StdOutput() if table else None
        self._start_epochs = start_epochs
        self._start_env_steps = start_env_steps
        self._start_time = time.time()

    @property
    def types_accepted(self) -> tuple[type, ...]:
        return (str, TabularInput)

    def record(self, data: Any, prefix: str = '') -> None:
        if self._table is not None:
            self._table.record(data, prefix)
        elif isinstance(data, ConsoleLine):
            print(f'{prefix}{data}', flush=True)
        elif isinstance(data, TabularInput):
            print(self.epoch_line(data.as_primitive_dict), flush=True)
            data.mark_str()

    def epoch_line(self, values: Mapping[str, Any]) -> str:
        """The compact line of one epoch's tabular ``values``."""
        epochs_done = int(values.get('Epoch', 0))
        env_steps = int(values.get('TotalEnvSteps', 0))
        seconds = time.time() - self._start_time
        session_epochs = epochs_done - self._start_epochs
        steps_per_second = (env_steps - self._start_env_steps) / max(seconds, 1e-9)
        eta = (
            (self._n_epochs - epochs_done) * seconds / session_epochs
            if session_epochs > 0
            else float('nan')
        )
        success = _rate(values.get('Evaluation/SuccessRate'))
        if 'Evaluation/Mixture/SuccessRate' in values:
            success += f' (mixture {_rate(values["Evaluation/Mixture/SuccessRate"])})'
        return (
            f'epoch {epochs_done}/{self._n_epochs} | {env_steps:,} env steps | '
            f'eval success {success} | '
            f'return eval {_rate(values.get("Evaluation/AverageReturn"))} '
            f'train {_rate(values.get("Train/AverageReturn"))} | '
            f'{steps_per_second:,.0f} steps/s | {_duration(seconds)} elapsed, '
            f'ETA {_duration(eta)}'
        )

    def dump(self, step: int | None = None) -> None:
        if self._table is not None:
            self._table.dump(step)
