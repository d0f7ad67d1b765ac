"""``sweep.py``: grid expansion, run names, skip/resume decisions and the local engine."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, TINY_TOY_FLAGS
from experiment_utils import ConfigError, as_dict
from run import parse
from workflow.runs import count_epochs
from workflow.sweeps import EngineSettings, Grid, load_toml, make_executor, parse_flag_axis, plan


def tiny_flag_args() -> list[str]:
    """TINY_TOY_FLAGS as sweep arguments: ``--envs ENV`` and ``--flag KEY=VALUE`` (one value
    each)."""
    args, index = [], 0
    while index < len(TINY_TOY_FLAGS):
        key, _, inline = TINY_TOY_FLAGS[index].lstrip('-').partition('=')
        index += 1
        values = [inline] if inline else []
        while index < len(TINY_TOY_FLAGS) and not TINY_TOY_FLAGS[index].startswith('--'):
            values.append(TINY_TOY_FLAGS[index])
            index += 1
        args += ['--envs', *values] if key == 'env' else ['--flag', f'{key}={" ".join(values)}']
    return args


def sweep_cli(args: list[str], timeout: float = 400) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, 'sweep.py', *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def progress_rows(run_dir) -> list[dict[str, str]]:
    with open(os.path.join(run_dir, 'progress.csv'), newline='') as file:
        return list(csv.DictReader(file))


def test_grid_expands_in_order_and_names_only_the_varying_flags():
    grid = Grid(
        methods=['dnc_sac', 'qmp_dnc'],
        envs=['PointReachMT-v0'],
        seeds=[1, 2],
        axes={'n_epochs': ['5'], 'hidden_sizes': ['16 16', '32 32']},
        name='t',
    )
    points = grid.points()
    assert len(points) == 8
    assert [(p.method, p.seed, dict(p.flags)['hidden_sizes']) for p in points[:3]] == [
        ('dnc_sac', 1, '16 16'),
        ('dnc_sac', 1, '32 32'),
        ('dnc_sac', 2, '16 16'),
    ]
    assert grid.label(points[1]) == 't-hidden_sizes32_32'  # n_epochs has one value: not named


def test_flag_axis_parsing():
    assert parse_flag_axis('n_epochs=5,10') == ('n_epochs', ['5', '10'])
    assert parse_flag_axis('hidden_sizes=64 64,256 256') == ('hidden_sizes', ['64 64', '256 256'])
    with pytest.raises(ConfigError, match='expected KEY=VALUE'):
        parse_flag_axis('n_epochs')


def test_toml_file_gives_the_same_grid_as_the_command_line(tmp_path):
    path = tmp_path / 'sweep.toml'
    path.write_text(
        'methods = ["dnc_sac"]\nseeds = [1, 2]\n[flags]\nn_epochs = 3\n'
        'hidden_sizes = [[16, 16], [32, 32]]\nlr = [0.001, 0.003]\n'
        'kl_coeff = [0.1]\n'
    )
    data = load_toml(str(path))
    assert data['axes'] == {
        'n_epochs': ['3'],
        'hidden_sizes': ['16 16', '32 32'],
        'lr': ['0.001', '0.003'],
        'kl_coeff': ['0.1'],
    }
    path.write_text('methods = ["dnc_sac"]\n[flags]\nnot_a_flag = 1\n')
    with pytest.raises(ConfigError, match="unknown flag 'not_a_flag'"):
        load_toml(str(path))


def _fake_run(log_root: str, argv: list[str], epochs_done: int, snapshot: bool) -> str:
    """A run directory as run.py leaves it after ``epochs_done`` epochs."""
    config = parse(argv)
    run_dir = os.path.join(log_root, f'{config.method}_{config.env}_{config.name}_{config.seed}')
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, 'variant.json'), 'w') as file:
        json.dump({'config': as_dict(config)}, file)
    with open(os.path.join(run_dir, 'progress.csv'), 'w') as file:
        file.write('TotalEnvSteps\n' + ''.join(f'{200 * (k + 1)}\n' for k in range(epochs_done)))
    if snapshot:
        open(os.path.join(run_dir, 'params.pkl'), 'wb').close()
    return run_dir


def _write_snapshot_info(run_dir: str, epochs_done: int, stale: bool = False) -> None:
    """``snapshot.json`` as ``infrastructure/snapshots.py`` writes it beside ``params.pkl``."""
    inode = os.stat(os.path.join(run_dir, 'params.pkl')).st_ino + (1 if stale else 0)
    with open(os.path.join(run_dir, 'snapshot.json'), 'w') as file:
        json.dump({'epochs_done': epochs_done, 'params_inode': inode}, file)


def test_epochs_are_the_snapshots_where_it_has_a_record(tmp_path):
    argv = ['dnc_sac', '--env', 'PointReachMT-v0', '--log_root', str(tmp_path)]
    run_dir = _fake_run(str(tmp_path), argv, epochs_done=3, snapshot=True)
    assert count_epochs(run_dir) == 3  # no snapshot.json (an older run): progress.csv's rows
    _write_snapshot_info(run_dir, epochs_done=2)  # rows of a third epoch after the snapshot
    assert count_epochs(run_dir) == 2
    _write_snapshot_info(run_dir, epochs_done=2, stale=True)  # describes an older params.pkl
    assert count_epochs(run_dir) == 3  # ... beside one that does not load: the rows again
    os.remove(os.path.join(run_dir, 'progress.csv'))
    assert count_epochs(run_dir) == 0
    assert count_epochs(str(tmp_path / 'missing')) == 0


def test_plan_skips_finished_resumes_interrupted_and_flags_conflicts(tmp_path):
    root = str(tmp_path)
    grid = Grid(
        methods=['dnc_sac'],
        envs=['PointReachMT-v0'],
        seeds=[1, 2, 3, 4, 5],
        axes={'n_epochs': ['3']},
        name='t',
    )
    common = ['--env', 'PointReachMT-v0', '--name', 't', '--log_root', root]
    finished = _fake_run(root, ['dnc_sac', '--seed', '1', *common, '--n_epochs', '2'], 3, True)
    interrupted = _fake_run(root, ['dnc_sac', '--seed', '2', *common, '--n_epochs', '3'], 1, True)
    _fake_run(root, ['dnc_sac', '--seed', '3', *common], 1, False)
    _fake_run(root, ['dnc_sac', '--seed', '4', *common, '--lr', '0.01'], 1, True)
    runs = plan(grid, root, torch_threads=2)
    assert [run.action for run in runs] == ['skip', 'resume', 'restart', 'conflict', 'new']
    assert runs[0].run_dir == finished
    assert runs[1].argv == ['run.py', 'resume', '--snapshot_dir', interrupted, '--n_epochs', '3']
    assert 'lr' in runs[3].note
    assert runs[4].argv == [
        'run.py',
        'dnc_sac',
        '--env',
        'PointReachMT-v0',
        '--seed',
        '5',
        '--name',
        't',
        '--log_root',
        root,
        '--torch_threads',
        '2',
        '--n_epochs',
        '3',
    ]


def test_a_run_from_before_a_new_flag_matches_the_flags_default(tmp_path):
    root = str(tmp_path)
    grid = Grid(methods=['dnc_sac'], envs=['PointReachMT-v0'], seeds=[1], axes={}, name='t')
    run_dir = _fake_run(
        root,
        ['dnc_sac', '--seed', '1', '--env', 'PointReachMT-v0', '--name', 't', '--log_root', root],
        1,
        True,
    )
    with open(os.path.join(run_dir, 'variant.json')) as file:
        variant = json.load(file)
    del variant['config']['replay_capacity']  # written before the flag existed
    with open(os.path.join(run_dir, 'variant.json'), 'w') as file:
        json.dump(variant, file)
    assert [run.action for run in plan(grid, root, torch_threads=1)] == ['resume']
    variant['config']['hidden_sizes'] = [8]
    with open(os.path.join(run_dir, 'variant.json'), 'w') as file:
        json.dump(variant, file)
    (conflict,) = plan(grid, root, torch_threads=1)
    assert conflict.action == 'conflict' and 'hidden_sizes' in conflict.note


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, message in (
        (['--methods', 'nope'], "unknown method 'nope'"),
        (['--methods', 'dnc_sac', '--flag', 'lr=abc'], "invalid float value: 'abc'"),
        (['--methods', 'dnc_sac', '--flag', 'seed=1,2'], 'use --seeds instead'),
        ([], 'no methods'),
    ):
        result = sweep_cli([*args, '--log_root', str(tmp_path), '--dry_run'])
        assert result.returncode == 2, result.stderr
        assert 'Traceback' not in result.stderr and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_slurm_engine_settings_become_submitit_parameters(tmp_path, monkeypatch):
    fake_bin = tmp_path / 'bin'
    fake_bin.mkdir()
    (fake_bin / 'srun').write_text('#!/bin/sh\n')
    (fake_bin / 'srun').chmod(0o755)
    monkeypatch.setenv('PATH', f'{fake_bin}{os.pathsep}{os.environ["PATH"]}')
    executor = make_executor(
        EngineSettings(
            engine='slurm',
            partition='gpu',
            cpus_per_job=4,
            gpus_per_job=1,
            time_min=60,
            array_parallelism=8,
        ),
        str(tmp_path / 'submitit'),
    )
    parameters = executor._executor.parameters
    assert (
        parameters['partition'],
        parameters['cpus_per_task'],
        parameters['gpus_per_node'],
        parameters['time'],
        parameters['array_parallelism'],
    ) == ('gpu', 4, 1, 60, 8)


@pytest.mark.slow
def test_sweep_runs_skips_resumes_and_reports_a_failure(tmp_path, cli):
    root = str(tmp_path / 'runs')
    grid_args = [
        '--methods',
        'dnc_sac',
        'qmp_dnc',
        '--seeds',
        '1',
        '2',
        '--name',
        't',
        '--log_root',
        root,
        '--jobs',
        '2',
        '--flag',
        'n_epochs=2',
        *tiny_flag_args(),
    ]
    names = [
        f'{method}_PointReachMT-v0_t_{seed}' for method in ('dnc_sac', 'qmp_dnc') for seed in (1, 2)
    ]
    # An interrupted run: one of its two epochs done before the sweep starts.
    early = cli(
        [
            'dnc_sac',
            '--seed',
            '1',
            '--name',
            't',
            '--log_root',
            root,
            '--n_epochs',
            '1',
            *TINY_TOY_FLAGS,
        ]
    )
    assert early.returncode == 0, early.stderr[-2000:]
    steps_before = float(progress_rows(os.path.join(root, names[0]))[0]['TotalEnvSteps'])

    result = sweep_cli(grid_args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(n for n in os.listdir(root) if n != 'sweep_logs') == sorted(names)
    assert f'| {names[0]} | resume | ok | 2/2 |' in result.stdout
    for name in names[1:]:
        assert f'| {name} | new | ok | 2/2 |' in result.stdout
    resumed = progress_rows(os.path.join(root, names[0]))
    assert float(resumed[0]['TotalEnvSteps']) == steps_before
    assert float(resumed[1]['TotalEnvSteps']) > steps_before

    again = sweep_cli(grid_args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count('| skip | skipped | 2/2 |') == 4

    broken = os.path.join(root, names[3])
    with open(os.path.join(broken, 'params.pkl'), 'wb') as file:
        file.write(b'not a pickle')
    with open(os.path.join(broken, 'progress.csv')) as file:
        lines = file.readlines()
    with open(os.path.join(broken, 'progress.csv'), 'w') as file:
        file.writelines(lines[:2])  # header and epoch 0: the run looks interrupted
    _write_snapshot_info(broken, epochs_done=1)  # ... to its snapshot's record as well
    failing = sweep_cli(grid_args)
    assert failing.returncode == 1
    assert f'| {names[3]} | resume | FAILED (exit code 2) | 1/2 |' in failing.stdout
    assert '1 of 4 runs failed' in failing.stderr
    with open(os.path.join(root, 'sweep_logs', f'{names[3]}.log')) as file:
        assert 'params.pkl is truncated or not a snapshot' in file.read()
