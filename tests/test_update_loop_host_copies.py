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

HOST_COPIES = ('cpu', 'numpy', 'tolist')


def filled(method: str):
    torch.manual_seed(0)
    np.random.seed(0)
    config = resolve_config(
        method,
        {'batch_size': 200, 'min_buffer_size': 50, 'buffer_batch_size': 32, 'hidden_sizes': [8, 8]},
    )
    algorithm = build_algorithm(config, make_env('PointReachMT-v0'))
    episodes = algorithm._sampler.obtain_samples(
        0, 400, algorithm.sampling_policy.get_param_values()
    )
    algorithm.replay_buffer.add_episodes(episodes)
    return algorithm


def gradient_step(algorithm, method: str) -> None:
    if method in ('mtsac', 'qmp_sac'):
        algorithm._gradient_step()
    else:
        algorithm._gradient_step(np.array([True, False, True, True]))


@pytest.mark.parametrize('method', ['qmp_dnc', 'uds_dnc', 'mcal', 'mtsac', 'qmp_sac'])
def test_gradient_steps_copy_nothing_to_the_host_until_the_round_ends(monkeypatch, method):
    algorithm = filled(method)
    copies = []
    for name in HOST_COPIES:
        original = getattr(torch.Tensor, name)

        def counted(tensor, *args, _original=original, _name=name, **kwargs):
            copies.append(_name)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for _ in range(3):
        gradient_step(algorithm, method)
    assert copies == []
    algorithm.flush_step_stats()
    assert copies == ['cpu', 'numpy']  # one copy of all statistics of the round
    assert np.isfinite(algorithm.last_stats['Qf1Loss'][0])


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
