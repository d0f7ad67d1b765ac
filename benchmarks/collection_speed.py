"""Data-collection speed of ``qmp_dnc`` vs ``dnc_sac``: env steps per second, side by side.

QMP's only cost is at collection time: every step, all N policies propose an action and the
task's critic scores them (paper §4). This measures that cost where it is paid, garage's
``LocalSampler`` filling a batch with the sampling policy of each method, on the same
environments, with the same networks, alternating the two methods over several trials so that
both see the same machine load. It prints the median steps/s of each and their ratio.

    python benchmarks/collection_speed.py                 # toy env and MT10
    python benchmarks/collection_speed.py --envs PointReachMT-v0 --trials 5
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from learning import garage_compat  # noqa: E402,F401  (must precede any garage import)

import torch  # noqa: E402

from environments.registry import make_env  # noqa: E402
from experiment_utils import resolve_config  # noqa: E402
from garage_experiments import build_algorithm  # noqa: E402

METHODS = ('dnc_sac', 'qmp_dnc')


def steps_per_second(algorithm, n_steps: int) -> float:
    """Env steps per second of one ``obtain_samples`` call of at least ``n_steps`` steps."""
    policy = algorithm.exploration_policy or algorithm.policy
    start = time.perf_counter()
    episodes = algorithm._sampler.obtain_samples(  # pylint: disable=protected-access
        0, n_steps, policy.get_param_values())
    return sum(episodes.lengths) / (time.perf_counter() - start)


def benchmark_env(env_id: str, trials: int) -> dict[str, float]:
    """Median steps/s per method on ``env_id`` (preset network sizes, one batch per trial)."""
    env = make_env(env_id)
    algorithms = {}
    for method in METHODS:
        torch.manual_seed(0)
        algorithms[method] = build_algorithm(resolve_config(method, {'env': env_id}), env)
    n_steps = env.n_tasks * env.max_episode_length  # one episode per task
    for algorithm in algorithms.values():  # warm-up: imports, first env resets, allocations
        steps_per_second(algorithm, env.max_episode_length)
    results: dict[str, list[float]] = {method: [] for method in METHODS}
    for _ in range(trials):
        for method in METHODS:
            results[method].append(steps_per_second(algorithms[method], n_steps))
    env.close()
    return {method: statistics.median(values) for method, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--envs', nargs='+', default=['PointReachMT-v0', 'MetaWorldMT10-v2'])
    parser.add_argument('--trials', type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, '
          f'torch {torch.__version__}, 1 torch thread, garage LocalSampler')
    print(f'{"env":20s} {"dnc_sac steps/s":>16s} {"qmp_dnc steps/s":>16s} {"qmp/dnc":>8s}')
    for env_id in args.envs:
        medians = benchmark_env(env_id, args.trials)
        ratio = medians['qmp_dnc'] / medians['dnc_sac']
        print(f'{env_id:20s} {medians["dnc_sac"]:16.0f} {medians["qmp_dnc"]:16.0f} '
              f'{ratio:8.2f}')


if __name__ == '__main__':
    main()
