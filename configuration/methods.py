"""The one table of methods: every method of ``run.py`` is a row here, and nothing else.

A row says which learner family trains the method and which parts it combines (the Q-switch
mixture as the data-collection policy, online data sharing, DECAF critics). Everything the
command line needs is derived from the rows: the method names and their ``--help`` lines, which
flags each method takes (``flag_groups``), the architecture presets and the method-specific
validation (``configuration/validation.py``). ``garage_experiments.py`` maps a learner family
to its classes. A method that recombines existing parts, say DECAF critics with QMP collection,
is one more row here (and its line in the README's method table, which a test compares with
this table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

LearnerFamily = Literal['separated', 'shared', 'mcal']

# (policy, Q) architectures each learner family defaults to. Separated learners train one
# network per task; the parameter-sharing learners need non-separate networks (the release's
# defaults failed its own assertion: docs/deviations.md, "Parameter sharing"); MCAL trains
# one multihead actor against per-task critics.
DEFAULT_ARCHITECTURES: dict[LearnerFamily, tuple[str, str]] = {
    'separated': ('separate', 'separate'),
    'shared': ('multihead', 'multihead'),
    'mcal': ('multihead', 'separate'),
}

# The groups of method-specific flags (``configuration/flags.py`` tags each such flag with one).
FLAG_GROUPS = ('dnc', 'pcgrad', 'uds', 'qswitch')


@dataclass(frozen=True)
class MethodSpec:
    """One method.

    Attributes:
        name: the CLI name (the release's, where the release had the method).
        paper_label: the method's name in the paper's tables and figures.
        description: one line for ``run.py --help``.
        learner: the learner family: ``separated`` (one SAC learner per task, the DnC
            family), ``shared`` (one shared-parameter SAC learner) or ``mcal`` (one multihead
            actor against per-task critics).
        uses_qswitch: data is collected by the Q-switch mixture (QMP, the paper's Eq. 3)
            instead of each task's own policy.
        shares_data: online unsupervised data sharing between the task buffers (UDS).
        decaf_critics: each task's critic mixes all tasks' critics with learned weights.
        per_task_temperature: one SAC temperature per task (``False``: one for all tasks).
    """

    name: str
    paper_label: str
    description: str
    learner: LearnerFamily
    uses_qswitch: bool = False
    shares_data: bool = False
    decaf_critics: bool = False
    per_task_temperature: bool = True

    @property
    def flag_groups(self) -> frozenset[str]:
        """The groups of method-specific flags this method takes (``FLAG_GROUPS``)."""
        groups = {'dnc'} if self.learner == 'separated' else set()
        if self.learner == 'shared':
            groups.add('pcgrad')
        if self.shares_data:
            groups.add('uds')
        if self.uses_qswitch:
            groups.add('qswitch')
        return frozenset(groups)

    @property
    def takes_dnc_penalty(self) -> bool:
        """Whether a non-zero ``--kl_coeff`` applies: the DnC penalty is a term of the plain
        separated learner, which neither shares data nor mixes critics."""
        return self.learner == 'separated' and not (self.shares_data or self.decaf_critics)

    @property
    def distils(self) -> bool:
        """Whether ``--distillation_period`` applies (the release's QMP learners never
        distilled)."""
        return self.learner == 'separated' and not self.uses_qswitch

    @property
    def takes_random_partition(self) -> bool:
        """Whether ``--partition random`` applies: separated learners collecting with their
        own policies, where an episode can belong to any policy and its buffer."""
        return self.learner == 'separated' and not self.uses_qswitch

    @property
    def needs_task_id_on_shared_networks(self) -> bool:
        """Whether one fully shared network needs the task one-hot in its input: a
        multi-task learner (per-task temperatures) must tell the tasks apart, while the
        one-temperature ``sac`` is the task-blind Fully-Shared baseline."""
        return self.learner == 'shared' and self.per_task_temperature

    @property
    def preset(self) -> dict[str, Any]:
        """The flags this method overrides after the env preset: its family's architectures
        where they differ from the flags' defaults (separate networks)."""
        policy, critic = DEFAULT_ARCHITECTURES[self.learner]
        if (policy, critic) == DEFAULT_ARCHITECTURES['separated']:
            return {}
        return {'policy_architecture': policy, 'Q_architecture': critic}


_ROWS = (
    MethodSpec(
        'dnc_sac',
        'Separated',
        'Separated: one SAC learner per task, each collecting its own data',
        'separated',
    ),
    MethodSpec(
        'qmp_dnc',
        'Separated + QMP',
        'Separated + QMP: per-task SAC, data collected by the Q-switch mixture',
        'separated',
        uses_qswitch=True,
    ),
    MethodSpec(
        'sac',
        'Fully-Shared',
        'one SAC learner for all tasks (multihead or shared networks), one temperature',
        'shared',
        per_task_temperature=False,
    ),
    MethodSpec(
        'mtsac',
        'Parameters',
        'Parameters: multi-task SAC, multihead or shared networks, per-task temperature',
        'shared',
    ),
    MethodSpec(
        'qmp_sac',
        'Parameters + QMP',
        'Parameters + QMP: mtsac with the Q-switch over the heads collecting data',
        'shared',
        uses_qswitch=True,
    ),
    MethodSpec(
        'uds_dnc',
        'Data',
        'Data: per-task SAC with online unsupervised data sharing (UDS)',
        'separated',
        shares_data=True,
    ),
    MethodSpec(
        'qmp_uds_dnc',
        'Data + QMP',
        'Data + QMP: uds_dnc with data collected by the Q-switch mixture',
        'separated',
        uses_qswitch=True,
        shares_data=True,
    ),
    MethodSpec(
        'decaf',
        'DECAF',
        "per-task SAC whose critics mix all tasks' critics with learned weights (DECAF)",
        'separated',
        decaf_critics=True,
    ),
    MethodSpec(
        'mcal', 'MCAL', 'one multihead actor trained against per-task critics (MCAL)', 'mcal'
    ),
    MethodSpec(
        'qmp_mcal',
        'MCAL + QMP',
        "MCAL with the Q-switch over the actor's heads collecting data",
        'mcal',
        uses_qswitch=True,
    ),
)

METHODS: Mapping[str, MethodSpec] = {row.name: row for row in _ROWS}


def methods_taking(group: str) -> tuple[str, ...]:
    """Names of the methods that take the flags of ``group`` (one of ``FLAG_GROUPS``)."""
    if group not in FLAG_GROUPS:
        raise ValueError(f'unknown flag group {group!r}; groups: {FLAG_GROUPS}')
    return tuple(name for name, spec in METHODS.items() if group in spec.flag_groups)
