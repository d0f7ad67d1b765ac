"""``infrastructure/garage_compat.py``: each adaptation of garage 2021.3.0 to this stack."""

from __future__ import annotations

import importlib
import os
import sys

import infrastructure.garage_compat as garage_compat

import numpy as np
import pytest


def test_garage_imports_without_tensorflow_and_its_tf_workers_refuse():
    import garage.sampler  # noqa: F401  (reaches garage.tf.samplers through the worker factory)

    samplers = sys.modules['garage.tf.samplers']
    with pytest.raises(RuntimeError, match='TensorFlow workers are not available'):
        samplers.TFWorkerClassWrapper(None)


def test_the_numpy_aliases_garage_uses_are_back():
    assert np.bool8 is np.bool_
    assert np.Inf == np.inf


def test_ray_workers_get_a_hook_that_resolves_to_the_adaptation(monkeypatch):
    import ray

    calls = []
    monkeypatch.setattr(ray, 'is_initialized', lambda: False)
    monkeypatch.setattr(ray, 'init', lambda **kwargs: calls.append(kwargs))
    garage_compat.init_ray(num_cpus=1)
    runtime_env = calls[0]['runtime_env']
    module_name, function_name = runtime_env['worker_process_setup_hook'].rsplit('.', 1)
    assert (
        getattr(importlib.import_module(module_name), function_name) is garage_compat.ray_setup_hook
    )
    # The workers import the hook and the env factories from the repository root.
    assert runtime_env['env_vars']['PYTHONPATH'].split(os.pathsep)[0] == garage_compat.PROJECT_ROOT
    assert os.path.isfile(os.path.join(garage_compat.PROJECT_ROOT, 'run.py'))
