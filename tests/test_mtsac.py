"""The parameter-sharing learner: per-task temperature lookup, one temperature for ``sac``,
a shared buffer of raw observations, and the SAC-class temperature loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.algorithms.mtsac import task_mean_losses

LOG_ALPHAS = torch.tensor([0.5, -0.5, 1.0, -1.0])


def filled(method: str, **flags):
    torch.manual_seed(0)
    np.random.seed(0)
    config = resolve_config(
        method,
        {
            'batch_size': 200,
            'min_buffer_size': 50,
            'buffer_batch_size': 64,
            'hidden_sizes': [8, 8],
            **flags,
        },
    )
    algorithm = build_algorithm(config, make_env('PointReachMT-v0'))
    policy = algorithm.sampling_policy
    episodes = algorithm._sampler.obtain_samples(0, 400, policy.get_param_values())
    algorithm.replay_buffer.add_episodes(episodes)
    return algorithm


def test_each_sample_uses_its_own_task_temperature():
    algorithm = filled('mtsac')
    assert algorithm.log_alpha.shape == (4,)
    with torch.no_grad():
        algorithm.log_alpha.copy_(LOG_ALPHAS)
    algorithm._gradient_step()
    algorithm.flush_step_stats()
    np.testing.assert_allclose(
        algorithm.last_stats['AlphaTemperature'], LOG_ALPHAS.exp(), rtol=1e-6
    )


def test_sac_has_one_temperature_for_all_tasks():
    algorithm = filled('sac')
    assert algorithm.log_alpha.shape == (1,)
    with torch.no_grad():
        algorithm.log_alpha.fill_(0.3)
    algorithm._gradient_step()
    algorithm.flush_step_stats()
    np.testing.assert_allclose(algorithm.last_stats['AlphaTemperature'], np.exp(0.3), rtol=1e-6)


def test_shared_buffer_keeps_the_task_one_hot_and_counts_per_task():
    algorithm = filled('mtsac')
    batch = algorithm.replay_buffer.sample(32)
    assert batch['observations'].shape[1] == 6  # state 2 + one-hot 4
    sizes = algorithm.replay_buffer.sizes()
    assert sizes.sum() == algorithm.replay_buffer.size and np.all(sizes > 0)


def test_temperatures_fall_while_entropy_is_above_target():
    algorithm = filled('mtsac')
    with torch.no_grad():
        algorithm.log_alpha.copy_(LOG_ALPHAS)
    algorithm._gradient_step()
    # Untrained policies have entropy above the target, so every task's gradient is positive
    # and Adam's first step lowers each log alpha by exactly lr.
    lr = algorithm.alpha_optimizer.param_groups[0]['lr']
    np.testing.assert_allclose(
        algorithm.log_alpha.detach().numpy(), (LOG_ALPHAS - lr).numpy(), rtol=0, atol=1e-6
    )


def test_the_learner_uses_the_release_sac_temperature_form(monkeypatch):
    from learning.algorithms import mtsac

    calls = []
    original = mtsac.sac_losses.alpha_temperature_objective
    monkeypatch.setattr(
        mtsac.sac_losses,
        'alpha_temperature_objective',
        lambda *args: calls.append(args) or original(*args),
    )
    monkeypatch.setattr(mtsac.sac_losses, 'temperature_objective', None)
    filled('mtsac')._gradient_step()
    assert len(calls) == 1


@pytest.mark.parametrize('skip_alpha', [True, False])
def test_pcgrad_steps_run(skip_alpha):
    algorithm = filled('mtsac', use_pc_grad=True, skip_alpha_pc_grad=skip_alpha)
    before = [p.detach().clone() for p in algorithm.policies.parameters()]
    algorithm._gradient_step()
    algorithm.flush_step_stats()
    after = algorithm.policies.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert np.all(np.isfinite(algorithm.last_stats['PolicyLoss']))


def test_pcgrad_task_losses_are_the_task_means_with_their_gradients():
    per_sample = torch.tensor([1.0, 2.0, 3.0, 6.0], requires_grad=True)
    losses, present = task_mean_losses(per_sample, torch.tensor([0, 2, 0, 2]), 3)
    torch.testing.assert_close(losses, torch.tensor([2.0, 0.0, 4.0]))
    assert present.tolist() == [True, False, True]
    (gradient,) = torch.autograd.grad(losses[2], per_sample, retain_graph=True)
    assert gradient.tolist() == [0.0, 0.5, 0.0, 0.5]  # 1/count, as from a masked mean
    (gradient,) = torch.autograd.grad(losses[1], per_sample)
    assert gradient.tolist() == [0.0, 0.0, 0.0, 0.0]  # the absent task reaches nothing


def _one_backward_per_optimizer(algorithm):
    """The release's order as a reference: each loss's backward and step on its own, with
    plain (unfused) Adam."""

    def minimize(task_ids, *terms):
        for per_sample, optimizer, _ in terms:
            optimizer.zero_grad()
            per_sample.mean().backward()
            optimizer.step()

    for name in ('policy_optimizer', 'qf1_optimizer', 'qf2_optimizer', 'alpha_optimizer'):
        group = getattr(algorithm, name).param_groups[0]
        setattr(algorithm, name, torch.optim.Adam(group['params'], lr=group['lr'], fused=False))
    algorithm._minimize = minimize
    return algorithm


def test_shared_backward_and_fused_adam_equal_one_pass_per_optimizer():
    fast = filled('mtsac')
    reference = _one_backward_per_optimizer(copy.deepcopy(fast))
    for algorithm in (fast, reference):
        torch.manual_seed(7)
        np.random.seed(7)
        for _ in range(5):
            algorithm._gradient_step()
            algorithm.flush_step_stats()
    for name in ('policies', 'critics', 'target_critics'):
        for got, want in zip(
            getattr(fast, name).parameters(), getattr(reference, name).parameters(), strict=True
        ):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.log_alpha, reference.log_alpha, rtol=1e-5, atol=1e-6)
    for key, values in fast.last_stats.items():
        np.testing.assert_allclose(values, reference.last_stats[key], rtol=1e-4, atol=1e-6)


def test_per_task_means_by_hand_and_the_tasks_present():
    from learning.algorithms.mtsac import per_task_means

    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, float('nan')]])
    means, present = per_task_means(values, torch.tensor([0, 0, 2]), 3)
    np.testing.assert_array_equal(means.numpy(), [[1.5, np.nan, 3.0], [4.5, np.nan, np.nan]])
    # Presence comes from the counts, so a NaN statistic of a present task is still kept.
    np.testing.assert_array_equal(present.numpy(), [True, False, True])
