"""wandb is optional: refused cleanly when missing, and mirrors dowel's tabular when present."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from dowel import TabularInput

import run
from infrastructure.videos import VideoRecord
from infrastructure.wandb_output import WandbOutput, start_wandb


class FakeRun:
    def __init__(self) -> None:
        self.logged, self.finished = [], False

    def log(self, values, step=None):
        self.logged.append((values, step))

    def finish(self):
        self.finished = True


def test_wandb_without_the_package_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'wandb', None)
    monkeypatch.setattr('importlib.util.find_spec', lambda name: None)
    assert run.main(['qmp_dnc', '--wandb', 'true', '--dry_run']) == 2
    assert 'pip install wandb' in capsys.readouterr().err


def test_the_output_logs_every_scalar_at_the_env_step():
    fake = FakeRun()
    output = WandbOutput(fake)
    tabular = TabularInput()
    tabular.record('TotalEnvSteps', 1200)
    tabular.record('Evaluation/SuccessRate', 0.5)
    output.record(tabular)
    assert fake.logged == [({'TotalEnvSteps': 1200, 'Evaluation/SuccessRate': 0.5}, 1200)]
    output.close()
    assert fake.finished


def test_start_wandb_passes_the_run_settings(monkeypatch, tmp_path):
    calls = {}
    fake_module = types.SimpleNamespace(init=lambda **kwargs: calls.update(kwargs) or FakeRun())
    monkeypatch.setitem(sys.modules, 'wandb', fake_module)
    config = {'wandb_project': 'p', 'wandb_entity': None, 'notes': 'n', 'lr': 0.1}
    output = start_wandb(config, 'qmp_dnc_X_None_0', str(tmp_path))
    assert isinstance(output, WandbOutput)
    assert calls['name'] == 'qmp_dnc_X_None_0' and calls['project'] == 'p'
    assert calls['config'] is config and calls['dir'] == str(tmp_path)


def test_start_wandb_without_the_package_raises_an_import_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'wandb', None)
    with pytest.raises(ImportError, match='pip install wandb'):
        start_wandb({}, 'x', str(tmp_path))


def test_a_video_goes_to_wandb_as_media_at_its_env_step(monkeypatch):
    fake_module = types.SimpleNamespace(Video=lambda path, fps: ('video', path, fps))
    monkeypatch.setitem(sys.modules, 'wandb', fake_module)
    fake = FakeRun()
    WandbOutput(fake).record(
        VideoRecord('Evaluation/Task1/Video', 'v.mp4', np.zeros((2, 4, 4, 3), np.uint8), 40, 600)
    )
    assert fake.logged == [({'Evaluation/Task1/Video': ('video', 'v.mp4', 40)}, 600)]
