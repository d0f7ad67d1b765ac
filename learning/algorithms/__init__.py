"""Learning algorithms (garage ``RLAlgorithm``s)."""

from learning.algorithms.dnc_sac import DnCSAC
from learning.algorithms.mcal import MultiCriticActorLearning
from learning.algorithms.mtsac import MultiTaskSAC

__all__ = ['DnCSAC', 'MultiCriticActorLearning', 'MultiTaskSAC']
