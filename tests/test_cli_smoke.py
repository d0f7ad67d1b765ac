"""Every method through ``run.py`` for real: training happens, logs and snapshots appear."""

from __future__ import annotations

import csv
import json
import math
import pickle
import re
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, TINY_TOY_FLAGS
from experiment_utils import METHODS
from infrastructure.replay_chunks import read_replay_chunks

QMP_ONLY = ('Evaluation/Mixture/SuccessRate', 'Train/OwnPolicyFreq', 'Train/Task0/Policy3Freq')


def read_progress(log_dir: Path) -> list[dict[str, float]]:
    with open(log_dir / 'progress.csv', newline='') as file:
        return [
            {k: float(v) if v not in ('', None) else math.nan for k, v in row.items()}
            for row in csv.DictReader(file)
        ]


def train(cli, tmp_path: Path, method: str, *flags: str) -> Path:
    result = cli([method, '--log_root', str(tmp_path), *TINY_TOY_FLAGS, *flags])
    assert result.returncode == 0, result.stderr[-3000:]
    log_dirs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    return log_dirs[-1]


@pytest.mark.parametrize('method', sorted(METHODS))
def test_method_trains_two_epochs_on_the_toy_env(method, cli, tmp_path):
    log_dir = train(cli, tmp_path, method, '--n_epochs', '2')
    assert log_dir.name == f'{method}_PointReachMT-v0_None_0'
    rows = read_progress(log_dir)
    assert len(rows) == 2
    total_steps = sum(row['Train/GradientSteps'] for row in rows)
    assert total_steps > 0
    assert rows[-1]['Train/Task3/GradientSteps'] > 0
    # Warm-up: 50 steps per task (separated) or 50 in all (one shared buffer), rounded up to
    # whole 50-step episodes; then one 200-step round.
    warm_up = 50 if method in ('sac', 'mtsac', 'qmp_sac') else 200
    assert (rows[0]['TotalEnvSteps'], rows[1]['TotalEnvSteps']) == (warm_up, warm_up + 200)
    assert rows[-1]['Evaluation/NumEpisodes'] == 4
    assert math.isfinite(rows[-1]['Train/Task0/Qf1Loss'])
    is_qmp = method.startswith('qmp')
    for key in QMP_ONLY:
        assert (key in rows[-1]) == is_qmp
    if is_qmp:
        for task in range(4):
            frequencies = [rows[-1][f'Train/Task{task}/Policy{j}Freq'] for j in range(4)]
            assert sum(frequencies) == pytest.approx(1.0)
    for name in ('params.pkl', 'learning_curve.png', 'variant.json', 'debug.log'):
        assert (log_dir / name).stat().st_size > 0, name
    assert list(log_dir.glob('events.out.tfevents.*'))
    assert json.loads((log_dir / 'variant.json').read_text())['config']['method'] == method
    # the snapshot as resume reads it: params.pkl plus its replay chunks
    with open(log_dir / 'params.pkl', 'rb') as file, read_replay_chunks(str(log_dir)):
        snapshot = pickle.load(file)
    algo = snapshot['algo']
    sizes = algo.replay_buffer.sizes()
    # every collected transition is stored, and every logged gradient step was an Adam step
    assert sizes.sum() == rows[-1]['Train/ReplayBufferSize'] == rows[-1]['TotalEnvSteps']
    assert critic_adam_steps(algo) == total_steps
    per_task = [sum(row[f'Train/Task{t}/GradientSteps'] for row in rows) for t in range(4)]
    if hasattr(getattr(algo, 'critic_optimizer', None), 'steps'):  # per-task Adam counts
        assert algo.critic_optimizer.steps[0].tolist() == per_task


def critic_adam_steps(algo) -> int:
    """Adam steps the critics took: per-task counts summed, or the shared optimizer's."""
    optimizer = getattr(algo, 'critic_optimizer', None) or algo.qf1_optimizer
    if hasattr(optimizer, 'steps'):
        return int(optimizer.steps[0].sum())
    return int(next(iter(optimizer.state.values()))['step'])


def test_qmp_variants_run_and_reruns_never_overwrite(cli, tmp_path):
    flags = (
        '--n_epochs',
        '1',
        '--qmp_score_action',
        'sample',
        '--qmp_score_critic',
        'min',
        '--policy_sampling_freq',
        '3',
    )
    first = train(cli, tmp_path, 'qmp_dnc', *flags)
    before = (first / 'progress.csv').read_bytes()
    second = train(cli, tmp_path, 'qmp_dnc', '--n_epochs', '1', '--qmp_selection', 'uniform')
    assert second.name == first.name + '_1'
    assert (first / 'progress.csv').read_bytes() == before
    config = json.loads((first / 'variant.json').read_text())['config']
    assert (config['qmp_score_critic'], config['policy_sampling_freq']) == ('min', 3)
    own = read_progress(second)[-1]['Train/OwnPolicyFreq']
    assert 0.05 < own < 0.6  # uniform over 4 policies: about 1/4


def test_dnc_regularisation_and_distillation_run(cli, tmp_path):
    log_dir = train(
        cli,
        tmp_path,
        'dnc_sac',
        '--n_epochs',
        '2',
        '--kl_coeff',
        '0.1',
        '--sampling_type',
        'i+j',
        '--distillation_period',
        '1',
        '--distillation_n_epochs',
        '5',
    )
    row = read_progress(log_dir)[-1]
    # differently initialised policies: a positive KL
    assert row['Train/PolicyKL'] > 0
    penalty = 0.1 * 3 * row['Train/Task0/PolicyKL']  # beta x 3 other policies x mean KL
    assert row['Train/Task0/PolicyKLPenalty'] == pytest.approx(penalty, rel=1e-4)
    with open(log_dir / 'params.pkl', 'rb') as file:
        algo = pickle.load(file)['algo']
    # distilled once (after epoch 1, never after epoch 0): 5 Adam steps, copied into all
    assert {float(s['step']) for s in algo.central_optimizer.state.values()} == {5.0}
    for policy_parameter, central_parameter in zip(
        algo.policies.parameters(), algo.central_policy.parameters(), strict=True
    ):
        assert all(torch.equal(policy_parameter[t], central_parameter[0]) for t in range(4))


@pytest.mark.parametrize(
    'method, flags',
    [('qmp_uds_dnc', ['--sharing_quantile', '0.5']), ('dnc_sac', ['--kl_coeff', '0.1'])],
)
def test_every_logged_metric_is_documented_in_the_readme(method, flags, cli, tmp_path):
    log_dir = train(cli, tmp_path, method, '--n_epochs', '1', *flags)
    readme = (REPO_ROOT / 'README.md').read_text()
    documented = set(re.findall(r'`([A-Za-z]+(?:/[A-Za-z0-9{}]+)*)`', readme))
    undocumented = set()
    for column in read_progress(log_dir)[0]:
        pattern = re.sub(r'Task\d+', 'Task{i}', re.sub(r'Policy\d+Freq', 'Policy{j}Freq', column))
        if pattern not in documented:
            undocumented.add(pattern)
    assert not undocumented, sorted(undocumented)


@pytest.mark.slow
def test_ray_sampler_collects_and_trains(cli, tmp_path):
    log_dir = train(cli, tmp_path, 'qmp_dnc', '--n_epochs', '1', '--sampler_type', 'ray')
    row = read_progress(log_dir)[-1]
    assert row['Train/GradientSteps'] > 0
    for task in range(4):  # every worker collected, and its Q-switch selections were counted
        assert row[f'Train/Task{task}/EnvSteps'] > 0
        assert sum(row[f'Train/Task{task}/Policy{j}Freq'] for j in range(4)) == pytest.approx(1)


@pytest.mark.slow
def test_two_worker_processes_collect_evaluate_and_exit(cli, tmp_path):
    log_dir = train(cli, tmp_path, 'qmp_dnc', '--n_epochs', '2', '--n_workers', '2')
    rows = read_progress(log_dir)
    assert [row['Evaluation/NumEpisodes'] for row in rows] == [4, 4]
    assert [row['Evaluation/Mixture/NumEpisodes'] for row in rows] == [4, 4]
    assert rows[-1]['Train/GradientSteps'] > 0


@pytest.mark.slow
@pytest.mark.mujoco
@pytest.mark.parametrize('method', ['qmp_dnc', 'qmp_sac', 'uds_dnc', 'qmp_uds_dnc'])
def test_one_metaworld_mt10_iteration(method, cli, tmp_path):
    result = cli(
        [
            method,
            '--env=MetaWorldMT10-v2',
            '--log_root',
            str(tmp_path),
            '--n_epochs',
            '1',
            '--steps_per_epoch',
            '1',
            '--min_buffer_size',
            '500',
            '--gradient_steps_per_itr',
            '20',
            '--buffer_batch_size',
            '32',
            '--num_evaluation_episodes',
            '10',
            '--hidden_sizes',
            '32',
            '32',
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # All tasks share one observation space, so garage's batch check finds nothing amiss.
    assert 'outside observation_space' not in result.stderr
    (log_dir,) = tmp_path.iterdir()
    row = read_progress(log_dir)[-1]
    # The warm-up round: min_buffer_size x 10 tasks (separated) or min_buffer_size steps
    # (shared buffer), rounded up to whole 500-step episodes.
    assert row['TotalEnvSteps'] == (500 if method == 'qmp_sac' else 5000)
    assert row['Train/GradientSteps'] > 0
    assert row['Evaluation/NumEpisodes'] == 10
    assert row.get('Evaluation/Mixture/NumEpisodes') == (10 if method.startswith('qmp') else None)
    if method != 'qmp_sac':
        assert all(row[f'Train/Task{t}/EnvSteps'] == 500 for t in range(10))
    if 'uds' in method:
        assert row['Train/SharedDataShare'] == 1.0  # quantile 0 shares everything offered


@pytest.mark.slow
@pytest.mark.mujoco
@pytest.mark.parametrize(
    'env_id, n_tasks, horizon, flags',
    [
        ('JacoReachMT5-v1', 5, 200, []),
        ('MazeLarge-10-v0', 10, 600, []),
        ('Walker2dMT4-v0', 4, 1000, []),
        ('KitchenMTEasy-v0', 2, 140, ['--task_name', '4,9']),  # a task subset keeps it short
        ('MetaWorldCDS-v1', 4, 500, []),
    ],
)
def test_one_qmp_dnc_iteration_on_each_mujoco_env(env_id, n_tasks, horizon, flags, cli, tmp_path):
    result = cli(
        [
            'qmp_dnc',
            f'--env={env_id}',
            '--log_root',
            str(tmp_path),
            '--n_epochs',
            '1',
            '--batch_size',
            str(n_tasks * horizon),
            '--min_buffer_size',
            str(horizon),
            '--gradient_steps_per_itr',
            '20',
            '--buffer_batch_size',
            '32',
            '--num_evaluation_episodes',
            str(n_tasks),
            '--hidden_sizes',
            '32',
            '32',
            *flags,
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'outside observation_space' not in result.stderr
    (log_dir,) = tmp_path.iterdir()
    row = read_progress(log_dir)[-1]
    assert row['Train/GradientSteps'] > 0
    assert row['Evaluation/NumEpisodes'] == n_tasks
    assert row['Evaluation/Mixture/NumEpisodes'] == n_tasks
    # The multistage reacher also reports how many of its 3 stages were completed.
    assert ('Evaluation/StagesCompleted' in row) == (env_id == 'JacoReachMT5-v1')


@pytest.mark.slow
@pytest.mark.mujoco
def test_supervised_data_sharing_on_the_reacher(cli, tmp_path):
    result = cli(
        [
            'uds_dnc',
            '--env=JacoReachMT5-v1',
            '--unsupervised',
            'false',
            '--log_root',
            str(tmp_path),
            '--n_epochs',
            '1',
            '--min_buffer_size',
            '200',
            '--gradient_steps_per_itr',
            '20',
            '--buffer_batch_size',
            '32',
            '--num_evaluation_episodes',
            '5',
            '--hidden_sizes',
            '32',
            '32',
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (log_dir,) = tmp_path.iterdir()
    row = read_progress(log_dir)[-1]
    assert row['Train/GradientSteps'] > 0 and row['Train/SharedDataShare'] == 1.0
