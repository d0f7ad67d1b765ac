"""QMP learning code: per-task SAC, the Q-switch mixture policy, the networks, replay buffers,
data sharing and the baselines' regularizers. Run plumbing (snapshots, samplers, evaluation,
logging outputs) is in ``infrastructure/``.

The garage compatibility layer is applied first, so that every ``learning.*`` import may use
garage on the maintained stack.
"""

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

from learning import moved_modules

moved_modules.install()
