"""``run_policy.py``: a trained run's policies replayed per task, with and without video."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import imageio.v2 as imageio
import pytest

from conftest import REPO_ROOT, TINY_TOY_FLAGS, run_cli


def run_policy(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, 'run_policy.py', *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def table_rows(stdout: str) -> dict[str, list[str]]:
    """First cell -> cells of each row of the printed markdown table."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if line.startswith('| ') and cells[0] not in ('task',):
            rows[cells[0]] = cells
    return rows


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    """One epoch of Separated + QMP on the toy env."""
    root = tmp_path_factory.mktemp('runs')
    result = run_cli(['qmp_dnc', '--log_root', str(root), '--n_epochs', '1', *TINY_TOY_FLAGS])
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = root.iterdir()
    return str(run_dir)


@pytest.mark.slow
def test_replays_every_task_of_the_task_policies_and_the_mixture(trained_run):
    for extra, mode in (([], 'task policies'), (['--mixture'], 'Q-switch mixture')):
        result = run_policy([trained_run, '--episodes', '3', *extra])
        assert result.returncode == 0, result.stderr[-2000:]
        assert f'{mode}, 3 deterministic episode(s) per task' in result.stdout
        rows = table_rows(result.stdout)
        assert sorted(rows) == ['0', '1', '2', '3', 'all']
        assert all(rows[task][2] == '3' for task in '0123') and rows['all'][2] == '12'
        assert rows['0'][1] == 'reach-10deg'
        success = [float(rows[task][3]) for task in '0123']
        assert float(rows['all'][3]) == pytest.approx(sum(success) / 4, abs=0.01)


@pytest.mark.slow
def test_saves_one_video_per_chosen_task(trained_run, tmp_path):
    videos = tmp_path / 'videos'
    result = run_policy(
        [trained_run, '--episodes', '2', '--task', '1', '3', '--save_video', str(videos)]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(table_rows(result.stdout)) == ['1', '3', 'all']
    assert sorted(os.listdir(videos)) == ['task1.mp4', 'task3.mp4']
    for task in ('1', '3'):
        length = float(table_rows(result.stdout)[task][5])
        frames = imageio.mimread(videos / f'task{task}.mp4', memtest=False)
        assert len(frames) == round(2 * (length + 1))  # a frame per reset and per step
        assert frames[0].shape == (64, 64, 3)  # the toy env's picture
        assert re.search(rf'wrote .*task{task}\.mp4 \({len(frames)} frames\)', result.stdout)


def test_bad_run_directories_are_one_line_and_exit_2(tmp_path):
    fake = tmp_path / 'dnc_sac_PointReachMT-v0_None_0'
    fake.mkdir()
    (fake / 'variant.json').write_text(json.dumps({'config': {'method': 'dnc_sac'}}))
    cases = [
        ([str(tmp_path / 'missing')], 'is not a directory'),
        ([str(tmp_path)], 'has no variant.json'),
        ([str(fake)], 'has no params.pkl'),
    ]
    (fake_with_snapshot := tmp_path / 'with_snapshot').mkdir()
    (fake_with_snapshot / 'variant.json').write_text(fake.joinpath('variant.json').read_text())
    (fake_with_snapshot / 'params.pkl').write_bytes(b'not a pickle')
    cases += [
        ([str(fake_with_snapshot), '--mixture'], '--mixture needs a QMP run'),
        ([str(fake_with_snapshot)], 'cannot load the snapshot'),
    ]
    for args, message in cases:
        result = run_policy(args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith('run_policy.py: error: ') and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_replay_checks_the_variant_as_resume_does(tmp_path):
    from workflow.replay import ReplayError, check_run_dir  # pylint: disable=C0415

    (tmp_path / 'params.pkl').write_bytes(b'')  # loaded for real only after the check
    for config, message in (
        ({'method': 'dnc_sac', 'num_epochs': 5}, "unknown flags ['num_epochs']"),
        ({'method': 'dnc_sac', 'lr': -1.0}, '--lr must be positive'),
    ):
        (tmp_path / 'variant.json').write_text(json.dumps({'config': config}))
        with pytest.raises(ReplayError, match=re.escape(message)):
            check_run_dir(str(tmp_path), mixture=False)
    (tmp_path / 'variant.json').write_text(json.dumps({'config': {'method': 'qmp_dnc'}}))
    assert check_run_dir(str(tmp_path), mixture=True)['method'] == 'qmp_dnc'
