"""Per-run numbers of a results table: when a task was solved, final success, what its Q-switch
selected.

For every run directory (``progress.csv`` and ``variant.json``, trimmed or not) it prints one
line: the method, seed, the first epoch at which ``--task``'s evaluation success reached
``--solved`` (0.9 by default; "-" if never), the final success of that task and of all tasks,
and, for QMP runs, the share of ``--task``'s collection steps that each policy acted
(``Train/Task{i}/Policy{j}Freq``, mean over epochs), over the whole run, over the epochs
before the first success (where sharing can have caused it) and over the epochs from it on.
The README's Results tables quote these lines.

    python tools/run_summary.py results/shared_path/runs/* --task 0
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


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


def _value(cell: str | None) -> float:
    return float(cell) if cell not in ('', None) else math.nan


def _mean(values: Sequence[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return sum(finite) / len(finite) if finite else math.nan


def summarise_run(run_dir: Path, task: int, solved: float) -> RunSummary:
    """The ``RunSummary`` of ``run_dir``'s ``progress.csv`` for ``task``."""
    with open(run_dir / 'progress.csv', newline='') as file:
        rows = list(csv.DictReader(file))
    config = json.loads((run_dir / 'variant.json').read_text())['config']
    success_key = f'Evaluation/Task{task}/SuccessRate'
    evaluated = [row for row in rows if row.get(success_key) not in ('', None)]
    solved_epoch = next(
        (int(row['Epoch']) for row in evaluated if _value(row[success_key]) >= solved), None
    )
    policies = sorted(
        int(key.rsplit('Policy', 1)[1][: -len('Freq')])
        for key in rows[0]
        if key.startswith(f'Train/Task{task}/Policy') and key.endswith('Freq')
    )

    def shares(selected_rows: list[dict[str, str]]) -> tuple[float, ...]:
        return tuple(
            _mean([_value(row[f'Train/Task{task}/Policy{j}Freq']) for row in selected_rows])
            for j in policies
        )

    solved_rows = solved_epoch is not None and bool(policies)
    before = [row for row in rows if solved_rows and int(row['Epoch']) < solved_epoch]
    after = [row for row in rows if solved_rows and int(row['Epoch']) >= solved_epoch]
    return RunSummary(
        name=f'{config["method"]} {config["name"]} seed {config["seed"]}',
        solved_epoch=solved_epoch,
        final_task=_value(evaluated[-1][success_key]) if evaluated else math.nan,
        final_all=_value(evaluated[-1]['Evaluation/SuccessRate']) if evaluated else math.nan,
        selection=shares(rows),
        selection_before=shares(before) if before else (),
        selection_after=shares(after) if after else (),
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
    parser.add_argument('run_dirs', nargs='+', type=Path, help='run directories')
    parser.add_argument('--task', type=int, default=0, help='the task to report (default 0)')
    parser.add_argument(
        '--solved', type=float, default=0.9, help='success that counts as solved (default 0.9)'
    )
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.run_dirs if not (path / 'progress.csv').is_file()]
    if missing:
        parser.exit(2, f'run_summary.py: error: no progress.csv in {missing[0]}\n')
    print(
        f'acted: share of task {args.task} collection steps per policy 0, 1, ... (mean over epochs)'
    )
    for run_dir in args.run_dirs:
        print(format_summary(summarise_run(run_dir, args.task, args.solved), args.task))
    return 0


if __name__ == '__main__':
    sys.exit(main())
