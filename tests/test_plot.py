"""``plot.py``: interval maths, interpolation, the final table and the selection heatmaps."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from workflow.figures import (
    group_runs,
    interpolated_curves,
    iqm,
    iqm_interval,
    mean_interval,
    selection_panels,
)
from workflow.runs import find_run_dirs, load_run


def write_run(root, method: str, seed: int, rows: list[dict[str, float | str]]) -> str:
    """A run directory with the files plot.py reads; ``rows`` are progress.csv rows."""
    run_dir = os.path.join(root, f'{method}_PointReachMT-v0_None_{seed}')
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, 'variant.json'), 'w') as file:
        json.dump(
            {'config': {'method': method, 'env': 'PointReachMT-v0', 'seed': seed, 'name': 'None'}},
            file,
        )
    keys = sorted({key for row in rows for key in row})
    with open(os.path.join(run_dir, 'progress.csv'), 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return run_dir


def evaluation(task_success: list[float]) -> dict[str, float]:
    row = {f'Evaluation/Task{i}/SuccessRate': value for i, value in enumerate(task_success)}
    row['Evaluation/SuccessRate'] = float(np.mean(task_success))
    return row


@pytest.fixture
def three_runs(tmp_path):
    """Two Separated seeds and one Separated + QMP seed, evaluated at epochs 0 and 2."""
    root = tmp_path / 'runs'
    write_run(
        root,
        'dnc_sac',
        1,
        [
            {'TotalEnvSteps': 0, **evaluation([0.0, 0.0])},
            {'TotalEnvSteps': 100},
            {'TotalEnvSteps': 200, **evaluation([0.0, 0.4])},
        ],
    )
    write_run(
        root,
        'dnc_sac',
        2,
        [
            {'TotalEnvSteps': 0, **evaluation([0.0, 0.0])},
            {'TotalEnvSteps': 150},
            {'TotalEnvSteps': 300, **evaluation([0.2, 0.6])},
        ],
    )
    freq = {(0, 0): [1.0, 0.6], (0, 1): [0.0, 0.4], (1, 0): [0.5, 0.0], (1, 1): [0.5, 1.0]}
    write_run(
        root,
        'qmp_dnc',
        1,
        [
            {
                'Epoch': epoch,
                'TotalEnvSteps': 100 * (epoch + 1),
                **evaluation([1.0, 0.0]),
                **{
                    f'Train/Task{i}/Policy{j}Freq': values[epoch] for (i, j), values in freq.items()
                },
            }
            for epoch in range(2)
        ],
    )
    return root


def test_mean_and_95_percent_interval_of_1_2_3():
    mean, low, high = mean_interval(np.array([1.0, 2.0, 3.0]))
    # s = 1, t(0.975, 2 dof) = 4.302653, half-width = 4.302653 / sqrt(3) = 2.484138
    assert mean == pytest.approx(2.0)
    assert low == pytest.approx(2.0 - 2.484138, abs=1e-6)
    assert high == pytest.approx(2.0 + 2.484138, abs=1e-6)
    clipped = mean_interval(np.array([0.4, 1.0]), bounds=(0.0, 1.0))
    # mean 0.7, half-width t(0.975, 1) * std 0.4243 / sqrt(2) = 12.706 * 0.3 = 3.81
    assert clipped == pytest.approx((0.7, 0.0, 1.0))
    single = mean_interval(np.array([[0.5, 0.7]]))
    np.testing.assert_allclose(single, [[0.5, 0.7]] * 3)


def test_interquartile_mean_and_its_bootstrap_interval():
    assert iqm(np.arange(8)) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert iqm(np.array([[0.0, 0.4], [0.2, 100.0]])) == pytest.approx(0.3)  # outlier trimmed
    assert iqm_interval(np.full((4, 3), 0.25), reps=50) == pytest.approx((0.25, 0.25, 0.25))
    scores = np.array([[0.0, 0.1], [0.5, 0.6], [0.9, 1.0], [0.3, 0.2]])
    point, low, high = iqm_interval(scores, reps=300)
    assert low < point < high and 0.0 <= low and high <= 1.0


def test_curves_are_interpolated_onto_the_steps_every_seed_covers(three_runs):
    runs = [load_run(d) for d in find_run_dirs([str(three_runs)])]
    separated = next(g for g in group_runs(runs) if g.method == 'dnc_sac')
    grid, curves = interpolated_curves(separated.runs, 'SuccessRate', n_points=3)
    np.testing.assert_allclose(grid, [0.0, 100.0, 200.0])
    # seed 1: 0 -> 0.2 at step 200; seed 2: 0 -> 0.4 at step 300 (0.2667 at 200)
    np.testing.assert_allclose(curves, [[0.0, 0.1, 0.2], [0.0, 0.4 / 3, 0.8 / 3]])


def test_selection_heatmap_averages_over_training_and_picks_epochs(three_runs):
    runs = [load_run(d) for d in find_run_dirs([str(three_runs)])]
    qmp = next(g for g in group_runs(runs) if g.method == 'qmp_dnc')
    panels = dict(selection_panels(qmp, [0, -1]))
    np.testing.assert_allclose(panels['mean over training'], [[0.8, 0.2], [0.25, 0.75]])
    np.testing.assert_allclose(panels['epoch 0'], [[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(panels['last epoch'], [[0.6, 0.4], [0.0, 1.0]])
    separated = next(g for g in group_runs(runs) if g.method == 'dnc_sac')
    assert selection_panels(separated, [0]) == []


def test_plot_command_writes_figures_and_the_final_table(three_runs, tmp_path):
    out = tmp_path / 'figures'
    result = subprocess.run(
        [sys.executable, 'plot.py', str(three_runs), '--out', str(out), '--reps', '200'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == [
        'curves.png',
        'final_performance.md',
        'selection_PointReachMT-v0_qmp_dnc_None.png',
    ]
    for name in ('curves.png', 'selection_PointReachMT-v0_qmp_dnc_None.png'):
        with open(out / name, 'rb') as file:
            assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    table = (out / 'final_performance.md').read_text()
    # Separated: finals 0.2 and 0.4 -> mean 0.3, half-width t(0.975, 1) = 12.7062 * 0.1414 /
    # 1.4142 = 1.27, so the interval is clipped to the success rate's range [0, 1]
    half = 12.7062047 * math.sqrt(0.02) / math.sqrt(2)
    assert half > 0.7
    assert (
        '| PointReachMT-v0 | Separated | 2 | SuccessRate | 0.300 [0.000, 1.000] | 0.300 ['
    ) in table
    assert (
        '| PointReachMT-v0 | Separated + QMP | 1 | SuccessRate | 0.500 [0.500, 0.500] | '
        '0.500 [0.500, 0.500] |' in table
    )
    assert table in result.stdout


def test_plot_command_refuses_a_folder_without_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, 'plot.py', str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('plot.py: error: no run directories')
