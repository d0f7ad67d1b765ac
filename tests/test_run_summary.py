"""``tools/run_summary.py``: the numbers of a results table row, on a hand-made run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import run_summary  # noqa: E402

HEADER = (
    'Epoch,Evaluation/SuccessRate,Evaluation/Task0/SuccessRate,'
    'Train/Task0/Policy0Freq,Train/Task0/Policy1Freq'
)
ROWS = (
    '0,0.0,0.0,0.5,0.5',
    '1,,,0.3,0.7',  # no evaluation this epoch: it counts for the selections only
    '2,0.5,0.95,0.9,0.1',
    '3,0.75,0.8,1.0,0.0',
)


def make_run(tmp_path, method='qmp_dnc', rows=ROWS, header=HEADER):
    run_dir = tmp_path / f'{method}_run'
    run_dir.mkdir()
    (run_dir / 'progress.csv').write_text('\n'.join((header, *rows)) + '\n')
    config = {'method': method, 'name': 'small', 'seed': 3}
    (run_dir / 'variant.json').write_text(json.dumps({'config': config}))
    return run_dir


def test_solved_epoch_final_values_and_selection_shares_by_hand(tmp_path):
    summary = run_summary.summarise_run(make_run(tmp_path), task=0, solved=0.9)
    assert summary.name == 'qmp_dnc small seed 3'
    assert summary.solved_epoch == 2  # first evaluation >= 0.9
    assert (summary.final_task, summary.final_all) == (0.8, 0.75)
    assert summary.selection == pytest.approx(((0.5 + 0.3 + 0.9 + 1.0) / 4, (0.5 + 0.7 + 0.1) / 4))
    assert summary.selection_before == pytest.approx((0.4, 0.6))  # epochs 0 and 1
    assert summary.selection_after == pytest.approx((0.95, 0.05))  # epochs 2 and 3


def test_a_run_that_never_solves_it_and_a_run_without_qmp(tmp_path):
    never = run_summary.summarise_run(make_run(tmp_path), task=0, solved=0.99)
    assert never.solved_epoch is None and never.selection_before == never.selection_after == ()
    plain = make_run(
        tmp_path,
        'dnc_sac',
        rows=('0,0.0,0.0', '1,1.0,1.0'),
        header='Epoch,Evaluation/SuccessRate,Evaluation/Task0/SuccessRate',
    )
    summary = run_summary.summarise_run(plain, task=0, solved=0.9)
    assert summary.solved_epoch == 1 and summary.selection == ()
    assert 'acted' not in run_summary.format_summary(summary, 0)


def test_a_missing_run_is_one_line_and_exit_code_2(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/run_summary.py', str(tmp_path / 'nothing')],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count('\n') == 0 and 'no progress.csv' in result.stderr
