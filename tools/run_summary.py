"""Per-run numbers of a results table: when a task was solved, final success, what its Q-switch
selected.

For every run directory (``progress.csv`` and ``variant.json``, trimmed or not; a folder is
searched for them, as by ``plot.py``) it prints one line: the method, seed, the first epoch at
which ``--task``'s evaluation success reached ``--solved`` (0.9 by default; "-" if never), the
final success of that task and of all tasks, and, for QMP runs, the share of ``--task``'s
collection steps that each policy acted (``Train/Task{i}/Policy{j}Freq``, mean over epochs),
over the whole run, over the epochs before the first success (where sharing can have caused
it) and over the epochs from it on.
The README's Results tables quote these lines.

    python tools/run_summary.py results/shared_path/runs/* --task 0
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow.runs import find_run_dirs, load_run  # noqa: E402  (reads text files only)


@dataclass(frozen=True)
class RunSummary:
    """What one run's row of a results table says about ``task``."""

    name: str
    solved_epoch: int | None  # first epoch with success >= the threshold
    final_task: float
    final_all: float
    selection: tuple[float, ...]  # share of the task's steps per acting policy; () without QMP
    selection_before: tuple[float, ...]  # the same over the epochs before solved_epoch
    selection_after: tuple[float, ...]  # ... and from it on; both () if never solved


def _finite_mean(values: np.ndarray) -> float:
    """Mean of the logged (non-NaN) values; NaN, without a warning, when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def summarise_run(run_dir: str | Path, task: int, solved: float) -> RunSummary:
    """The ``RunSummary`` of the run in ``run_dir`` for ``task``."""
    run = load_run(str(run_dir))
    columns, epochs = run.columns, run.epochs()
    success = columns[f'Evaluation/Task{task}/SuccessRate']
    evaluated = np.flatnonzero(~np.isnan(success))
    reached = evaluated[success[evaluated] >= solved]
    solved_epoch = int(epochs[reached[0]]) if reached.size else None
    frequency = re.compile(rf'Train/Task{task}/Policy(\d+)Freq')
    selections = sorted(
        (int(match[1]), values)
        for key, values in columns.items()
        if (match := frequency.fullmatch(key))
    )

    def shares(rows: np.ndarray) -> tuple[float, ...]:
        return tuple(_finite_mean(values[rows]) for _, values in selections)

    every = np.ones(run.n_rows, bool)
    split = solved_epoch is not None and bool(selections)
    before = epochs < solved_epoch if split else ~every
    last = evaluated[-1] if evaluated.size else None
    return RunSummary(
        name=f'{run.method} {run.name} seed {run.seed}',
        solved_epoch=solved_epoch,
        final_task=math.nan if last is None else float(success[last]),
        final_all=math.nan if last is None else float(columns['Evaluation/SuccessRate'][last]),
        selection=shares(every),
        selection_before=shares(before) if before.any() else (),
        selection_after=shares(~before) if split else (),
    )


def format_summary(summary: RunSummary, task: int) -> str:
    solved = '-' if summary.solved_epoch is None else str(summary.solved_epoch)
    line = (
        f'{summary.name:28s} task {task} solved at epoch {solved:>3s}  final: task {task} '
        f'{summary.final_task:.2f}, all {summary.final_all:.2f}'
    )
    if summary.selection:
        line += '  acted: ' + ' '.join(f'{share:.2f}' for share in summary.selection)
        for label, selection in (
            ('before solved', summary.selection_before),
            ('from then on', summary.selection_after),
        ):
            if selection:
                line += f'  {label}: ' + ' '.join(f'{share:.2f}' for share in selection)
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('paths', nargs='+', help='run directories or folders holding them')
    parser.add_argument('--task', type=int, default=0, help='the task to report (default 0)')
    parser.add_argument(
        '--solved', type=float, default=0.9, help='success that counts as solved (default 0.9)'
    )
    args = parser.parse_args(argv)
    for path in args.paths:
        if not find_run_dirs([path]):
            parser.exit(2, f'run_summary.py: error: no progress.csv and variant.json in {path}\n')
    print(
        f'acted: share of task {args.task} collection steps per policy 0, 1, ... (mean over epochs)'
    )
    for run_dir in find_run_dirs(args.paths):
        print(format_summary(summarise_run(run_dir, args.task, args.solved), args.task))
    return 0


if __name__ == '__main__':
    sys.exit(main())
