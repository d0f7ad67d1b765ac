"""Runs that survive: kill and resume exactly, Ctrl-C, a closed console, fixed CSV columns."""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from dowel import TabularInput, logger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO_ROOT, TINY_TOY_FLAGS
from environments.registry import make_env
from infrastructure import logging_utils
from infrastructure.logging_utils import (
    ConsoleOutput,
    FlushingTextOutput,
    PurgingTensorBoardOutput,
    column_order,
    is_wall_time_column,
    truncate_progress,
)
from infrastructure.run_lifecycle import (
    ExactTrainer,
    interrupt_message,
    run_guard,
)
from infrastructure.snapshot_info import snapshot_epochs
from infrastructure.snapshots import AtomicSnapshotter, atomic_pickle

RUN_NAME = 'qmp_dnc_PointReachMT-v0_None_0'
EPOCH_LINE = re.compile(
    r'^epoch (\d+)/(\d+) \| ([\d,]+) env steps \| eval success (\S+) '
    r'\(mixture (\S+)\) \| return eval (\S+) train (\S+) \| ([\d,]+) '
    r'steps/s \| \d+:\d\d:\d\d elapsed, ETA (\d+:\d\d:\d\d|\?)$'
)


def start_run(args: list[str], hash_seed: str = '0', **popen_args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS='1')
    popen_args.setdefault('stdout', subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, 'run.py', *args],
        cwd=REPO_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        **popen_args,
    )


def wait_until(condition, process: subprocess.Popen) -> None:
    """Polls ``condition`` until it holds; fails if the process ends first."""
    while not condition():
        assert process.poll() is None, process.stderr.read()[-2000:]
        time.sleep(0.02)


def data_rows(run_dir: Path) -> int:
    if not (run_dir / 'progress.csv').exists():
        return 0
    with open(run_dir / 'progress.csv', newline='') as file:
        return max(len(list(csv.reader(file))) - 1, 0)


def without_wall_time(path: Path) -> list[list[str]]:
    with open(path, newline='') as file:
        rows = list(csv.reader(file))
    kept = [index for index, key in enumerate(rows[0]) if not is_wall_time_column(key)]
    assert len(kept) < len(rows[0]) - 1  # WallTime and the Time/ columns are left out
    return [[row[index] for index in kept] for row in rows]


@pytest.mark.slow
def test_a_killed_and_resumed_run_writes_what_an_uninterrupted_run_writes(tmp_path):
    flags = ['qmp_dnc', '--n_epochs', '5', '--snapshot_gap', '2', *TINY_TOY_FLAGS]
    whole = start_run([*flags, '--log_root', str(tmp_path / 'whole')], hash_seed='1')
    _, stderr = whole.communicate(timeout=600)
    assert whole.returncode == 0, stderr[-2000:]

    killed_dir = tmp_path / 'killed' / RUN_NAME
    killed = start_run([*flags, '--log_root', str(tmp_path / 'killed')], hash_seed='2')
    wait_until(lambda: data_rows(killed_dir) >= 3, killed)  # the snapshot holds epoch 2
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    (killed_dir / '.params-stray.tmp').write_bytes(b'left by a kill during a save')
    resumed = start_run(['resume', '--snapshot_dir', str(killed_dir)], hash_seed='3')
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-2000:]

    # Byte-identical apart from the wall time, though the hash seeds differ.
    expected = without_wall_time(tmp_path / 'whole' / RUN_NAME / 'progress.csv')
    assert without_wall_time(killed_dir / 'progress.csv') == expected
    header = expected[0]
    assert header[:2] == ['Epoch', 'TotalEnvSteps'] and header[2:] == sorted(header[2:])
    assert [row[0] for row in expected[1:]] == ['1', '2', '3', '4', '5']
    assert not list(killed_dir.glob('.params-*.tmp'))
    assert snapshot_epochs(str(killed_dir)) == 5
    assert [int(m.group(1)) for m in map(EPOCH_LINE.match, stdout.splitlines()) if m][-1] == 5

    # TensorBoard hides the killed session's events after the snapshot (env step 400).
    events = EventAccumulator(str(killed_dir))
    events.Reload()
    steps = [event.step for event in events.Scalars('Train/AverageReturn')]
    assert steps == [200, 400, 600, 800, 1000]


@pytest.mark.slow
def test_ctrl_c_ends_with_one_line_and_exit_code_130_also_when_resuming(tmp_path):
    run_dir = tmp_path / RUN_NAME
    # Far more epochs than can run before the signal, even on a loaded machine.
    run = start_run(
        ['qmp_dnc', '--log_root', str(tmp_path), '--n_epochs', '100000', *TINY_TOY_FLAGS]
    )
    wait_until(lambda: (run_dir / 'snapshot.json').exists(), run)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130 and 'Traceback' not in stderr
    last_line = stderr.strip().splitlines()[-1]
    match = re.fullmatch(
        r'run\.py: interrupted at epoch (\d+)/100000; continue with: python run\.py '
        r'resume --snapshot_dir (\S+)',
        last_line,
    )
    assert match and match.group(2) == str(run_dir), last_line
    first_epoch = EPOCH_LINE.match(stdout.splitlines()[2])  # after the two start lines
    assert first_epoch and first_epoch.group(1, 2, 3) == ('1', '100000', '200')
    assert not list(run_dir.glob('.params-*.tmp'))

    done = snapshot_epochs(str(run_dir))
    resumed = start_run(['resume', '--snapshot_dir', str(run_dir)])
    wait_until(lambda: snapshot_epochs(str(run_dir)) > done, resumed)
    resumed.send_signal(signal.SIGINT)
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 130 and 'Traceback' not in stderr
    assert re.fullmatch(
        r'run\.py: interrupted at epoch \d+/100000; continue with: python run\.py '
        rf'resume --snapshot_dir {re.escape(str(run_dir))}',
        stderr.strip().splitlines()[-1],
    )


@pytest.mark.slow
def test_a_closed_console_does_not_stop_the_run(tmp_path):
    run = start_run(['qmp_dnc', '--log_root', str(tmp_path), '--n_epochs', '3', *TINY_TOY_FLAGS])
    run.stdout.readline()  # like `run.py ... | head -1`
    run.stdout.close()
    stderr = run.stderr.read()
    assert run.wait(timeout=600) == 0, stderr[-2000:]
    assert 'BrokenPipe' not in stderr and 'Traceback' not in stderr
    assert data_rows(tmp_path / RUN_NAME) == 3
    assert (tmp_path / RUN_NAME / 'learning_curve.png').exists()


def test_the_console_line_holds_progress_success_return_speed_and_eta(monkeypatch):
    clock = iter([1000.0, 1040.0])
    monkeypatch.setattr(logging_utils, 'time', SimpleNamespace(time=lambda: next(clock)))
    console = ConsoleOutput(n_epochs=10, start_epochs=1, start_env_steps=400)
    line = console.epoch_line(
        {
            'Epoch': 3,
            'TotalEnvSteps': 1200,
            'Evaluation/SuccessRate': 0.25,
            'Evaluation/Mixture/SuccessRate': 0.5,
            'Evaluation/AverageReturn': -1.5,
            'Train/AverageReturn': -2.0,
        }
    )
    # 800 new steps in 40 s; 7 epochs left at 20 s per epoch of this session.
    assert line == (
        'epoch 3/10 | 1,200 env steps | eval success 0.25 (mixture 0.50) | '
        'return eval -1.50 train -2.00 | 20 steps/s | 0:00:40 elapsed, '
        'ETA 0:02:20'
    )
    assert EPOCH_LINE.match(line)


def test_columns_start_with_epoch_steps_and_wall_time_then_sorted():
    assert column_order(['b', 'WallTime', 'a/c', 'TotalEnvSteps', 'Epoch', 'A']) == [
        'Epoch',
        'TotalEnvSteps',
        'WallTime',
        'A',
        'a/c',
        'b',
    ]


def test_truncating_progress_keeps_the_rows_up_to_the_snapshot(tmp_path):
    path = tmp_path / 'progress.csv'
    path.write_text('Epoch,TotalEnvSteps,WallTime,x\n1,10,0.1,a\n2,20,0.2,b\n3,30,0.3,c\n4,4')
    assert truncate_progress(str(path), 2) == 2  # row 3, and row 4 cut by a kill
    assert path.read_text().splitlines() == [
        'Epoch,TotalEnvSteps,WallTime,x',
        '1,10,0.1,a',
        '2,20,0.2,b',
    ]
    assert truncate_progress(str(path), 2) == 0


def test_a_stale_snapshot_json_falls_back_to_the_snapshot_itself(tmp_path):
    AtomicSnapshotter(str(tmp_path), 'last', 1).save_itr_params(2, {'epochs_done': 3})
    assert json.loads((tmp_path / 'snapshot.json').read_text())['epochs_done'] == 3
    assert snapshot_epochs(str(tmp_path)) == 3
    atomic_pickle({'epochs_done': 5}, str(tmp_path / 'params.pkl'))  # killed before the json
    assert snapshot_epochs(str(tmp_path)) == 5


def test_an_unexpected_error_leaves_its_traceback_in_debug_log(tmp_path):
    logger.add_output(FlushingTextOutput(str(tmp_path / 'debug.log')))
    try:
        with pytest.raises(ValueError, match='broken learner'):
            with run_guard(ExactTrainer(str(tmp_path)), str(tmp_path)):
                raise ValueError('broken learner')
        text = (tmp_path / 'debug.log').read_text()  # flushed without closing the file
    finally:
        logger.remove_all()
    assert 'Traceback' in text and 'ValueError: broken learner' in text


def test_an_unpickled_env_continues_its_random_stream():
    task_env = make_env('PointReachMT-v0', seed=3).get_train_envs()[0]
    for _ in range(3):
        task_env.reset()
    clone = pickle.loads(pickle.dumps(task_env))
    starts = [task_env.reset()[0] for _ in range(2)]
    np.testing.assert_array_equal([clone.reset()[0] for _ in range(2)], starts)
    assert not np.array_equal(starts[0], starts[1])  # the start noise is random


def test_tensorboard_leaves_out_nan_values_without_a_warning(tmp_path, caplog):
    output = PurgingTensorBoardOutput(str(tmp_path), x_axis='TotalEnvSteps')
    table = TabularInput()
    table.record('TotalEnvSteps', 200)
    table.record('Evaluation/SuccessRate', float('nan'))
    table.record('Train/AverageReturn', -3.5)
    output.record(table)
    output.dump()
    output.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert 'Evaluation/SuccessRate' not in events.Tags()['scalars']
    assert [(e.step, e.value) for e in events.Scalars('Train/AverageReturn')] == [(200, -3.5)]
    assert 'NaN or Inf' not in caplog.text


class _EpochCounts(SimpleNamespace):
    """What ``run_guard`` reads of a trainer, and the trainer's interrupt check."""

    raise_if_interrupted = ExactTrainer.raise_if_interrupted


def test_a_ctrl_c_swallowed_on_its_way_is_raised_again_and_ends_the_run(tmp_path, capsys):
    """A ``KeyboardInterrupt`` raised inside a finalizer is lost; the guard remembers the
    Ctrl-C on the trainer, so the next epoch boundary (``raise_if_interrupted``) still ends
    the run."""
    trainer = _EpochCounts(n_epochs=10, epochs_done=3, snapshot_epochs=3)
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as exit_info:
        with run_guard(trainer, str(tmp_path)):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the handler raises within the sleep
            except KeyboardInterrupt:
                pass  # swallowed, as by a finalizer
            assert trainer.interrupt_requested
            trainer.raise_if_interrupted()
            pytest.fail('the remembered Ctrl-C was not raised again')
    assert exit_info.value.code == 130
    assert 'interrupted at epoch 4/10; continue with' in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert not trainer.interrupt_requested  # the request ended with its guard
    with run_guard(trainer, str(tmp_path)):
        trainer.raise_if_interrupted()


def test_the_interrupt_message_names_the_snapshot_on_disk(tmp_path):
    """A Ctrl-C just after a save, before the trainer counted it: the message describes the
    snapshot that ``resume`` will load, not the trainer's stale count."""
    trainer = SimpleNamespace(n_epochs=10, epochs_done=2, snapshot_epochs=1)
    stale = interrupt_message(trainer, str(tmp_path))
    assert stale.endswith('(the snapshot holds epoch 1; later ones are redone)')
    (tmp_path / 'params.pkl').write_bytes(b'the snapshot of epoch 2')
    inode = os.stat(tmp_path / 'params.pkl').st_ino
    (tmp_path / 'snapshot.json').write_text(json.dumps({'epochs_done': 2, 'params_inode': inode}))
    assert interrupt_message(trainer, str(tmp_path)) == (
        f'interrupted at epoch 3/10; continue with: python run.py resume --snapshot_dir {tmp_path}'
    )
