"""``EpochClock``: the ``Time/...`` metrics add up as documented (on a fake clock)."""

from __future__ import annotations

import pytest
from dowel import tabular

import learning.algorithms.base as base


class FakeTrainer:
    """Stands in for garage's trainer: collection takes 2 s, a snapshot 0.5 s."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    def obtain_episodes(self, itr, batch_size=None):
        self.clock[0] += 2.0
        return 'episodes'

    def save(self, epoch):
        self.clock[0] += 0.5


def test_phases_add_up_and_the_trainer_gets_its_methods_back(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(base.time, 'perf_counter', lambda: now[0])
    trainer = FakeTrainer(now)
    clock = base.EpochClock(trainer)
    tabular.clear()
    clock.start_epoch()

    def sampling_round():  # collection (2 s) then 3 s of gradient steps
        assert trainer.obtain_episodes(0) == 'episodes'
        now[0] += 3.0

    def evaluation():
        now[0] += 1.5

    clock.time('Rounds', sampling_round)
    clock.time('Rounds', sampling_round)
    clock.time('Eval', evaluation)
    clock.record(env_steps=800)
    trainer.save(0)
    values = tabular.as_primitive_dict
    assert values['Time/Collect'] == pytest.approx(4.0)
    assert values['Time/Update'] == pytest.approx(6.0)
    assert values['Time/Eval'] == pytest.approx(1.5)
    assert values['Train/EnvStepsPerSecond'] == pytest.approx(200.0)
    assert values['Time/Snapshot'] == pytest.approx(0.5)
    assert values['Time/Epoch'] == pytest.approx(12.0)
    clock.detach()
    assert trainer.save.__func__ is FakeTrainer.save
    assert trainer.obtain_episodes.__func__ is FakeTrainer.obtain_episodes
    tabular.mark_all()  # read here, not by a logger output
    tabular.clear()
