"""QMP learning code: per-task SAC, the Q-switch mixture policy, buffers, evaluation, logging.

The garage compatibility layer is applied first, so that every ``learning.*`` import may use
garage on the maintained stack.
"""
from learning import garage_compat  # noqa: F401  (must precede any garage import)
