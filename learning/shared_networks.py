"""Old import path of the parameter-sharing networks, now ``learning/networks/multihead.py``."""
from learning.networks.multihead import MultiheadTanhGaussianPolicy, MultiheadTwinCritics

__all__ = ['MultiheadTanhGaussianPolicy', 'MultiheadTwinCritics']
