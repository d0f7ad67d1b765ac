"""Bad input never ends in a traceback: one ``run.py: error:`` line, exit code 2, and nothing
created or changed on disk (no log root, no run directory, no line added to a resumed run)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import run
from configuration import validation
from conftest import TINY_TOY_FLAGS
from environments.registry import ENVS
from experiment_utils import (
    ENV_PRESETS,
    MAX_SEED,
    ConfigError,
    as_dict,
    check_run_dir,
    network_memory_lower_bound,
    resolve_config,
)


def disk_state(path: Path) -> dict[str, tuple[int, int]] | None:
    """Name -> (size, mtime in ns) of ``path`` and everything under it; None if absent."""
    if not path.exists():
        return None
    entries = [path, *sorted(path.rglob('*'))] if path.is_dir() else [path]
    return {
        str(entry.relative_to(path.parent)): (entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in entries
    }


def assert_refused(captured: pytest.CaptureResult, message: str) -> None:
    """Exactly one line on stderr, the error, naming ``message``; nothing on stdout."""
    assert captured.out == ''
    assert 'Traceback' not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith('run.py: error: ') and message in lines[0], lines[0]


# (argv, what the error line must say). Each is refused while the configuration is resolved,
# so with and without --dry_run.
VALIDATION_CASES = [
    (['qmp_dnc', '--lr', 'inf'], '--lr must be a finite number, got inf'),
    (['qmp_dnc', '--lr', 'nan'], '--lr must be a finite number, got nan'),
    (['qmp_dnc', '--discount', 'nan'], '--discount must be a finite number'),
    (['qmp_dnc', '--target_update_tau', 'inf'], '--target_update_tau must be a finite number'),
    (['qmp_dnc', '--reward_scale=-inf'], '--reward_scale must be a finite number'),
    (['qmp_dnc', '--target_entropy', 'nan'], '--target_entropy must be a finite number'),
    (['uds_dnc', '--sharing_quantile', 'nan'], '--sharing_quantile must be a finite number'),
    (['dnc_sac', '--kl_coeff', 'inf'], '--kl_coeff must be a finite number, got [inf]'),
    (['dnc_sac', '--kl_coeff', *['0.1'] * 15, 'nan'], '--kl_coeff must be a finite number'),
    (['mtsac', '--lr', 'infinity'], '--lr must be a finite number'),
    (['qmp_dnc', '--target_update_tau', '0'], '--target_update_tau must be in (0, 1], got 0.0'),
    (['qmp_dnc', '--target_update_tau', '1.5'], '--target_update_tau must be in (0, 1]'),
    (['qmp_dnc', '--target_update_tau', '-0.01'], '--target_update_tau must be in (0, 1]'),
    (['qmp_dnc', '--seed', '-1'], f'--seed must be in 0..{MAX_SEED}, got -1'),
    (['qmp_dnc', '--seed', str(MAX_SEED + 1)], f'--seed must be in 0..{MAX_SEED}'),
    (['qmp_dnc', '--seed', '1.5'], "invalid int value: '1.5'"),
    (['qmp_dnc', '--name', 'a/b'], 'must not contain a path separator'),
    (['qmp_dnc', '--name', '..'], 'must not contain a path separator, ".."'),
    (['qmp_dnc', '--name', '../../etc'], 'must not contain a path separator'),
    (['qmp_dnc', '--n_epoch', '3'], 'unrecognized arguments: --n_epoch 3'),
    (
        ['qmp_dnc', '--torch_threads', '-1'],
        '--torch_threads must be 0 (every available core) or a thread count, got -1',
    ),
    (['qmp_dnc', '--hidden', '8'], 'unrecognized arguments: --hidden 8'),
    (['qmp_dnc', '--hidden_sizes', '1000000', '1000000'], 'GiB for the networks of 4 tasks'),
    (['qmp_dnc', '--hidden_sizes', str(10**30)], 'of memory is available'),
    (
        ['qmp_dnc', '--num_evaluation_episodes', '3'],
        '--num_evaluation_episodes 3 is smaller than the 4 tasks of this run',
    ),
    (
        [
            'qmp_dnc',
            '--env=MazeLarge-10-v0',
            '--task_name',
            '1,2,3',
            '--num_evaluation_episodes',
            '2',
        ],
        'smaller than the 3 tasks',
    ),
    (['qmp_dnc', '--gpu', '-1'], '--gpu must be a CUDA device index'),
]


@pytest.mark.parametrize('dry_run', [False, True], ids=['run', 'dry_run'])
@pytest.mark.parametrize('argv, message', VALIDATION_CASES)
def test_bad_flags_are_one_line_and_create_nothing(argv, message, dry_run, tmp_path, capsys):
    log_root = tmp_path / 'root'
    extra = ['--log_root', str(log_root), *(['--dry_run'] if dry_run else [])]
    assert run.main(argv + extra) == 2
    assert_refused(capsys.readouterr(), message)
    assert not log_root.exists()


@pytest.mark.parametrize(
    'argv, message',
    [
        (['resume', '--snapshot', 'x'], 'required: --snapshot_dir'),
        (
            ['resume', '--snapshot_dir', 'x', '--n_epoch', '3'],
            'unrecognized arguments: --n_epoch 3',
        ),
    ],
)
def test_resume_flags_are_not_abbreviated(argv, message, capsys):
    assert run.main(argv) == 2
    assert_refused(capsys.readouterr(), message)


def test_the_limits_themselves_are_accepted():
    config = run.parse(
        [
            'qmp_dnc',
            '--seed',
            str(MAX_SEED),
            '--target_update_tau',
            '1',
            '--num_evaluation_episodes',
            '4',
            '--name',
            'a.b',
        ]
    )
    assert (config.seed, config.target_update_tau, config.num_evaluation_episodes) == (
        MAX_SEED,
        1.0,
        4,
    )
    assert run.parse(['qmp_dnc', '--seed', '0']).seed == 0


@pytest.mark.parametrize('env_id', sorted(ENV_PRESETS))
def test_every_preset_evaluates_each_task_at_least_once(env_id):
    config = run.parse(['qmp_dnc', f'--env={env_id}'])
    assert config.num_evaluation_episodes >= config.n_tasks == ENVS[env_id].n_tasks


def test_network_memory_lower_bound_counts_weights_gradients_adam_and_targets():
    config = dataclasses.replace(run.parse(['qmp_dnc']), hidden_sizes=[3])
    # actor 1 -> 3 -> 2: (1+1)*3 + (3+1)*2 = 14 weights; critic 2 -> 3 -> 1: 9 + 4 = 13.
    # Per task: 4 actor copies + 2 critics x 4 copies + 2 target critics = 4*14 + 10*13.
    assert network_memory_lower_bound(config, n_tasks=2) == 4 * (2 * 4 * 14 + 2 * 10 * 13)
    shared = dataclasses.replace(
        config, policy_architecture='multihead', Q_architecture='multihead'
    )
    assert network_memory_lower_bound(shared, n_tasks=2) == 4 * (4 * 14 + 10 * 13)


def test_networks_are_refused_exactly_when_they_exceed_the_available_memory(monkeypatch):
    needed = 4 * (4 * 4 * 14 + 4 * 10 * 13)  # four tasks of PointReachMT-v0, hidden [3]
    monkeypatch.setattr(
        validation.psutil, 'virtual_memory', lambda: types.SimpleNamespace(available=needed)
    )
    assert run.parse(['qmp_dnc', '--hidden_sizes', '3']).hidden_sizes == [3]
    monkeypatch.setattr(
        validation.psutil, 'virtual_memory', lambda: types.SimpleNamespace(available=needed - 1)
    )
    with pytest.raises(ConfigError, match='need at least 0.0 GiB for the networks of 4 tasks'):
        run.parse(['qmp_dnc', '--hidden_sizes', '3'])


# ---- --log_root: checked when a run starts (after --dry_run would have printed) ----


def _start(log_root: str) -> list[str]:
    return ['qmp_dnc', '--log_root', log_root, '--n_epochs', '1', *TINY_TOY_FLAGS]


def test_a_log_root_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys):
    file = tmp_path / 'notes.txt'
    file.write_text('mine')
    before = disk_state(tmp_path)
    for log_root in (file, file / 'runs'):
        assert run.main(_start(str(log_root))) == 2
        assert_refused(capsys.readouterr(), f'{file} exists and is not a directory')
    assert disk_state(tmp_path) == before


def test_an_empty_log_root_is_refused(capsys):
    assert run.main(_start('')) == 2
    assert_refused(capsys.readouterr(), '--log_root must name a directory')


def test_a_log_root_without_write_permission_is_refused(tmp_path, capsys, monkeypatch):
    locked = tmp_path / 'locked'
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        validation.os,
        'access',
        lambda path, mode: False if Path(path) == locked else real_access(path, mode),
    )
    before = disk_state(tmp_path)
    assert run.main(_start(str(locked / 'runs' / 'deeper'))) == 2
    assert_refused(capsys.readouterr(), f'cannot create directories in {locked}')
    assert disk_state(tmp_path) == before


def test_run_experiment_itself_refuses_a_bad_log_root(tmp_path):
    from garage_experiments import run_experiment  # pylint: disable=import-outside-toplevel

    file = tmp_path / 'file'
    file.write_text('')
    with pytest.raises(ConfigError, match='is not a directory'):
        run_experiment(dataclasses.replace(run.parse(['qmp_dnc']), log_root=str(file / 'x')))
    assert sorted(os.listdir(tmp_path)) == ['file']


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write into any directory')
def test_a_read_only_log_root_from_the_shell(cli, tmp_path):
    locked = tmp_path / 'locked'
    locked.mkdir(mode=0o500)
    result = cli(_start(str(locked / 'runs')))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().startswith('run.py: error: --log_root')
    assert list(locked.iterdir()) == []


# ---- --gpu ----


def test_gpu_without_cuda_warns_once_and_records_the_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert run.main(['qmp_dnc', '--gpu', '0', '--dry_run']) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        'run.py: warning: --gpu 0 ignored: CUDA is not available, training on the CPU\n'
    )
    assert json.loads(captured.out)['gpu'] is None  # as variant.json records it


def test_a_gpu_index_the_machine_lacks_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert run.main(['qmp_dnc', '--gpu', '2', '--dry_run']) == 2
    assert_refused(capsys.readouterr(), '--gpu 2: this machine has CUDA devices 0..1')
    assert run.main(['qmp_dnc', '--gpu', '1', '--dry_run']) == 0


# ---- resume: the run directory is checked before anything is logged into it ----


def _variant(**overrides: object) -> dict:
    return {'config': {**as_dict(resolve_config('qmp_dnc', {'n_epochs': 5})), **overrides}}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A directory shaped like a finished epoch of a run (a stand-in snapshot)."""
    directory = tmp_path / 'qmp_dnc_PointReachMT-v0_None_0'
    directory.mkdir()
    (directory / 'variant.json').write_text(json.dumps(_variant()))
    snapshot = {'stats': [1, 2.0], 'algo': 'x', 'epochs_done': 1}
    (directory / 'params.pkl').write_bytes(pickle.dumps(snapshot))
    (directory / 'progress.csv').write_text('Epoch,TotalEnvSteps\n0,200\n')
    (directory / 'debug.log').write_text('epoch 0\n')
    return directory


def test_a_sound_run_directory_passes_the_check(run_dir):
    assert check_run_dir(str(run_dir)).n_epochs == 5
    assert run.parse_resume(['--snapshot_dir', str(run_dir)]) == (str(run_dir), None)


def _write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def mutate(directory: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (directory / name).write_bytes(data)

    return mutate


def _truncate_params(directory: Path) -> None:
    data = pickle.dumps({'stats': list(range(100))})
    (directory / 'params.pkl').write_bytes(data[: len(data) // 2])


def _with_config(**overrides: object) -> Callable[[Path], None]:
    return _write('variant.json', json.dumps(_variant(**overrides)))


def _name_a_missing_replay_chunk(directory: Path) -> None:
    """A snapshot.json describing this params.pkl and naming a chunk that replay/ lacks."""
    info = {
        'epochs_done': 1,
        'params_inode': os.stat(directory / 'params.pkl').st_ino,
        'replay_chunks': ['0123abcd-000000-states.npy'],
    }
    (directory / 'snapshot.json').write_text(json.dumps(info))


RUN_DIR_CASES = {
    'empty params.pkl': (_write('params.pkl', b''), 'params.pkl is empty'),
    'truncated params.pkl': (_truncate_params, 'params.pkl is truncated or not a snapshot'),
    'garbage params.pkl': (
        _write('params.pkl', b'\x00garbage\xff' * 10),
        'params.pkl is truncated or not a snapshot',
    ),
    'text params.pkl': (_write('params.pkl', 'hello world\n'), 'is truncated or not a snapshot'),
    'params.pkl with trailing data': (
        _write('params.pkl', pickle.dumps(1) + b'junk'),
        'params.pkl has data after its end',
    ),
    'params.pkl naming missing code': (
        _write('params.pkl', b'cno_such_module\nThing\n)R.'),
        'needs code that no longer exists (No module named',
    ),
    'malformed variant.json': (
        _write('variant.json', '{"config": {"lr": '),
        'variant.json is not readable JSON',
    ),
    'empty variant.json': (_write('variant.json', ''), 'variant.json is not readable JSON'),
    'binary variant.json': (_write('variant.json', b'\xff\xfe\x00'), 'not readable JSON'),
    'variant.json without config': (_write('variant.json', '{"lr": 1}'), 'no "config" object'),
    'variant.json that is a list': (_write('variant.json', '[]'), 'no "config" object'),
    'variant.json with an unknown key': (
        _with_config(num_epochs=5),
        "variant.json sets unknown flags ['num_epochs']",
    ),
    'variant.json with a string lr': (_with_config(lr='fast'), "invalid lr: 'fast'"),
    'variant.json with a float seed': (_with_config(seed=1.5), 'invalid seed: 1.5'),
    'variant.json with a bool epochs': (_with_config(n_epochs=True), 'invalid n_epochs: True'),
    'variant.json with an unknown env': (_with_config(env='Nope-v0'), "invalid env: 'Nope-v0'"),
    'variant.json with a NaN lr': (
        _with_config(lr=float('nan')),
        'cannot run: --lr must be a finite number',
    ),
    'variant.json with a negative seed': (_with_config(seed=-3), 'cannot run: --seed must be'),
    'missing variant.json': (lambda d: (d / 'variant.json').unlink(), 'has no variant.json'),
    'missing replay chunk': (
        _name_a_missing_replay_chunk,
        'replay/ lacks 1 chunk file(s) of the snapshot (e.g. 0123abcd-000000-states.npy)',
    ),
}


@pytest.mark.parametrize('mutate, message', RUN_DIR_CASES.values(), ids=RUN_DIR_CASES.keys())
def test_resume_refuses_a_damaged_run_directory_and_leaves_it_as_it_was(
    mutate, message, run_dir, capsys
):
    mutate(run_dir)
    before = disk_state(run_dir)
    assert run.main(['resume', '--snapshot_dir', str(run_dir), '--n_epochs', '9']) == 2
    assert_refused(capsys.readouterr(), message)
    assert disk_state(run_dir) == before


def test_resume_of_an_old_wandb_run_does_not_need_wandb(run_dir, monkeypatch):
    monkeypatch.setattr(validation.importlib.util, 'find_spec', lambda name: None)
    (run_dir / 'variant.json').write_text(json.dumps(_variant(wandb=True)))
    assert check_run_dir(str(run_dir)).wandb is True


def test_a_truncated_snapshot_from_the_shell(cli, run_dir):
    _truncate_params(run_dir)
    before = disk_state(run_dir)
    result = cli(['resume', '--snapshot_dir', str(run_dir)])
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith('run.py: error: ') and 'params.pkl is truncated' in line
    assert disk_state(run_dir) == before
