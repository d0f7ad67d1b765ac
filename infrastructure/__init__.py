"""Run plumbing that is not learning: what a run needs around the learner, not what it learns.

Here belong the adaptation of garage to this stack (``garage_compat``), snapshots and what they
record (``snapshots``, ``snapshot_info``, ``replay_chunks``), the run's lifecycle
(``run_lifecycle``), the samplers' process plumbing (``samplers``, ``vectorized_sampler``),
evaluation episodes and their statistics (``evaluation``, ``metrics``), the logging outputs
(``logging_utils``, ``wandb_output``), plotting and videos.

The layering this package keeps (``tests/test_layering.py`` checks it): nothing here imports
``learning/`` or ``environments/``; ``environments/`` and ``learning/`` may import this package,
and ``environments/`` imports nothing from ``learning/``. That is why the garage adaptation lives
here, at the bottom: both ``environments/`` and ``learning/`` need it before any garage import.

The garage compatibility layer is applied first, so that every ``infrastructure.*`` import may
use garage on the maintained stack.
"""

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)
