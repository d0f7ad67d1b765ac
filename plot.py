"""Command line: ``python plot.py RUN_DIR_OR_LOG_ROOT... [--out DIR]``.

Writes paper-style learning curves (``curves.png``), a final-performance table
(``final_performance.md``, also printed) and the Q-switch selection heatmaps of the QMP runs
(``selection_*.png``) for every run directory found under the given paths
(``workflow/figures.py``). Method, env and seed come from each run's ``variant.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from workflow.runs import find_run_dirs, load_run


class _UsageError(Exception):
    pass


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog='plot.py',
        description=('Paper-style figures over run directories (or log roots holding them).'),
    )
    parser.add_argument('paths', nargs='+', help='run directories or folders holding them')
    parser.add_argument('--out', default='figures', help='output folder (default: figures)')
    parser.add_argument(
        '--metric',
        choices=('auto', 'success', 'return'),
        default='auto',
        help='y axis: auto = success rate, average return on Walker',
    )
    parser.add_argument(
        '--heatmap_epochs',
        type=int,
        nargs='*',
        default=[0, -1],
        help='epochs of the selection heatmaps (-1 = last; default: 0 -1), '
        'besides the mean over training',
    )
    parser.add_argument(
        '--reps',
        type=int,
        default=2000,
        help='bootstrap resamples of the IQM interval (default: 2000)',
    )
    parser.add_argument(
        '--points', type=int, default=100, help='points of the common step grid (default: 100)'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        missing = [path for path in args.paths if not os.path.exists(path)]
        if missing:
            raise _UsageError(f'no such file or directory: {missing[0]}')
        if args.reps < 1 or args.points < 1:
            raise _UsageError('--reps and --points must be at least 1')
        run_dirs = find_run_dirs(args.paths)
        runs = [run for run in map(load_run, run_dirs) if run.n_rows]
        if not runs:
            raise _UsageError(
                f'no run directories with logged epochs (variant.json and '
                f'progress.csv) under {", ".join(args.paths)}'
            )
    except _UsageError as error:
        print(f'plot.py: error: {error}', file=sys.stderr)
        return 2
    from workflow.figures import write_report  # pylint: disable=C0415  (matplotlib, scipy)

    written = write_report(runs, args.out, args.metric, args.heatmap_epochs, args.reps, args.points)
    with open(written[1]) as file:
        print(file.read(), end='')
    print(f'plot.py: {len(runs)} runs; wrote {", ".join(written)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
