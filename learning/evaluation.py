"""Deterministic evaluation on the separately constructed test environments (spec §3.10).

Each evaluation runs ``episodes_per_task`` episodes on every task's test env with the policy's
``mean`` action (tanh(μ) of the acting policy). The N test envs are stepped in lockstep so that
the policy is called once per step for all tasks instead of once per task.
"""
from __future__ import annotations

import numpy as np
from garage import Environment, StepType
from garage.np.policies import Policy

from learning.metrics import info_episode_stats, per_episode_stats


def evaluate(policy: Policy, envs: list[Environment], episodes_per_task: int,
             max_episode_length: int, discount: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs deterministic episodes; returns per-episode stats and each episode's task id.

    The stats include ``stages_completed`` (the last step's value) and ``velocity`` (the mean
    ``x_velocity``) when the env reports them.
    """
    rewards, successes, step_types, task_ids, stages = [], [], [], [], []
    velocities = []
    for _ in range(episodes_per_task):
        policy.reset()
        observations = np.stack([env.reset()[0] for env in envs])
        running = np.ones(len(envs), dtype=bool)
        episode_rewards = [[] for _ in envs]
        episode_success = [[] for _ in envs]
        episode_types = [[] for _ in envs]
        last_stage = [np.nan for _ in envs]
        episode_velocities = [[] for _ in envs]
        for _ in range(max_episode_length):
            _, infos = policy.get_actions(observations)
            for index in np.flatnonzero(running):
                step = envs[index].step(infos['mean'][index])
                episode_rewards[index].append(step.reward)
                episode_success[index].append(step.env_info.get('success', 0.0))
                episode_types[index].append(step.step_type)
                last_stage[index] = step.env_info.get('stages_completed', np.nan)
                if 'x_velocity' in step.env_info:  # Walker
                    episode_velocities[index].append(step.env_info['x_velocity'])
                observations[index] = step.observation
                if step.step_type in (StepType.TERMINAL, StepType.TIMEOUT):
                    running[index] = False
            if not running.any():
                break
        for index in range(len(envs)):
            rewards.append(np.asarray(episode_rewards[index], dtype=np.float64))
            successes.append(np.asarray(episode_success[index], dtype=np.float64))
            step_types.append(np.asarray(episode_types[index]))
            task_ids.append(index)
            stages.append(last_stage[index])
            velocities.append(episode_velocities[index])
    stats = per_episode_stats(rewards, successes, step_types, discount)
    if not np.all(np.isnan(stages)):  # multistage envs report ``stages_completed`` (Jaco)
        stats['stages_completed'] = np.asarray(stages, dtype=np.float64)
    if velocities and all(velocities):  # Walker reports ``x_velocity`` at every step
        stats.update(info_episode_stats({'x_velocity': velocities}))
    return stats, np.asarray(task_ids, dtype=np.int64)
