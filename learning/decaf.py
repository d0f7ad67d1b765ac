"""Old import path of the DECAF critics, now ``learning/networks/decaf.py``."""
from learning.networks.decaf import DecafTwinCritics

__all__ = ['DecafTwinCritics']
