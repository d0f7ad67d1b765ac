"""The CLI's configuration: presets are real flags, precedence, validation, and clean errors."""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest

import experiment_utils
import run
from conftest import REPO_ROOT
from environments.registry import ENVS
from experiment_utils import ENV_PRESETS, FIELDS, ConfigError, resolve_config, run_name


def test_every_preset_key_is_a_flag_and_every_preset_env_is_registered():
    for env_id, preset in ENV_PRESETS.items():
        assert env_id in ENVS
        assert set(preset) <= set(FIELDS)
        assert preset['n_policies'] == ENVS[env_id].n_tasks


def test_a_misspelled_preset_key_fails_at_import(monkeypatch):
    monkeypatch.setitem(
        ENV_PRESETS, 'PointReachMT-v0', {**ENV_PRESETS['PointReachMT-v0'], 'num_epochs': 500}
    )
    with pytest.raises(ConfigError, match='num_epochs'):
        experiment_utils._check_presets()


def test_precedence_defaults_then_preset_then_typed_flags():
    config = run.parse(['qmp_dnc', '--env', 'MetaWorldMT10-v2', '--lr', '0.01'])
    assert config.lr == 0.01  # typed beats preset (0.0015)
    assert config.buffer_batch_size == 2560  # preset beats default (32)
    assert config.discount == 0.99  # default
    assert config.n_policies == 10


def test_parameter_sharing_defaults_to_multihead_and_takes_the_readme_flags():
    config = run.parse(
        [
            'qmp_sac',
            '--policy_architecture',
            'multihead',
            '--Q_architecture',
            'multihead',
            '--lr',
            '0.001',
            '--hidden_sizes',
            '512',
            '512',
        ]
    )
    assert (config.policy_architecture, config.Q_architecture) == ('multihead', 'multihead')
    assert config.lr == 0.001 and config.hidden_sizes == [512, 512]
    assert run.parse(['mtsac']).policy_architecture == 'multihead'
    shared = run.parse(['sac', '--policy_architecture', 'shared', '--Q_architecture', 'shared'])
    assert shared.include_task_id is False  # the fully shared baseline sees no task id
    assert run.parse(['mtsac', '--use_pc_grad', 'true']).skip_alpha_pc_grad is True


def test_a_task_subset_sets_the_task_count():
    config = run.parse(['qmp_dnc', '--env=MazeLarge-10-v0', '--task_name', '2,5'])
    assert config.n_tasks == config.n_policies == 2
    assert (
        run.main(['qmp_dnc', '--env=MazeLarge-10-v0', '--task_name', '2,5', '--n_policies', '10'])
        == 2
    )


def test_release_command_lines_parse():
    assert run.parse(['qmp_dnc', '--env=MetaWorldMT10-v2']).env == 'MetaWorldMT10-v2'
    config = run.parse(
        [
            'dnc_sac',
            '--env=MetaWorldMT50-v2',
            '--kl_coeff',
            '0',
            '--seed',
            '3',
            '--name',
            'my run',
            '--include_task_id',
            'True',
        ]
    )
    assert config.include_task_id is True and config.hidden_sizes == [400, 400]
    assert run_name(config) == 'dnc_sac_MetaWorldMT50-v2_my-run_3'
    assert run.parse(['qmp_dnc', '--layer_norm']).layer_norm is True
    assert run.parse(['qmp_dnc', '--wandb', 'false']).wandb is False


@pytest.mark.parametrize(
    'argv, message',
    [
        (['resume'], 'required: --snapshot_dir'),
        (['unknown_method'], "unknown method 'unknown_method'"),
        (['mcal', '--Q_architecture', 'multihead'], 'needs --policy_architecture multihead'),
        (['decaf', '--Q_architecture', 'multihead'], 'trains one network per task'),
        (
            ['qmp_dnc', '--env=MazeLarge-10-v0', '--task_name', '2,x'],
            'comma-separated task indices',
        ),
        (['qmp_dnc', '--env=MazeLarge-10-v0', '--task_name', '2,2'], 'distinct tasks'),
        (['qmp_dnc', '--env=MazeLarge-10-v0', '--task_name', '10'], 'distinct tasks'),
        (['qmp_dnc', '--env=Walker2dMT4-v0', '--task_name', '1'], 'does not select task subsets'),
        (['mtsac', '--policy_architecture', 'separate'], 'shares parameters across tasks'),
        (['qmp_sac', '--Q_architecture', 'shared'], 'needs --policy_architecture multihead'),
        (['mtsac', '--policy_architecture', 'shared'], 'needs --include_task_id true'),
        (['dnc_sac', '--Q_architecture', 'multihead'], 'trains one network per task'),
        (['qmp_dnc', '--use_pc_grad'], 'unrecognized arguments'),
        (['--env', 'x'], 'missing method'),
        (['qmp_dnc', '--env=NoSuchEnv'], "invalid choice: 'NoSuchEnv'"),
        (['qmp_dnc', '--no_such_flag', '1'], 'unrecognized arguments'),
        (['dnc_sac', '--policy_sampling_freq', '2'], 'unrecognized arguments'),
        (['dnc_sac', '--kl_coeff', 'a,b'], "invalid float value: 'a,b'"),
        (['dnc_sac', '--kl_coeff', '0', '0'], 'takes 1 or n_tasks^2 = 16 values'),
        (['dnc_sac', '--kl_coeff', '-0.1'], 'non-negative'),
        (['uds_dnc', '--kl_coeff', '0.1'], 'does not combine with the DnC KL term'),
        (['decaf', '--kl_coeff', '0.1'], 'does not combine with the DnC KL term'),
        (['uds_dnc', '--sharing_quantile', '1.5'], 'must be in [0, 1]'),
        (
            ['uds_dnc', '--env=PointReachMT-v0', '--unsupervised', 'false'],
            'which PointReachMT-v0 does not have',
        ),
        (['qmp_dnc', '--distillation_period', '5'], 'does not distil'),
        (
            ['dnc_sac', '--distillation_period', '3', '--evaluation_frequency', '2'],
            'multiple of --evaluation_frequency',
        ),
        (['dnc_sac', '--sampling_type', 'ixj'], "invalid choice: 'ixj'"),
        (['mtsac', '--sharing_quantile', '0.5'], 'unrecognized arguments'),
        (['qmp_dnc', '--batch_size', '100'], 'smaller than n_tasks x episode length'),
        (['qmp_dnc', '--min_buffer_size', '10'], 'smaller than the episode length'),
        (
            ['qmp_dnc', '--env=PointReachMT-v0', '--n_policies', '3'],
            'does not match PointReachMT-v0',
        ),
        (['qmp_dnc', '--lr', '-1'], '--lr must be positive'),
        (['qmp_dnc', '--policy_sampling_freq', '0'], 'at least 1'),
        (['qmp_dnc', '--sparse_tasks', '7'], 'are not tasks of'),
        (['qmp_dnc', '--env=MetaWorldMT10-v2', '--sparse_tasks', '1'], 'no sparse-reward'),
        (['qmp_dnc', '--wandb', 'maybe'], 'expected true or false'),
        (['qmp_dnc', '--qmp_score_critic', 'q2'], "invalid choice: 'q2'"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(argv, message, capsys):
    assert run.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('run.py: error: ')
    assert message in lines[0]


def test_bad_input_from_the_shell_has_no_traceback_and_writes_nothing(cli, tmp_path):
    result = cli(['qmp_dnc', '--env=NoSuchEnv', '--log_root', str(tmp_path)])
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_dry_run_prints_the_resolved_configuration(capsys):
    assert run.main(['qmp_dnc', '--env=MetaWorldMT10-v2', '--dry_run']) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed['lr'] == 0.0015 and printed['method'] == 'qmp_dnc'


@pytest.mark.parametrize('method', ['qmp_dnc', 'mtsac', 'uds_dnc'])
def test_method_help_lists_flags_with_defaults(method, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run.main([method, '--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert '--batch_size' in out and '(default: 1000)' in out


def test_top_level_help_lists_the_methods(capsys):
    assert run.main([]) == 0
    out = capsys.readouterr().out
    assert 'dnc_sac' in out and 'qmp_dnc' in out


def test_resolve_config_rejects_an_unknown_env_directly():
    with pytest.raises(ConfigError, match='unknown env'):
        resolve_config('qmp_dnc', {'env': 'Nope-v0'})


def test_every_command_in_the_readme_parses():
    readme = (REPO_ROOT / 'README.md').read_text()
    commands = re.findall(r'^\.venv/bin/python run\.py (.+?)(?:\s+#.*)?$', readme, re.MULTILINE)
    commands = [c for c in commands if not c.startswith(('resume', 'METHOD'))]
    assert len(commands) >= 8
    for command in commands:
        argv = shlex.split(command.replace('$ENV', 'JacoReachMT5-v1'))
        if '--help' in argv:
            continue
        run.parse([arg for arg in argv if arg != '--dry_run'])


# The release's effective per-env settings (its run.py overrides on top of its defaults):
# n_policies, batch_size, gradient_steps_per_itr, min_buffer_size, buffer_batch_size,
# steps_per_epoch, lr, n_epochs, num_evaluation_episodes, hidden_sizes.
RELEASE_SETTINGS = {
    'JacoReachMT5-v1': (5, 1000, 1000, 10000, 32, 1, 3e-4, 2000, 50, [256, 256]),
    'MazeLarge-10-v0': (10, 6000, 1000, 3000, 256, 1, 3e-4, 2000, 100, [256, 256]),
    'Walker2dMT4-v0': (4, 4000, 6000, 10000, 32, 1, 3e-4, 2000, 40, [256, 256]),
    'MetaWorldCDS-v1': (4, 2000, 200, 5000, 256, 10, 0.0015, 500, 40, [256, 256]),
    'MetaWorldMT10-v2': (10, 5000, 500, 5000, 2560, 10, 0.0015, 1000, 100, [256, 256]),
    'MetaWorldMT50-v2': (50, 25000, 2500, 1500, 1280, 8, 3e-4, 1000, 250, [400, 400]),
    # The release's ``num_epochs=500`` typo left n_epochs at 1000.
    'KitchenMTEasy-v0': (10, 2000, 500, 2000, 1280, 5, 3e-4, 1000, 50, [256, 256]),
}
SETTING_NAMES = (
    'n_policies',
    'batch_size',
    'gradient_steps_per_itr',
    'min_buffer_size',
    'buffer_batch_size',
    'steps_per_epoch',
    'lr',
    'n_epochs',
    'num_evaluation_episodes',
    'hidden_sizes',
)


@pytest.mark.parametrize('env_id', sorted(RELEASE_SETTINGS))
def test_env_presets_give_the_release_settings(env_id):
    config = resolve_config('qmp_dnc', {'env': env_id})
    assert tuple(getattr(config, name) for name in SETTING_NAMES) == RELEASE_SETTINGS[env_id]
    assert config.num_evaluation_episodes // config.n_tasks == (
        5 if env_id in ('MetaWorldMT50-v2', 'KitchenMTEasy-v0') else 10
    )


def test_norm_obs_reaches_jaco_and_walker_only():
    walker = resolve_config('dnc_sac', {'env': 'Walker2dMT4-v0', 'norm_obs': True})
    assert experiment_utils.env_kwargs(walker)['norm_obs'] is True
    assert 'norm_obs' not in experiment_utils.env_kwargs(resolve_config('dnc_sac', {}))
    for typed, message in (
        ({'env': 'MazeLarge-10-v0'}, 'JacoReachMT5-v1 and Walker2dMT4-v0'),
        ({'env': 'JacoReachMT5-v1', 'sampler_type': 'ray'}, 'one collecting'),
        ({'env': 'JacoReachMT5-v1', 'n_workers': 2}, 'one collecting'),
        ({'env': 'JacoReachMT5-v1', 'unsupervised': False}, 'unsupervised'),
    ):
        method = 'uds_dnc' if 'unsupervised' in typed else 'dnc_sac'
        with pytest.raises(ConfigError, match=message):
            resolve_config(method, {**typed, 'norm_obs': True})


@pytest.mark.parametrize('method', ['qmp_dnc', 'mtsac', 'mcal'])
def test_random_partition_is_refused_where_it_is_not_implemented(method):
    with pytest.raises(ConfigError, match='--partition random is offered for dnc_sac'):
        resolve_config(method, {'partition': 'random'})
    assert resolve_config('dnc_sac', {'partition': 'random'}).partition == 'random'


def test_no_effect_flags_say_so_in_their_help():
    for name in ('n_policies', 'worker_type'):
        assert FIELDS[name].metadata['help'].startswith('[release compatibility, no effect]')
    assert not FIELDS['partition'].metadata['help'].startswith('[release')


@pytest.mark.parametrize(
    'flags', [{'include_task_id': True}, {'sharing_quantile': 0.0, 'unsupervised': False}]
)
def test_random_partition_refuses_flags_that_read_the_stored_one_hot(flags):
    method = 'uds_dnc' if 'unsupervised' in flags else 'dnc_sac'
    env = {'env': 'JacoReachMT5-v1'} if 'unsupervised' in flags else {}
    with pytest.raises(ConfigError, match='does not keep its task one-hot'):
        resolve_config(method, {'partition': 'random', **env, **flags})
