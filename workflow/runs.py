"""Reading finished or running run directories: ``variant.json`` and ``progress.csv``.

A run directory is what ``run.py`` writes (``<log_root>/<method>_<env>_<name>_<seed>``). Only
its plain-text files are read here, so nothing heavy (torch, garage) is imported, except by
``count_epochs`` on a run with a snapshot.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RunData:
    """One run: its resolved configuration and its logged columns (NaN where empty)."""

    run_dir: str
    config: dict[str, Any]
    columns: dict[str, np.ndarray] = field(repr=False)

    @property
    def method(self) -> str:
        return str(self.config['method'])

    @property
    def env(self) -> str:
        return str(self.config['env'])

    @property
    def seed(self) -> int:
        return int(self.config['seed'])

    @property
    def name(self) -> str:
        return str(self.config.get('name', 'None'))

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def epochs(self) -> np.ndarray:
        """The ``Epoch`` column when logged, else the row index (one row per epoch)."""
        if 'Epoch' in self.columns:
            return self.columns['Epoch']
        return np.arange(self.n_rows, dtype=np.float64)


def read_config(run_dir: str) -> dict[str, Any]:
    """The resolved configuration in ``variant.json`` (``run.py`` stores it under ``config``)."""
    with open(os.path.join(run_dir, 'variant.json')) as file:
        return json.load(file)['config']


def count_epochs(run_dir: str) -> int:
    """Epochs the run's snapshot has completed, the epochs a resume keeps: ``snapshot.json``'s
    count (``infrastructure/snapshot_info.py``). A run without ``snapshot.json`` (written before it
    existed), or whose snapshot cannot be read, counts the data rows of ``progress.csv`` (one
    per finished epoch); 0 when neither file exists."""
    if os.path.isfile(os.path.join(run_dir, 'snapshot.json')):
        # Imported here: the infrastructure package brings garage, which nothing else here needs.
        from infrastructure.snapshot_info import snapshot_epochs  # pylint: disable=C0415

        try:
            return snapshot_epochs(run_dir)
        except (
            OSError,
            EOFError,
            pickle.UnpicklingError,
            AttributeError,
            ImportError,
            KeyError,
            TypeError,
            ValueError,
        ):
            pass  # a stale snapshot.json beside a params.pkl that does not load
    path = os.path.join(run_dir, 'progress.csv')
    if not os.path.isfile(path):
        return 0
    with open(path, newline='') as file:
        return max(sum(1 for _ in csv.reader(file)) - 1, 0)


def read_columns(run_dir: str) -> dict[str, np.ndarray]:
    """Every column of ``progress.csv`` as floats; empty or non-numeric cells are NaN."""
    with open(os.path.join(run_dir, 'progress.csv'), newline='') as file:
        rows = list(csv.DictReader(file))
    keys = list(rows[0]) if rows else []
    columns = {key: np.full(len(rows), math.nan) for key in keys}
    for index, row in enumerate(rows):
        for key in keys:
            try:
                columns[key][index] = float(row[key])
            except (TypeError, ValueError):
                pass
    return columns


def load_run(run_dir: str) -> RunData:
    """Configuration and columns of the run in ``run_dir``."""
    return RunData(run_dir=run_dir, config=read_config(run_dir), columns=read_columns(run_dir))


def is_run_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, 'variant.json')) and os.path.isfile(
        os.path.join(path, 'progress.csv')
    )


def find_run_dirs(paths: Iterable[str]) -> list[str]:
    """Run directories among ``paths``: each path is a run directory, or a folder (a sweep's
    log root) searched recursively for them. Sorted, without duplicates."""
    found: set[str] = set()
    for path in paths:
        if is_run_dir(path):
            found.add(os.path.normpath(path))
            continue
        for root, dirs, _ in os.walk(path):
            if is_run_dir(root):
                found.add(os.path.normpath(root))
                dirs.clear()
    return sorted(found)
