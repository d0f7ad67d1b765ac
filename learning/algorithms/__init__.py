"""Learning algorithms (garage ``RLAlgorithm``s)."""
from learning.algorithms.dnc_sac import DnCSAC

__all__ = ['DnCSAC']
