"""``tools/trim_runs.py`` keeps what the figures read and nothing else."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import trim_runs  # noqa: E402  (a script, not a package)


def _run_dir(root, name='qmp_dnc_X_s_1'):
    run = root / name
    run.mkdir()
    (root / 'checkout').mkdir(exist_ok=True)
    (root / 'checkout' / 'run.py').write_text('')
    log_root = root / 'checkout' / 'data' / 'sweeps'
    variant = {'config': {'method': 'qmp_dnc', 'log_root': str(log_root)}}
    (run / 'variant.json').write_text(json.dumps(variant))
    (run / 'params.pkl').write_bytes(b'big')
    columns = [
        'Epoch',
        'TotalEnvSteps',
        'Evaluation/SuccessRate',
        'Evaluation/Task1/SuccessRate',
        'Evaluation/Mixture/AverageReturn',
        'Train/Task0/Policy1Freq',
        'Train/Task0/SuccessRate',
        'Time/Update',
        'Evaluation/Task1/AverageDiscountedReturn',
    ]
    with open(run / 'progress.csv', 'w', newline='') as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerow(range(len(columns)))
        writer.writerow([9, 10, '', '', '', 0.5, 1, 2, 3])
    return run


def test_keeps_the_plotted_columns_and_every_row(tmp_path):
    run = _run_dir(tmp_path)
    assert trim_runs.trim_run(str(run), str(tmp_path / 'out')) == 2
    out = tmp_path / 'out' / run.name
    assert sorted(p.name for p in out.iterdir()) == ['progress.csv', 'variant.json']
    with open(out / 'progress.csv', newline='') as file:
        rows = list(csv.reader(file))
    assert rows[0] == [
        'Epoch',
        'TotalEnvSteps',
        'Evaluation/SuccessRate',
        'Evaluation/Task1/SuccessRate',
        'Evaluation/Mixture/AverageReturn',
        'Train/Task0/Policy1Freq',
    ]
    assert rows[1:] == [['0', '1', '2', '3', '4', '5'], ['9', '10', '', '', '', '0.5']]
    # The log root is named relative to the checkout, never by a path of this machine.
    assert json.loads((out / 'variant.json').read_text()) == {
        'config': {'method': 'qmp_dnc', 'log_root': os.path.join('data', 'sweeps')}
    }


def test_a_log_root_outside_any_checkout_keeps_only_its_name(tmp_path):
    assert trim_runs.portable_log_root(str(tmp_path / 'somewhere' / 'runs')) == 'runs'


def test_a_folder_that_is_not_a_run_is_refused_in_one_line(tmp_path):
    (tmp_path / 'empty').mkdir()
    result = subprocess.run(
        [
            sys.executable,
            'tools/trim_runs.py',
            str(tmp_path / 'empty'),
            '--out',
            str(tmp_path / 'out'),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and 'not a run directory' in result.stderr
    assert not (tmp_path / 'out').exists()
