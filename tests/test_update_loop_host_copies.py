"""Inside the update loop nothing is copied to the host: each gradient step's statistics stay
on the device and a round copies them once, after its last step (on a GPU a copy per step would
make the device wait for the host at every step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.algorithms.sac_base import TrainingDivergedError, check_finite_losses

HOST_COPIES = ('cpu', 'numpy', 'tolist')
# An ``if`` on a tensor reads a value back too (on a GPU, a wait for the device). ``item`` is
# not counted: torch's unfused Adam (MCAL's) reads its step count with it, a tensor it keeps
# on the host; PCGrad's test counts it.
HOST_READS = ('__bool__', *HOST_COPIES)


def filled(method: str, **flags):
    torch.manual_seed(0)
    np.random.seed(0)
    config = resolve_config(
        method,
        {
            'batch_size': 200,
            'min_buffer_size': 50,
            'buffer_batch_size': 32,
            'hidden_sizes': [8, 8],
            **flags,
        },
    )
    algorithm = build_algorithm(config, make_env('PointReachMT-v0'))
    episodes = algorithm._sampler.obtain_samples(
        0, 400, algorithm.sampling_policy.get_param_values()
    )
    algorithm.replay_buffer.add_episodes(episodes)
    return algorithm


def recorded_reads(monkeypatch, names: tuple[str, ...]) -> list[str]:
    """The list that every later call of the ``torch.Tensor`` methods ``names`` appends its
    name to (the calls still run)."""
    reads: list[str] = []
    for name in names:
        original = getattr(torch.Tensor, name)

        def counted(tensor, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads


def gradient_step(algorithm, method: str) -> None:
    if method in ('mtsac', 'qmp_sac'):
        algorithm._gradient_step()
    else:
        algorithm._gradient_step(np.array([True, False, True, True]))


@pytest.mark.parametrize('method', ['qmp_dnc', 'uds_dnc', 'mcal', 'mtsac', 'qmp_sac'])
def test_gradient_steps_copy_nothing_to_the_host_until_the_round_ends(monkeypatch, method):
    algorithm = filled(method)
    copies = recorded_reads(monkeypatch, HOST_READS)
    for _ in range(3):
        gradient_step(algorithm, method)
    assert copies == []
    algorithm.flush_step_stats()
    assert copies == ['cpu', 'numpy']  # one copy of all statistics of the round
    assert np.isfinite(algorithm.last_stats['Qf1Loss'][0])


def test_pcgrad_steps_wait_for_nothing_on_the_device(monkeypatch):
    """PCGrad decides conflicts and splits the batch by task on the device: no ``if`` on a
    tensor, no ``item``, no ``torch.unique`` (each reads a value back)."""
    algorithm = filled('mtsac', use_pc_grad=True, skip_alpha_pc_grad=False)
    reads = recorded_reads(monkeypatch, ('item', *HOST_READS))
    monkeypatch.setattr(torch, 'unique', lambda *args, **kwargs: reads.append('unique'))
    for _ in range(2):
        algorithm._gradient_step()
    assert reads == []


def test_a_round_keeps_each_tasks_last_step_values():
    algorithm = filled('dnc_sac')
    keys = ('Qf1Loss', 'PolicyLoss')
    algorithm.last_stats['Qf1Loss'][:] = -1.0
    algorithm.last_stats['PolicyLoss'][:] = -2.0
    steps = [
        ([True, False, True, False], [[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]]),
        ([True, True, False, False], [[5.0, 6.0, 7.0, 8.0], [50.0, 60.0, 70.0, 80.0]]),
    ]
    for rows, values in steps:
        stats = dict(zip(keys, torch.tensor(values), strict=True))
        algorithm._keep_step_stats(stats, torch.tensor(rows))
    algorithm.flush_step_stats()
    # Tasks 0 and 1 from the second step, task 2 from the first, task 3 untouched.
    np.testing.assert_array_equal(algorithm.last_stats['Qf1Loss'], [5.0, 6.0, 3.0, -1.0])
    np.testing.assert_array_equal(algorithm.last_stats['PolicyLoss'], [50.0, 60.0, 30.0, -2.0])


def test_a_diverged_step_stops_the_run_when_the_round_is_copied():
    algorithm = filled('qmp_dnc')
    with torch.no_grad():
        next(iter(algorithm.policies.parameters())).fill_(torch.nan)
    gradient_step(algorithm, 'qmp_dnc')  # no check inside the step: it would read back
    with pytest.raises(TrainingDivergedError, match=r'PolicyLoss of tasks \[0, 2, 3\]'):
        algorithm.flush_step_stats()


def test_tasks_that_did_not_train_may_hold_nan():
    stats = {'Qf1Loss': np.array([1.0, np.nan]), 'PolicyLoss': np.array([2.0, np.inf])}
    check_finite_losses(stats, np.array([True, False]))  # task 1 has not trained yet
    with pytest.raises(TrainingDivergedError, match=r'Qf1Loss of tasks \[1\]; PolicyLoss'):
        check_finite_losses(stats, np.array([True, True]))
