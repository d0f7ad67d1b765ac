"""Sampling policies handed to garage's samplers: per-task routing, the random
partition and the Q-switch mixture."""

from learning.policies.qswitch_mixture import QSwitchMixturePolicy
from learning.policies.random_partition_policy import RandomPartitionPolicy
from learning.policies.task_routing_policy import TaskRoutingPolicy

__all__ = ['QSwitchMixturePolicy', 'RandomPartitionPolicy', 'TaskRoutingPolicy']
