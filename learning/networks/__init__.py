"""The task networks: their contract (``contract.py``), the separated family
(``separate.py``), the parameter-sharing family (``multihead.py``), DECAF's critics
(``decaf.py``) and the action distribution (``distributions.py``)."""

from learning.networks.contract import (
    EACH_TASK,
    CriticsOnRows,
    PolicyOnRows,
    RowTasks,
    ScoringCritics,
    TaskCritics,
    TaskPolicies,
)
from learning.networks.decaf import DecafTwinCritics
from learning.networks.distributions import LOG_STD_MAX, LOG_STD_MIN, TanhNormal
from learning.networks.multihead import MultiheadTanhGaussianPolicy, MultiheadTwinCritics
from learning.networks.separate import (
    TaskLayerNorm,
    TaskLinear,
    TaskMLP,
    TaskTanhGaussianPolicies,
    TaskTwinCritics,
)

__all__ = [
    'EACH_TASK',
    'LOG_STD_MAX',
    'LOG_STD_MIN',
    'CriticsOnRows',
    'DecafTwinCritics',
    'MultiheadTanhGaussianPolicy',
    'MultiheadTwinCritics',
    'PolicyOnRows',
    'RowTasks',
    'ScoringCritics',
    'TanhNormal',
    'TaskCritics',
    'TaskLayerNorm',
    'TaskLinear',
    'TaskMLP',
    'TaskPolicies',
    'TaskTanhGaussianPolicies',
    'TaskTwinCritics',
]
