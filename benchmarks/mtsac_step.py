"""Times one parameter-sharing (``mtsac``) gradient step, this checkout against a baseline,
side by side.

The step is ``MTSAC._gradient_step`` (sample a mixed minibatch, the critic, actor and
temperature updates, the target update, the logged statistics) of the learner that
``run.py mtsac --env ENV`` builds, on a replay buffer filled with the same random-policy
episodes in both versions. Settings:

* ``pointwall``: ``PointWallMT-v0``'s preset, the point worlds' (4 tasks, 64 transitions,
  64×64 networks);
* ``jaco``: ``JacoReachMT5-v1`` with the release README's parameter-sharing flags for the
  Reacher (``--lr 0.001 --hidden_sizes 512 512``; 32 transitions);
* ``mt10`` (not in ``--quick``): ``MetaWorldMT10-v2``'s preset (2,560 transitions);
* ``pointwall+pcgrad``, ``mt10+pcgrad`` (the latter not in ``--quick``): the same with
  ``--use_pc_grad true``.

``--settings`` picks some of them (default: all, or the quick ones).

The baseline is ``--baseline-ref`` (default: the commit before the learner's two losses per
optimizer pair shared one backward pass and its Adam became fused), checked out into a
temporary ``git worktree``. Each version runs in its own worker process; the driver alternates
them trial by trial and prints medians and their ratio, so load on the machine skews both
sides alike. That both versions compute the same update is the job of
``tests/test_mtsac.py::test_shared_backward_and_fused_adam_equal_one_pass_per_optimizer``,
not of this script.

    OMP_NUM_THREADS=1 python benchmarks/mtsac_step.py [--quick] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine  # noqa: E402
from update_step import REPO, Worker, baseline_worktree, remove_worktree  # noqa: E402

BASELINE_REF = '0674953'  # the parent of the commit that made the step cheaper
# name: (env id, flags on top of the env's preset, env steps collected into the buffer)
SETTINGS: dict[str, tuple[str, dict[str, Any], int]] = {
    'pointwall': ('PointWallMT-v0', {}, 2000),
    'jaco': ('JacoReachMT5-v1', {'hidden_sizes': [512, 512], 'lr': 1e-3}, 2000),
    'mt10': ('MetaWorldMT10-v2', {}, 5000),
    'pointwall+pcgrad': ('PointWallMT-v0', {'use_pc_grad': True}, 2000),
    'mt10+pcgrad': ('MetaWorldMT10-v2', {'use_pc_grad': True}, 5000),
}
QUICK_SETTINGS = ['pointwall', 'jaco', 'pointwall+pcgrad']
# Gradient steps per trial (--quick: a tenth).
STEPS = {'pointwall': 200, 'jaco': 50, 'mt10': 5, 'pointwall+pcgrad': 50, 'mt10+pcgrad': 3}


# ---------------------------------------------------------------------- worker side
def _learner(setting: str) -> Any:
    """The ``mtsac`` learner of ``run.py`` for ``setting``, its buffer filled by its own
    (untrained) sampling policy."""
    import torch  # pylint: disable=import-outside-toplevel

    from environments.registry import make_env  # pylint: disable=import-outside-toplevel
    from experiment_utils import resolve_config  # pylint: disable=import-outside-toplevel
    from garage_experiments import build_algorithm  # pylint: disable=import-outside-toplevel

    env_id, flags, env_steps = SETTINGS[setting]
    torch.manual_seed(1)
    np.random.seed(1)
    config = resolve_config('mtsac', {'env': env_id, 'seed': 1, **flags})
    learner = build_algorithm(config, make_env(env_id, seed=1))
    # exploration_policy is None without QMP (the baseline predates ``sampling_policy``).
    policy = learner.exploration_policy or learner.policy
    episodes = learner._sampler.obtain_samples(0, env_steps, policy.get_param_values())  # pylint: disable=protected-access
    learner.replay_buffer.add_episodes(episodes)
    return learner


def worker(root: str) -> None:
    """Answers ``{"setting", "steps"}`` lines on stdin with seconds per gradient step."""
    sys.path.insert(0, root)
    import torch  # pylint: disable=import-outside-toplevel

    torch.set_num_threads(1)
    learners: dict[str, Any] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request['setting'] not in learners:
            learners[request['setting']] = _learner(request['setting'])
            learners[request['setting']]._gradient_step()  # pylint: disable=protected-access  (warm-up)
        learner = learners[request['setting']]
        start = time.perf_counter()
        for _ in range(request['steps']):
            learner._gradient_step()  # pylint: disable=protected-access
        print(json.dumps((time.perf_counter() - start) / request['steps']), flush=True)


# ---------------------------------------------------------------------- driver side
def time_steps(settings: list[str], trials: int, steps: dict[str, int], baseline: Path) -> None:
    """Prints, per setting, the median seconds per step of both versions and their ratio."""
    script = Path(__file__).resolve()
    workers = {'baseline': Worker(baseline, script), 'new': Worker(REPO, script)}
    try:
        for setting in settings:
            times: dict[str, list[float]] = {name: [] for name in workers}
            for _ in range(trials):  # alternate the versions trial by trial
                for name, process in workers.items():
                    times[name].append(
                        float(process.ask({'setting': setting, 'steps': steps[setting]}))
                    )
            medians = {name: float(np.median(values)) for name, values in times.items()}
            print(
                f'{setting:16s} baseline {medians["baseline"] * 1e3:8.2f} ms  '
                f'new {medians["new"] * 1e3:8.2f} ms   '
                f'baseline/new {medians["baseline"] / medians["new"]:.2f}x'
            )
    finally:
        for process in workers.values():
            process.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--quick', action='store_true', help='few trials, no MT10 (< 2 minutes)')
    parser.add_argument(
        '--baseline-ref', default=BASELINE_REF, help='git commit timed as the baseline'
    )
    parser.add_argument('--settings', nargs='+', choices=list(SETTINGS), help='what to time')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    settings = args.settings or (QUICK_SETTINGS if args.quick else list(SETTINGS))
    trials = 3 if args.quick else 7
    steps = {name: max(count // 10, 1) if args.quick else count for name, count in STEPS.items()}
    print(
        f'machine: {describe_machine()}, OMP_NUM_THREADS=1; medians of {trials} alternating '
        f'trials; milliseconds per mtsac gradient step'
    )
    baseline = baseline_worktree(args.baseline_ref)
    if baseline is None:
        return 1
    try:
        time_steps(settings, trials, steps, baseline)
    finally:
        remove_worktree(baseline)
    return 0


if __name__ == '__main__':
    sys.exit(main())
