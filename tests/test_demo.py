"""The main job ``tools/demo.py``: its figures come out of a real (tiny) run of both methods,
its selection-frequency table, and its bad-input handling."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import demo  # noqa: E402


def run_demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, 'tools/demo.py', *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_quick_demo_trains_both_methods_and_writes_the_three_figures(tmp_path):
    result = run_demo('--quick', '--episodes', '2', '--out_dir', str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ('learning_curves', 'trajectories', 'selection_frequencies'):
        assert (tmp_path / f'{name}.png').stat().st_size > 10_000, name
    runs = sorted(p.name for p in (tmp_path / 'runs').iterdir() if p.is_dir())
    assert runs == [f'{method}_PointSharedPathMT-v0_None_1' for method in ('dnc_sac', 'qmp_dnc')]
    assert 'Separated + QMP  task 0' in result.stdout
    assert 'QMP selection frequencies' in result.stdout


@pytest.mark.slow
def test_quick_demo_of_the_parameters_pair_on_the_wall(tmp_path):
    result = run_demo(
        '--quick',
        '--framework',
        'parameters',
        '--env',
        'PointWallMT-v0',
        '--episodes',
        '1',
        '--out_dir',
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / 'runs').iterdir() if p.is_dir())
    assert runs == [f'{method}_PointWallMT-v0_None_1' for method in ('mtsac', 'qmp_sac')]
    assert 'Parameters + QMP task 0' in result.stdout
    assert (tmp_path / 'trajectories.png').stat().st_size > 10_000


def test_selection_frequencies_average_epochs_then_seeds():
    def run(value_00, value_01):
        columns = {f'Train/Task{i}/Policy{j}Freq': np.zeros(2) for i in range(4) for j in range(4)}
        columns['Train/Task0/Policy0Freq'] = np.array([value_00, np.nan])  # NaN epochs skipped
        columns['Train/Task0/Policy1Freq'] = np.array([value_01, 1 - value_01])
        return columns

    table = demo.selection_frequencies([run(0.2, 0.6), run(0.4, 0.0)], n_tasks=4)
    assert table.shape == (4, 4)
    assert table[0, 0] == pytest.approx(0.3)  # mean of 0.2 and 0.4
    assert table[0, 1] == pytest.approx(0.5)  # mean of mean(0.6, 0.4) and mean(0, 1)


@pytest.mark.parametrize(
    'args, message',
    [
        (['--jobs', '0'], '--jobs must be >= 1'),
        (['--seeds', '1', '1'], '--seeds must be distinct'),
        (['--env', 'JacoReachMT5-v1'], "argument --env: invalid choice: 'JacoReachMT5-v1'"),
        (['--n_epochs', 'x'], "invalid int value: 'x'"),
        (['--framework', 'data'], "argument --framework: invalid choice: 'data'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    result = run_demo(*args, '--out_dir', str(tmp_path), timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and 'Traceback' not in result.stderr
    assert not (tmp_path / 'runs').exists()
