"""Learning-curve PNG from a run's ``progress.csv``: success rate and return vs env steps.

Run as ``python -m infrastructure.plotting LOG_DIR`` to redraw a run's ``learning_curve.png``.
"""

from __future__ import annotations

import csv
import math
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt

SERIES = (
    ('Evaluation/', 'task policies'),
    ('Evaluation/Mixture/', 'Q-switch mixture'),
    ('Train/', 'training episodes'),
)


def _read_columns(csv_path: str) -> dict[str, list[float]]:
    with open(csv_path, newline='') as file:
        rows = list(csv.DictReader(file))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                columns.setdefault(key, []).append(math.nan)
    return columns


def plot_learning_curve(log_dir: str) -> str:
    """Draws ``learning_curve.png`` in ``log_dir``; returns its path."""
    columns = _read_columns(os.path.join(log_dir, 'progress.csv'))
    steps = columns['TotalEnvSteps']
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ('SuccessRate', 'AverageReturn'), strict=True):
        for prefix, label in SERIES:
            values = columns.get(prefix + metric)
            if values is None:
                continue
            points = [(x, y) for x, y in zip(steps, values, strict=True) if not math.isnan(y)]
            if points:
                axis.plot(*zip(*points, strict=True), marker='o', markersize=3, label=label)
        axis.set_xlabel('environment steps (all tasks)')
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(os.path.basename(os.path.normpath(log_dir)))
    figure.tight_layout()
    path = os.path.join(log_dir, 'learning_curve.png')
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python -m infrastructure.plotting LOG_DIR')
    print(plot_learning_curve(sys.argv[1]))
