"""Snapshots written before the plumbing left ``learning/`` still unpickle."""

from __future__ import annotations

import importlib
import pickle

import pytest

import learning  # noqa: F401  (installs the finder)
from infrastructure.evaluation import LockstepEvaluator
from learning.moved_modules import MOVED


def test_a_pickle_naming_an_old_module_path_gives_the_class_at_its_new_path():
    # Protocol 0: a global is "c<module>\n<name>\n"; this is how an old params.pkl names it.
    old = b'clearning.evaluation\nLockstepEvaluator\n.'
    assert pickle.loads(old) is LockstepEvaluator


@pytest.mark.parametrize('old', sorted(MOVED))
def test_every_old_path_is_the_new_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_names_that_never_existed_still_fail():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module('learning.no_such_module')
