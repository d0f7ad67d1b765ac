"""Recording metrics to dowel's tabular with a fixed set of keys every epoch.

dowel's CSV output fixes its columns at the first dump and drops keys that appear later, so
every key a run will ever log is recorded every epoch (NaN where there is no value this epoch,
e.g. evaluation keys between evaluations).
"""
from __future__ import annotations

import csv
import os
from typing import Mapping

import numpy as np
from dowel import CsvOutput, tabular
from dowel.simple_outputs import FileOutput


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


class AppendingCsvOutput(CsvOutput):
    """dowel's CSV output that continues an existing ``progress.csv`` (for ``resume``).

    dowel opens its CSV for writing, which would erase the rows of the epochs before the
    snapshot; this one appends, keeping the file's columns and writing no second header.
    """

    def __init__(self, file_name: str) -> None:
        header: list[str] | None = None
        if os.path.exists(file_name) and os.path.getsize(file_name) > 0:
            with open(file_name, newline='') as file:
                header = next(csv.reader(file))
        FileOutput.__init__(self, file_name, mode='a')  # pylint: disable=non-parent-init-called
        self._writer = None
        self._fieldnames = None
        self._warned_once = set()
        self._disable_warnings = False
        if header is not None:
            self._fieldnames = set(header)
            self._writer = csv.DictWriter(self._log_file, fieldnames=header,
                                          extrasaction='ignore')
