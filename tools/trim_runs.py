"""Copy run directories into ``results/`` with only what the figures need.

A run directory holds snapshots, replay chunks and TensorBoard events (hundreds of MB on a paper
env); a committed result needs only ``variant.json`` and the ``progress.csv`` columns that
``plot.py`` draws: ``TotalEnvSteps``, the evaluation success rate and return (overall, per task
and of the mixture) and the Q-switch selection frequencies ``Train/Task{i}/Policy{j}Freq``.
Rows of epochs without an evaluation are kept (their selection frequencies feed the heatmaps).
``variant.json`` is copied with its ``log_root`` made relative to the checkout that holds it
(the folder with ``run.py`` above the run), so no path of the machine that ran it is committed.

    python tools/trim_runs.py data/local/sweeps/jaco/*_small_* --out results/jaco/runs
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys

KEPT_COLUMNS = re.compile(
    r'Epoch|TotalEnvSteps'
    r'|Evaluation/(Mixture/)?(Task\d+/)?(SuccessRate|AverageReturn)'
    r'|Train/Task\d+/Policy\d+Freq'
)


def portable_log_root(log_root: str) -> str:
    """``log_root`` relative to the checkout above it (its nearest ancestor holding ``run.py``);
    only its last component when it lies in none."""
    folder = os.path.abspath(log_root)
    candidate = folder
    while os.path.dirname(candidate) != candidate:
        if os.path.isfile(os.path.join(candidate, 'run.py')):
            return os.path.relpath(folder, candidate)
        candidate = os.path.dirname(candidate)
    return os.path.basename(folder)


def trim_run(run_dir: str, out_dir: str) -> int:
    """Write ``out_dir/<run name>/{variant.json, progress.csv}``; returns the rows copied."""
    target = os.path.join(out_dir, os.path.basename(os.path.normpath(run_dir)))
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(run_dir, 'variant.json')) as file:
        variant = json.load(file)
    config = variant.get('config', {})
    if isinstance(config.get('log_root'), str):
        config['log_root'] = portable_log_root(config['log_root'])
    with open(os.path.join(target, 'variant.json'), 'w') as file:
        json.dump(variant, file, indent=2)
    with open(os.path.join(run_dir, 'progress.csv'), newline='') as source:
        reader = csv.DictReader(source)
        columns = [name for name in reader.fieldnames or () if KEPT_COLUMNS.fullmatch(name)]
        rows = [{name: row[name] for name in columns} for row in reader]
    with open(os.path.join(target, 'progress.csv'), 'w', newline='') as sink:
        writer = csv.DictWriter(sink, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('run_dirs', nargs='+', help='run directories (variant.json + progress.csv)')
    parser.add_argument('--out', required=True, help='folder that receives one folder per run')
    args = parser.parse_args(argv)
    missing = [
        run
        for run in args.run_dirs
        if not all(
            os.path.isfile(os.path.join(run, name)) for name in ('variant.json', 'progress.csv')
        )
    ]
    if missing:
        print(
            f'trim_runs.py: not a run directory (needs variant.json and progress.csv): '
            f'{missing[0]}',
            file=sys.stderr,
        )
        return 2
    for run in args.run_dirs:
        print(f'{run}: {trim_run(run, args.out)} rows')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
