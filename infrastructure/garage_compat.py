"""Adapts garage 2021.3.0 to the maintained stack (Python 3.11, numpy 2, torch 2, no TensorFlow).

garage's last release predates numpy 2 and assumes TensorFlow is installed. This module is
imported before any garage module (``infrastructure/__init__.py``, ``learning/__init__.py`` and
``environments/__init__.py`` import it first), and each adaptation below is the smallest change
that keeps garage's own code paths working. ``tests/test_garage_compat.py`` covers every item.

1. ``import garage`` reaches ``garage.tf.samplers`` through its worker factory, which imports
   TensorFlow. We register stand-in modules for ``garage.tf`` and ``garage.tf.samplers`` whose
   ``TFWorkerClassWrapper`` raises if it is ever used (only TF algorithms use it).
2. numpy 2 removed ``np.bool8`` (garage's JSON encoder writing ``experiment.json``) and ``np.Inf``
   (garage's dm_control wrapper). We restore them as aliases of the surviving names.
3. Ray workers start fresh interpreters, so they need (1) too: ``init_ray`` starts Ray with a
   worker setup hook that imports this module, and puts the project root on the workers'
   ``PYTHONPATH`` so that the hook and our environment factories can be imported there.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _TFWorkerClassWrapperUnavailable:
    """Stands in for garage's TF worker wrapper; the torch-only stack never needs it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(
            'garage TensorFlow workers are not available: this project runs '
            'garage without TensorFlow (see infrastructure/garage_compat.py)'
        )


def _install_tensorflow_stub() -> None:
    if 'garage.tf' in sys.modules:
        return
    tf_package = types.ModuleType('garage.tf')
    tf_package.__path__ = []  # a package, so that ``garage.tf.samplers`` resolves
    samplers = types.ModuleType('garage.tf.samplers')
    # Attributes of a module made at runtime, which no stub can declare.
    samplers.TFWorkerClassWrapper = _TFWorkerClassWrapperUnavailable  # type: ignore[attr-defined]
    tf_package.samplers = samplers  # type: ignore[attr-defined]
    sys.modules['garage.tf'] = tf_package
    sys.modules['garage.tf.samplers'] = samplers


def _restore_numpy_aliases() -> None:
    if not hasattr(np, 'bool8'):
        np.bool8 = np.bool_  # type: ignore[attr-defined]  # removed in numpy 2
    if not hasattr(np, 'Inf'):
        np.Inf = np.inf  # type: ignore[attr-defined]  # removed in numpy 2


def ray_setup_hook() -> None:
    """Runs in every Ray worker before it unpickles anything garage-related."""
    apply()


def init_ray(num_cpus: int | None = None) -> None:
    """Starts Ray (once per process) so that its workers can unpickle garage samplers.

    garage's ``RaySampler`` calls ``ray.init()`` itself when Ray is not running yet, without a
    hook; calling this first (before constructing or unpickling a RaySampler) wins.
    """
    import ray  # pylint: disable=import-outside-toplevel

    if ray.is_initialized():
        return
    python_path = os.pathsep.join(p for p in (PROJECT_ROOT, os.environ.get('PYTHONPATH')) if p)
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=True,
        runtime_env={
            'worker_process_setup_hook': 'infrastructure.garage_compat.ray_setup_hook',
            'env_vars': {'PYTHONPATH': python_path},
        },
    )


def apply() -> None:
    """Applies every adaptation; idempotent."""
    _install_tensorflow_stub()
    _restore_numpy_aliases()


apply()
