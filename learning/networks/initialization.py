"""Xavier initialisation with explicit fans, shared by both network families."""

from __future__ import annotations

import math
from typing import Literal

import torch

Init = Literal['xavier_uniform', 'xavier_normal']


def xavier_init_(weight: torch.Tensor, init: Init, fan_in: int, fan_out: int) -> None:
    """Xavier (Glorot) initialisation with explicit fans, in place.

    The fans are those of one task's (or one head's) layer even when several share a tensor,
    so every task starts as a separately initialised garage network would.
    """
    with torch.no_grad():
        if init == 'xavier_uniform':
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weight.uniform_(-bound, bound)
        else:
            weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
