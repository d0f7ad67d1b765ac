"""Learning algorithms (garage ``RLAlgorithm``s)."""
from learning.algorithms.dnc_sac import DnCSAC
from learning.algorithms.mtsac import MultiTaskSAC

__all__ = ['DnCSAC', 'MultiTaskSAC']
