"""Threads per phase: gradient steps on ``--torch_threads`` (0: every core), acting on one."""

from __future__ import annotations

import pytest
import torch
from dowel import tabular

import learning.algorithms.base as base
from infrastructure import torch_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_zero_means_every_core_the_process_may_use(monkeypatch):
    monkeypatch.setattr(torch_threads.os, 'sched_getaffinity', lambda pid: {0, 3, 5}, raising=False)
    assert torch_threads.available_cores() == 3
    assert torch_threads.resolve_threads(0) == 3
    assert torch_threads.resolve_threads(2) == 2
    with pytest.raises(ValueError, match='got -1'):
        torch_threads.resolve_threads(-1)


def test_acting_threads_runs_single_threaded_and_restores(restore_threads):
    torch.set_num_threads(2)
    with torch_threads.acting_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads.acting_threads():
        raise RuntimeError('a failing episode')
    assert torch.get_num_threads() == 2


class Trainer:
    def obtain_episodes(self, itr, batch_size=None):
        return torch.get_num_threads()

    def save(self, epoch):
        pass


def test_epoch_clock_acts_on_one_thread_and_trains_on_the_rest(restore_threads):
    torch.set_num_threads(2)
    trainer = Trainer()
    clock = base.EpochClock(trainer)
    clock.start_epoch()
    seen = {}

    def sampling_round():
        seen['collect'] = trainer.obtain_episodes(0, batch_size=10)
        seen['update'] = torch.get_num_threads()

    clock.time('Rounds', sampling_round)
    seen['eval'] = clock.time('Eval', torch.get_num_threads)
    clock.detach()
    assert seen == {'collect': 1, 'update': 2, 'eval': 1}
    assert torch.get_num_threads() == 2
    tabular.clear()
