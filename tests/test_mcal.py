"""MCAL: one multihead actor, per-task critics, one temperature, and QMP over the
actor's heads scored by the task's own critic."""

from __future__ import annotations

import numpy as np
import torch

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import build_algorithm
from learning.networks import TaskTwinCritics
from learning.networks.multihead import MultiheadTanhGaussianPolicy


def filled(method: str):
    torch.manual_seed(0)
    np.random.seed(0)
    algorithm = build_algorithm(
        resolve_config(method, {'hidden_sizes': [8], 'buffer_batch_size': 16}),
        make_env('PointReachMT-v0'),
    )
    policy = algorithm.sampling_policy
    algorithm.replay_buffer.add_episodes(
        algorithm._sampler.obtain_samples(0, 400, policy.get_param_values())
    )
    return algorithm


def test_networks_and_the_single_temperature():
    algorithm = filled('mcal')
    assert isinstance(algorithm.policies, MultiheadTanhGaussianPolicy)
    assert isinstance(algorithm.critics, TaskTwinCritics)
    assert algorithm.log_alpha.shape == (1,)


def test_a_step_trains_the_active_critics_and_the_actor_once_per_active_task():
    algorithm = filled('mcal')
    critic_before = algorithm.critics.q1.output.weight.detach().clone()
    active = np.array([True, False, True, False])
    algorithm._gradient_step(active)
    after = algorithm.critics.q1.output.weight
    assert not torch.equal(critic_before[0], after[0])
    assert torch.equal(critic_before[1], after[1]) and torch.equal(critic_before[3], after[3])
    adam_steps = {int(state['step']) for state in algorithm.policy_optimizer.state.values()}
    assert adam_steps == {2}
    assert int(next(iter(algorithm.alpha_optimizer.state.values()))['step']) == 2


def test_qmp_mcal_switches_over_heads_with_the_task_critic():
    algorithm = filled('qmp_mcal')
    mixture = algorithm.exploration_policy
    env = make_env('PointReachMT-v0')
    observations = np.stack([env.get_train_envs()[t].reset()[0] for t in range(4)])
    torch.manual_seed(1)
    _, info = mixture.get_actions(observations)
    states, task_ids = env.split_observation(torch.as_tensor(observations))
    with torch.no_grad():
        torch.manual_seed(1)
        _, means = algorithm.policies.propose(states)
        for row in range(4):
            task = int(task_ids[row])
            scores = [
                algorithm.critics(states[row].expand(4, 1, -1), means[j, row].expand(4, 1, -1))[0][
                    task, 0
                ].item()
                for j in range(4)
            ]
            assert info['selected_policy'][row] == int(np.argmax(scores))
