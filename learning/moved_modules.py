"""Old import paths of the modules that moved from ``learning/`` to ``infrastructure/``.

A snapshot (``params.pkl``) names every pickled class by its module path. Those written before
the plumbing moved out of ``learning/`` name, e.g., ``learning.vectorized_sampler``, so
``resume``, ``run_policy.py`` and ``sweep.py`` of such a run would fail with
``ModuleNotFoundError``. This finder answers an import of an old path with the module at its new
path (the same module object, so the classes are identical); nothing imports these names in the
code, and no file is kept at the old paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

MOVED: dict[str, str] = {
    f'learning.{name}': f'infrastructure.{name}'
    for name in (
        'evaluation',
        'garage_compat',
        'logging_utils',
        'metrics',
        'plotting',
        'run_lifecycle',
        'samplers',
        'snapshot_info',
        'snapshots',
        'vectorized_sampler',
        'videos',
        'wandb_output',
    )
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves ``MOVED``'s old names to their new modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(MOVED[fullname]))


def install() -> None:
    """Adds the finder once (``learning/__init__`` calls it)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
