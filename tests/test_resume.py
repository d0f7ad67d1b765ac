"""``run.py resume``: a run continues from its snapshot with its learned state and its logs."""

from __future__ import annotations

import csv
import pickle

import torch
from garage.experiment.experiment import ExperimentContext
from garage.trainer import Trainer

from conftest import TINY_TOY_FLAGS


def test_resume_continues_the_run_and_appends_its_logs(cli, tmp_path):
    result = cli(['qmp_dnc', '--log_root', str(tmp_path), '--n_epochs', '2', *TINY_TOY_FLAGS])
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = tmp_path.iterdir()
    result = cli(['resume', '--snapshot_dir', str(run_dir), '--n_epochs', '3'])
    assert result.returncode == 0, result.stderr[-2000:]
    with open(run_dir / 'progress.csv', newline='') as file:
        rows = list(csv.reader(file))
    header, values = rows[0], rows[1:]
    assert len(values) == 3 and header.count('TotalEnvSteps') == 1
    steps = [float(row[header.index('TotalEnvSteps')]) for row in values]
    assert steps[0] < steps[1] < steps[2]  # the resumed epoch continues the count
    assert [row[header.index('Epoch')] for row in values] == ['1', '2', '3']
    with open(run_dir / 'params.pkl', 'rb') as file:
        saved = pickle.load(file)
    assert saved['epochs_done'] == 3 and saved['stats'].total_epoch == 2  # garage's: 0-based


def test_restore_keeps_the_learned_temperatures(cli, tmp_path):
    result = cli(
        ['dnc_sac', '--log_root', str(tmp_path), '--n_epochs', '2', '--lr', '0.01', *TINY_TOY_FLAGS]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = tmp_path.iterdir()
    with open(run_dir / 'params.pkl', 'rb') as file:
        saved = pickle.load(file)['algo'].log_alpha.detach().clone()
    assert torch.all(saved < -0.05)  # learned: the initial log alpha is 0
    trainer = Trainer(
        ExperimentContext(snapshot_dir=str(run_dir), snapshot_mode='last', snapshot_gap=1)
    )
    trainer.restore(str(run_dir))
    algo = trainer._algo.to('cpu')
    torch.testing.assert_close(algo.log_alpha.detach(), saved)
    algo._sampler.shutdown_worker()


def test_resume_refuses_a_finished_run_by_its_snapshot_not_its_csv_rows(cli, tmp_path):
    result = cli(['dnc_sac', '--log_root', str(tmp_path), '--n_epochs', '2', *TINY_TOY_FLAGS])
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = tmp_path.iterdir()
    with open(run_dir / 'progress.csv', 'a') as file:
        file.write('3,600,1.0\n')  # a stray row does not count as an epoch
    result = cli(['resume', '--snapshot_dir', str(run_dir)])
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().endswith(
        "the run's snapshot already has 2 epochs; pass --n_epochs larger than that to continue it"
    )


def test_resume_refuses_a_directory_without_a_snapshot(cli, tmp_path):
    result = cli(['resume', '--snapshot_dir', str(tmp_path)])
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().endswith('not a run directory with a snapshot')
    assert list(tmp_path.iterdir()) == []
