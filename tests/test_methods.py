"""The method table is the one source: README, flags, presets and checks follow from its rows."""

from __future__ import annotations

import re

import pytest

import run
from configuration.flags import FIELDS, flags_for
from configuration.methods import FLAG_GROUPS, METHODS, MethodSpec, methods_taking
from conftest import REPO_ROOT
from environments.registry import make_env
from experiment_utils import METHOD_PRESETS, ConfigError, resolve_config
from garage_experiments import build_algorithm
from learning.networks.decaf import DecafTwinCritics
from learning.policies import QSwitchMixturePolicy

QSWITCH_FLAGS = {'qmp_score_action', 'qmp_score_critic', 'qmp_selection', 'policy_sampling_freq'}
DNC_FLAGS = {
    'kl_coeff',
    'sampling_type',
    'regularize_representation',
    'distillation_period',
    'distillation_n_epochs',
}
UDS_FLAGS = {'sharing_quantile', 'unsupervised'}
PCGRAD_FLAGS = {'use_pc_grad', 'skip_alpha_pc_grad'}


def readme_methods() -> list[str]:
    """The method of every row of the README's "## Methods" table (first backticked word)."""
    readme = (REPO_ROOT / 'README.md').read_text()
    section = readme.split('\n## Methods\n', 1)[1].split('\n## ', 1)[0]
    table = section.split('\n| method |', 1)[1].split('\n\n', 1)[0]
    rows = table.splitlines()[2:]  # after the header's rest and the |---| line
    return [re.match(r'\| `(\w+)', row).group(1) for row in rows]


def test_the_readme_method_table_lists_exactly_the_registered_methods():
    names = readme_methods()
    assert len(names) >= len(METHODS)
    assert set(names) == set(METHODS)


def accepted(method: str) -> set[str]:
    return {field.name for field in flags_for(method)}


@pytest.mark.parametrize('method', sorted(METHODS))
def test_every_row_takes_exactly_the_flag_groups_of_its_parts(method):
    spec = METHODS[method]
    flags = accepted(method)
    for group_flags, takes in (
        (QSWITCH_FLAGS, spec.uses_qswitch),
        (DNC_FLAGS, spec.learner == 'separated'),
        (UDS_FLAGS, spec.shares_data),
        (PCGRAD_FLAGS, spec.learner == 'shared'),
    ):
        assert (group_flags <= flags) == takes, group_flags
        assert not (group_flags & flags) or takes, group_flags
    assert {'lr', 'env', 'seed', 'batch_size', 'replay_capacity'} <= flags
    assert spec.uses_qswitch == method.startswith('qmp_')  # the release's naming


def test_every_method_specific_flag_belongs_to_a_group_some_method_takes():
    groups = {field.metadata['group'] for field in FIELDS.values()} - {None}
    assert groups == set(FLAG_GROUPS)
    assert set(methods_taking('qswitch')) == {'qmp_dnc', 'qmp_sac', 'qmp_uds_dnc', 'qmp_mcal'}
    assert set(methods_taking('uds')) == {'uds_dnc', 'qmp_uds_dnc'}
    with pytest.raises(ValueError, match='unknown flag group'):
        methods_taking('qmp')


def test_presets_come_from_the_learner_family():
    assert METHOD_PRESETS == {
        **{
            m: {'policy_architecture': 'multihead', 'Q_architecture': 'multihead'}
            for m in ('sac', 'mtsac', 'qmp_sac')
        },
        **{
            m: {'policy_architecture': 'multihead', 'Q_architecture': 'separate'}
            for m in ('mcal', 'qmp_mcal')
        },
    }


def test_top_level_help_shows_every_row(capsys):
    assert run.main(['--help']) == 0
    out = capsys.readouterr().out
    for name, spec in METHODS.items():
        assert f'  {name:11s} {spec.description}' in out


QMP_DECAF = MethodSpec(
    'qmp_decaf',
    'DECAF + QMP',
    'DECAF critics, data collected by the Q-switch mixture',
    'separated',
    uses_qswitch=True,
    decaf_critics=True,
)


def test_a_recombination_method_is_one_row(monkeypatch):
    monkeypatch.setitem(METHODS, 'qmp_decaf', QMP_DECAF)
    config = run.parse(['qmp_decaf', '--env=PointReachMT-v0', '--qmp_score_critic', 'min'])
    assert (config.method, config.qmp_score_critic) == ('qmp_decaf', 'min')
    for argv, message in (
        (['--kl_coeff', '0.1'], 'does not combine with the DnC KL term'),
        (['--distillation_period', '1'], 'does not distil'),
        (['--partition', 'random'], '--partition random is offered for'),
        (['--sharing_quantile', '0.5'], 'unrecognized arguments'),
        (['--Q_architecture', 'multihead'], 'trains one network per task'),
    ):
        with pytest.raises(ConfigError, match=message):
            run.parse(['qmp_decaf', '--env=PointReachMT-v0', *argv])
    config = resolve_config('qmp_decaf', {'env': 'PointReachMT-v0', 'hidden_sizes': [8]})
    env = make_env('PointReachMT-v0')
    try:
        algo = build_algorithm(config, env)
        assert isinstance(algo.exploration_policy, QSwitchMixturePolicy)
        assert isinstance(algo.critics, DecafTwinCritics)
    finally:
        env.close()


def test_min_buffer_size_cannot_exceed_the_replay_capacity(capsys):
    assert (
        run.parse(
            ['qmp_dnc', '--min_buffer_size', '300', '--replay_capacity', '300']
        ).replay_capacity
        == 300
    )
    assert run.main(['qmp_dnc', '--min_buffer_size', '300', '--replay_capacity', '299']) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    (line,) = captured.err.splitlines()
    assert line == (
        'run.py: error: --min_buffer_size 300 is larger than --replay_capacity 299: '
        'a buffer that cannot hold that many transitions never starts training'
    )
    assert run.main(['qmp_dnc', '--replay_capacity', '0']) == 2
    assert '--replay_capacity must be at least 1' in capsys.readouterr().err
