"""Collection and evaluation speed, measured side by side in one run.

Printed ratios (medians over trials that alternate the compared variants, so that both see the
same machine load):

* collection, per env and method (``dnc_sac``: the task policies; ``qmp_dnc``: the Q-switch):
  one env at a time (garage's ``DefaultWorker`` per task, visited in turn, as ``LocalSampler``
  does) vs ``VectorizedSampler`` (all task envs in lockstep, one batched policy call per step),
  and ``qmp_dnc`` / ``dnc_sac`` with each;
* ``--n_workers 2`` vs 1 of the vectorised sampler (needs two idle cores to show its gain);
* evaluation (the task policies, deterministic): one episode at a time vs the previous path
  (``evaluate``: tasks in lockstep, episodes in sequence) vs ``LockstepEvaluator`` in this
  process and with 2 worker processes (``--n_workers 2``).

    python benchmarks/collection_speed.py            # full: preset horizons, 3 trials
    python benchmarks/collection_speed.py --quick    # < 2 minutes: shorter episodes, 2 trials

Timings on a shared machine are noisy: the worker comparison in particular shows its gain only
when two cores are free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import numpy as np
import torch
from garage import EpisodeBatch
from garage.np.policies import Policy
from garage.sampler import DefaultWorker
from machine import describe_machine

from environments.registry import make_env
from experiment_utils import resolve_config
from garage_experiments import METHODS as METHOD_TABLE
from infrastructure.evaluation import LockstepEvaluator, evaluate
from infrastructure.vectorized_sampler import VectorizedSampler
from learning.architectures import make_critics, make_policies
from learning.policies import QSwitchMixturePolicy, TaskRoutingPolicy

METHODS = ('dnc_sac', 'qmp_dnc')


class OneEnvAtATime:
    """garage's local collection: one ``DefaultWorker`` per task, visited in task order, one
    episode per visit, one policy call per step, until the batch is full."""

    def __init__(self, policy, envs, max_episode_length: int) -> None:
        self.workers = []
        for index, env in enumerate(envs):
            worker = DefaultWorker(
                seed=None, max_episode_length=max_episode_length, worker_number=index
            )
            worker.update_agent(policy)
            worker.update_env(env)
            self.workers.append(worker)

    def obtain_samples(self, num_samples: int) -> EpisodeBatch:
        batches, completed = [], 0
        while completed < num_samples:
            for worker in self.workers:
                batches.append(worker.rollout())
                completed += int(batches[-1].lengths.sum())
                if completed >= num_samples:
                    break
        return EpisodeBatch.concatenate(*batches)


# A measurement repeats its collection until this many seconds have passed: one round of the toy
# env (4 episodes of 50 steps) takes about 10 ms, too short to time on a shared machine.
MIN_MEASUREMENT_SECONDS = 0.5


def _rate(collect: Callable[[], EpisodeBatch]) -> float:
    """Env steps per second of ``collect``, repeated for ``MIN_MEASUREMENT_SECONDS``."""
    start = time.perf_counter()
    steps = 0
    while True:
        steps += int(np.sum(collect().lengths))
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_MEASUREMENT_SECONDS:
            return steps / elapsed


def _medians(variants: dict[str, Callable[[], float]], trials: int) -> dict[str, float]:
    """Median of each variant's measurements, trials alternating the variants."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(trials):
        for name, measure in variants.items():
            results[name].append(measure())
    return {name: statistics.median(values) for name, values in results.items()}


def sampling_policy(method: str, env) -> Policy:
    """The collection policy ``build_algorithm`` would give ``method`` (preset network sizes),
    built without the learner, so that no test envs are constructed."""
    config = resolve_config(method, {'env': env.env_id})
    torch.manual_seed(0)
    hidden_sizes = tuple(config.hidden_sizes)
    policies = make_policies(
        config.policy_architecture, env.n_tasks, env.network_input_dim, env.action_dim, hidden_sizes
    )
    if not METHOD_TABLE[method].uses_qswitch:
        return TaskRoutingPolicy(env.spec, policies, env.split_observation)
    critics = make_critics(
        config.Q_architecture,
        env.n_tasks,
        env.network_input_dim,
        env.action_dim,
        hidden_sizes,
        config.layer_norm,
    )
    return QSwitchMixturePolicy(env.spec, policies, critics, env.split_observation)


def benchmark_collection(
    env_id: str, trials: int, horizon: int | None, workers: bool
) -> dict[str, float]:
    """Median env steps/s of every (method, sampler) pair on ``env_id``."""
    env = make_env(env_id)
    horizon = horizon or env.max_episode_length
    n_steps = env.n_tasks * horizon  # one episode per task
    envs = env.get_train_envs()
    variants: dict[str, Callable[[], float]] = {}
    samplers = []
    for method in METHODS:
        policy = sampling_policy(method, env)
        one = OneEnvAtATime(policy, envs, horizon)
        vec = VectorizedSampler(policy, envs, max_episode_length=horizon)
        samplers.append(vec)
        params = policy.get_param_values()
        variants[f'{method} one-at-a-time'] = lambda one=one: _rate(
            lambda: one.obtain_samples(n_steps)
        )
        variants[f'{method} vec'] = lambda vec=vec, params=params: _rate(
            lambda: vec.obtain_samples(0, n_steps, params)
        )
        if workers and method == 'dnc_sac':
            two = VectorizedSampler(policy, envs, max_episode_length=horizon, n_workers=2)
            samplers.append(two)
            two.obtain_samples(0, horizon, params)  # start the processes outside the timing
            variants[f'{method} vec 2 workers'] = lambda two=two, params=params: _rate(
                lambda: two.obtain_samples(0, n_steps, params)
            )
    for name, measure in variants.items():  # warm-up: first resets (of the shared envs too)
        if 'vec' in name:
            measure()
    medians = _medians(variants, trials)
    for sampler in samplers:
        sampler.shutdown_worker()
    env.close()
    return medians


def benchmark_evaluation(env_id: str, trials: int, horizon: int | None) -> dict[str, float]:
    """Median seconds of one evaluation (the preset's episodes per task) per path."""
    env = make_env(env_id)
    config = resolve_config('dnc_sac', {'env': env_id})
    horizon = horizon or env.max_episode_length
    episodes = max(config.num_evaluation_episodes // env.n_tasks, 1)
    policy = sampling_policy('dnc_sac', env)
    test_envs = env.get_test_envs()
    evaluator = LockstepEvaluator(test_envs, episodes)
    sequential_envs = evaluator.copies[0]  # the test envs themselves
    worker_env = make_env(env_id)
    in_workers = LockstepEvaluator(worker_env.get_test_envs(), episodes, n_workers=2)

    def seconds(run: Callable[[], object]) -> Callable[[], float]:
        def measure() -> float:
            start = time.perf_counter()
            run()
            return time.perf_counter() - start

        return measure

    def one_at_a_time() -> None:
        for _ in range(episodes):
            for task_env in sequential_envs:
                evaluate(policy, [task_env], 1, horizon, config.discount)

    variants = {
        'one-at-a-time': seconds(one_at_a_time),
        'tasks in lockstep': seconds(
            lambda: evaluate(policy, sequential_envs, episodes, horizon, config.discount)
        ),
        'all in lockstep': seconds(lambda: evaluator.evaluate(policy, horizon, config.discount)),
        '2 workers': seconds(lambda: in_workers.evaluate(policy, horizon, config.discount)),
    }
    variants['all in lockstep']()  # warm-up
    variants['2 workers']()  # starts the workers and builds their envs
    medians = _medians(variants, trials)
    medians['episodes'] = episodes * env.n_tasks
    medians['envs per task'] = evaluator.envs_per_task
    evaluator.close()
    in_workers.close()
    env.close()
    worker_env.close()
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--envs',
        nargs='*',
        default=['PointReachMT-v0', 'MetaWorldMT10-v2'],
        help='collection envs (none: evaluation only)',
    )
    parser.add_argument('--eval_env', default='JacoReachMT5-v1')
    parser.add_argument('--trials', type=int, default=3)
    parser.add_argument(
        '--quick',
        action='store_true',
        help='MuJoCo episodes cut at 100 steps (50 in evaluation), 2 trials: < 2 minutes',
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    trials = 2 if args.quick else args.trials
    horizon_cap = 100 if args.quick else None
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(
        f'machine: {describe_machine()}, '
        f'load average {load:.1f}, torch {torch.__version__}, 1 torch thread, '
        f'{trials} trials (medians)'
    )
    print(f'{"env":18s} {"method":8s} {"one-at-a-time":>14s} {"vec":>8s} {"vec/one":>8s}')
    for env_id in args.envs:
        cap = None if env_id == 'PointReachMT-v0' else horizon_cap
        rates = benchmark_collection(env_id, trials, cap, workers=env_id != 'PointReachMT-v0')
        for method in METHODS:
            one, vec = rates[f'{method} one-at-a-time'], rates[f'{method} vec']
            print(f'{env_id:18s} {method:8s} {one:14.0f} {vec:8.0f} {vec / one:8.2f}')
        for sampler in ('one-at-a-time', 'vec'):
            ratio = rates[f'qmp_dnc {sampler}'] / rates[f'dnc_sac {sampler}']
            print(f'{env_id:18s} qmp_dnc/dnc_sac steps/s, {sampler}: {ratio:.2f}')
        if 'dnc_sac vec 2 workers' in rates:
            ratio = rates['dnc_sac vec 2 workers'] / rates['dnc_sac vec']
            print(
                f'{env_id:18s} dnc_sac vec, 2 workers / 1: {ratio:.2f} '
                f'({rates["dnc_sac vec 2 workers"]:.0f} steps/s); over one-at-a-time in one '
                f'process: {rates["dnc_sac vec 2 workers"] / rates["dnc_sac one-at-a-time"]:.2f}'
            )
    if args.eval_env:
        times = benchmark_evaluation(
            args.eval_env,
            trials,
            None if args.eval_env == 'PointReachMT-v0' or not args.quick else 50,
        )
        print(
            f'evaluation on {args.eval_env}: {times["episodes"]} episodes '
            f'({times["envs per task"]} envs per task), seconds: one-at-a-time '
            f'{times["one-at-a-time"]:.2f}, tasks in lockstep {times["tasks in lockstep"]:.2f}, '
            f'all in lockstep {times["all in lockstep"]:.2f}, with 2 workers '
            f'{times["2 workers"]:.2f}; speed-up over one-at-a-time '
            f'{times["one-at-a-time"] / times["all in lockstep"]:.2f} '
            f'({times["one-at-a-time"] / times["2 workers"]:.2f} with 2 workers), over tasks in '
            f'lockstep {times["tasks in lockstep"] / times["all in lockstep"]:.2f}'
        )


if __name__ == '__main__':
    main()
