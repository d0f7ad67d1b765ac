"""The main job: a framework with and without QMP on the illustrative env, in a few minutes.

Trains one framework's pair, by default Separated (``dnc_sac``) and Separated + QMP
(``qmp_dnc``), with ``--framework parameters`` Parameters (``mtsac``) and Parameters + QMP
(``qmp_sac``), on ``PointSharedPathMT-v0`` (the default env, a sparse goal on the shared path of
two dense tasks; see ``environments/point_shared_path.py``), or with ``--env`` on one of the
earlier layouts (``PointWallMT-v0``, ``PointSparseGoalMT-v0``), through ``run.py``, with the
same flags for both methods, one ``run.py`` process per (method, seed), ``--jobs`` at a time.
On the default env at its preset budget Separated + QMP solved the sparse task in 7 of 10
seeds and Separated in none (README, Results); the default seed 1 is one of the seven. Then it
draws, under ``--out_dir``:

* ``learning_curves.png``: evaluation success of the task policies vs env steps, for the stuck
  task 0 and for all tasks (mean over seeds, thin lines per seed);
* ``trajectories.png``: episodes collected on the stuck task 0 by each method's
  data-collection policy of its first seed's last snapshot (``params.pkl``): the task policy
  without QMP, and QMP's Q-switch mixture with every step coloured by the policy it selected
  (the agent info ``selected_policy``), the project page's picture;
* ``selection_frequencies.png``: the QMP run's task x policy selection frequencies over
  training (``Train/Task{i}/Policy{j}Freq`` of ``progress.csv``, mean over epochs and seeds).

It prints a summary of the measured numbers. Usage::

    python tools/demo.py                        # 1 seed, the env's preset budget
    python tools/demo.py --framework parameters # Parameters vs Parameters + QMP
    python tools/demo.py --seeds 1 2 3          # more seeds
    python tools/demo.py --quick                # a one-epoch smoke test of the whole pipeline
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from environments.registry import ENVS  # noqa: E402  (light: imports no simulator or torch)
from workflow.runs import read_columns  # noqa: E402  (reads CSV files only)

# The illustrative point worlds the demo can draw, and the module that describes each layout
# (GOALS, GOAL_RADII, WALLS, TASK_NAMES, STUCK_TASK). ``--env`` picks one; the default env first.
LAYOUTS = {
    'PointSharedPathMT-v0': 'environments.point_shared_path',
    'PointWallMT-v0': 'environments.point_wall',
    'PointSparseGoalMT-v0': 'environments.point_sparse_goal',
}
DEFAULT_ENV = 'PointSharedPathMT-v0'
# Each framework's pair: (method, label) without QMP, then with it.
FRAMEWORKS = {
    'parameters': (('mtsac', 'Parameters'), ('qmp_sac', 'Parameters + QMP')),
    'separated': (('dnc_sac', 'Separated'), ('qmp_dnc', 'Separated + QMP')),
}
DEFAULT_FRAMEWORK = 'separated'
Methods = tuple[tuple[str, str], tuple[str, str]]
# One-epoch settings under which the whole pipeline runs in seconds (a smoke test, no learning).
QUICK_FLAGS = tuple(
    (
        '--n_epochs 1 --batch_size 200 --min_buffer_size 50 --gradient_steps_per_itr 20 '
        '--buffer_batch_size 16 --steps_per_epoch 1 --num_evaluation_episodes 4 '
        '--hidden_sizes 16 16'
    ).split()
)
POLICY_COLORS = ('tab:red', 'tab:blue', 'tab:orange', 'tab:gray')  # then matplotlib's cycle


@dataclasses.dataclass(frozen=True)
class Layout:
    """The env one demo run draws: its id and the module describing its scene."""

    env_id: str
    scene: Any  # the module of LAYOUTS[env_id]

    @classmethod
    def load(cls, env_id: str) -> Layout:
        """Imports the scene module on use, so that parsing the command line stays fast."""
        scene = importlib.import_module(LAYOUTS[env_id])
        if len(scene.TASK_NAMES) != ENVS[env_id].n_tasks:
            raise ValueError(f'{env_id}: its scene and registry entry disagree on the tasks')
        return cls(env_id, scene)

    @property
    def n_tasks(self) -> int:
        return len(self.scene.TASK_NAMES)

    @property
    def stuck_task(self) -> int:
        return int(self.scene.STUCK_TASK)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.scene.TASK_NAMES)

    @staticmethod
    def policy_color(policy: int) -> str:
        """The colour of task ``policy``'s goal and of the steps its policy acted."""
        return POLICY_COLORS[policy] if policy < len(POLICY_COLORS) else f'C{policy % 10}'


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (what is wrong and what is allowed), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f'demo.py: error: {message}\n')


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _OneLineParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--env',
        default=DEFAULT_ENV,
        choices=tuple(LAYOUTS),
        help=f'the illustrative env (default {DEFAULT_ENV})',
    )
    parser.add_argument(
        '--framework',
        default=DEFAULT_FRAMEWORK,
        choices=tuple(FRAMEWORKS),
        help=f'which method pair (default {DEFAULT_FRAMEWORK}: dnc_sac vs qmp_dnc; '
        'parameters: mtsac vs qmp_sac)',
    )
    parser.add_argument('--seeds', type=int, nargs='+', default=[1], help='seeds (default 1)')
    parser.add_argument(
        '--n_epochs', type=int, default=None, help="epochs per run (default: the env preset's)"
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help='one tiny epoch per run: checks the pipeline, shows no learning',
    )
    parser.add_argument(
        '--jobs', type=int, default=2, help='run.py processes at a time (default 2, one per core)'
    )
    parser.add_argument(
        '--episodes',
        type=int,
        default=10,
        help='episodes drawn per method in trajectories.png (default 10)',
    )
    parser.add_argument(
        '--out_dir',
        default='data/local/demo',
        help='where runs and figures go (default data/local/demo)',
    )
    args = parser.parse_args(argv)
    for name in ('jobs', 'episodes') + (('n_epochs',) if args.n_epochs is not None else ()):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct, got {args.seeds}')
    return args


# --------------------------------------------------------------------------- training


def train(env_id: str, method: str, seed: int, flags: Sequence[str], log_root: Path) -> Path:
    """One ``run.py`` run; returns its new run directory (reruns get a fresh one)."""
    prefix = f'{method}_{env_id}_None_{seed}'
    before = set(log_root.glob(prefix + '*'))
    command = [
        sys.executable,
        'run.py',
        method,
        f'--env={env_id}',
        '--seed',
        str(seed),
        '--log_root',
        str(log_root),
        *flags,
    ]
    environment = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    log_root.mkdir(parents=True, exist_ok=True)
    with open(log_root / f'{prefix}.stdout.log', 'w') as output:
        result = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f'{" ".join(command)} failed (exit {result.returncode}); see '
            f'{log_root / (prefix + ".stdout.log")}'
        )
    (run_dir,) = set(log_root.glob(prefix + '*')) - before - {log_root / f'{prefix}.stdout.log'}
    return run_dir


# --------------------------------------------------------------------------- figures


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported on use: parsing the
    command line stays fast)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(
    layout: Layout, methods: Methods, runs: dict[str, list[dict[str, np.ndarray]]], path: Path
) -> None:
    """Evaluation success of the task policies: the stuck task, and all tasks."""
    plt = _pyplot()
    stuck = layout.stuck_task
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (
        (
            f'Evaluation/Task{stuck}/SuccessRate',
            f'task {stuck}: {layout.task_names[stuck]}',
        ),
        ('Evaluation/SuccessRate', f'all {layout.n_tasks} tasks'),
    )
    for axis, (key, title) in zip(axes, panels, strict=True):
        for (method, label), color in zip(methods, ('tab:gray', 'tab:red'), strict=True):
            curves = [(columns['TotalEnvSteps'], columns[key]) for columns in runs[method]]
            for steps, values in curves:
                axis.plot(steps, values, color=color, alpha=0.25, linewidth=1)
            length = min(len(steps) for steps, _ in curves)
            mean = np.nanmean([values[:length] for _, values in curves], axis=0)
            axis.plot(
                curves[0][0][:length],
                mean,
                color=color,
                linewidth=2.5,
                marker='o',
                markersize=3,
                label=f'{label} (mean of {len(curves)} seed{"s" * (len(curves) > 1)})',
            )
        axis.set_title(title)
        axis.set_xlabel('environment steps (all tasks)')
        axis.set_ylabel('evaluation success rate (task policies)')
        axis.set_ylim(-0.03, 1.03)
        axis.grid(alpha=0.3)
        axis.legend(loc='upper left')
    figure.suptitle(f'{layout.env_id}: {methods[0][1]} vs {methods[1][1]}, same flags')
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def collect_episodes(
    layout: Layout, run_dir: Path, n_episodes: int, seed: int = 1000
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Episodes of the stuck task from the run's last snapshot, by its data-collection policy
    (sampled actions, as in training): (positions (T+1, 2), selected policy (T,), success)."""
    import infrastructure.garage_compat  # noqa: F401  (must precede unpickling garage objects)

    from environments.registry import make_env

    with open(run_dir / 'params.pkl', 'rb') as file:
        algorithm = pickle.load(file)['algo']
    policy = algorithm.sampling_policy
    task_env = make_env(layout.env_id, seed=seed).get_train_envs()[layout.stuck_task]
    episodes = []
    for _ in range(n_episodes):
        policy.reset()
        observation, _ = task_env.reset()
        positions, selected, success = [observation[:2]], [], False
        while True:
            action, agent_info = policy.get_action(observation)
            env_step = task_env.step(action)
            observation = env_step.observation
            positions.append(observation[:2])
            selected.append(int(agent_info['selected_policy']))
            success |= bool(env_step.env_info['success'])  # at any step, as evaluation counts
            if env_step.last:
                break
        episodes.append((np.array(positions), np.array(selected), success))
    return episodes


def _draw_world(layout: Layout, axis: Any) -> None:
    from matplotlib.patches import Circle, Rectangle

    from environments.point_reach import START

    for x_min, y_min, x_max, y_max in layout.scene.WALLS:
        axis.add_patch(Rectangle((x_min, y_min), x_max - x_min, y_max - y_min, color='black'))
    radii = getattr(layout.scene, 'GOAL_RADII', (0.1,) * layout.n_tasks)
    for task, (goal, radius) in enumerate(zip(layout.scene.GOALS, radii, strict=True)):
        axis.add_patch(Circle(goal, radius, color=layout.policy_color(task), alpha=0.35))
        axis.annotate(
            f'goal {task}',
            goal,
            textcoords='offset points',
            ha='center',
            xytext=(0, 11 if goal[1] < 0.9 else -16),
            fontsize=8,
        )
    axis.plot(*START, marker='s', color='black', markersize=7)
    axis.annotate('start', START, textcoords='offset points', xytext=(8, -4), fontsize=8)
    axis.set_xlim(-1, 1)
    axis.set_ylim(-1, 1)
    axis.set_aspect('equal')


def plot_trajectories(
    layout: Layout,
    methods: Methods,
    episodes: dict[str, list[tuple[np.ndarray, np.ndarray, bool]]],
    path: Path,
) -> None:
    """The project page's picture: collected episodes on the stuck task, one colour per step
    for the policy that acted."""
    from matplotlib.collections import LineCollection

    plt = _pyplot()
    stuck = layout.stuck_task
    figure, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    for axis, (method, label) in zip(axes, methods, strict=True):
        _draw_world(layout, axis)
        successes = 0
        for positions, selected, success in episodes[method]:
            segments = np.stack([positions[:-1], positions[1:]], axis=1)
            axis.add_collection(
                LineCollection(
                    segments,
                    colors=[layout.policy_color(j) for j in selected],
                    linewidths=1.8,
                    alpha=0.8,
                )
            )
            successes += success
        n = len(episodes[method])
        axis.set_title(f'{label}: {successes}/{n} episodes reach goal {stuck}')
    handles = [
        plt.Line2D(
            [], [], color=layout.policy_color(j), linewidth=3, label=f'policy {j} ({name}) acted'
        )
        for j, name in enumerate(layout.task_names)
    ]
    figure.legend(handles=handles, loc='lower center', ncol=2, fontsize=9)
    figure.suptitle(
        f'Task {stuck} ({layout.task_names[stuck]})'
        ": episodes collected by each method's data-collection policy "
        '(last snapshot, first seed)',
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.1, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def selection_frequencies(runs: list[dict[str, np.ndarray]], n_tasks: int) -> np.ndarray:
    """(task, policy) share of collection steps, mean over the epochs and the runs."""
    return np.array(
        [
            [
                np.nanmean(
                    [np.nanmean(columns[f'Train/Task{i}/Policy{j}Freq']) for columns in runs]
                )
                for j in range(n_tasks)
            ]
            for i in range(n_tasks)
        ]
    )


def plot_selection_frequencies(
    layout: Layout, frequencies: np.ndarray, n_runs: int, path: Path
) -> None:
    plt = _pyplot()
    n_tasks = layout.n_tasks
    figure, axis = plt.subplots(figsize=(6.4, 5))
    image = axis.imshow(frequencies, cmap='viridis', vmin=0, vmax=1)
    for i in range(n_tasks):
        for j in range(n_tasks):
            axis.text(
                j,
                i,
                f'{frequencies[i, j]:.2f}',
                ha='center',
                va='center',
                color='black' if frequencies[i, j] > 0.6 else 'white',
            )
    names = [f'{k}: {name}' for k, name in enumerate(layout.task_names)]
    axis.set_xticks(range(n_tasks), [f'π{k}' for k in range(n_tasks)])
    axis.set_yticks(range(n_tasks), names)
    axis.set_xlabel('policy selected by the Q-switch')
    axis.set_ylabel('task (whose critic selects)')
    figure.colorbar(image, ax=axis, label='share of collection steps')
    axis.set_title(
        f'QMP selection frequencies over training\n'
        f'(mean over epochs, {n_runs} seed{"s" * (n_runs > 1)})',
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------- main


def summarise(
    layout: Layout, methods: Methods, runs: dict[str, list[dict[str, np.ndarray]]]
) -> list[str]:
    """Measured numbers per method: success over training and at the end, for the stuck
    task and for all tasks."""
    lines = []
    stuck = layout.stuck_task
    for method, label in methods:
        for key, name in (
            (f'Evaluation/Task{stuck}/SuccessRate', f'task {stuck}'),
            ('Evaluation/SuccessRate', 'all tasks'),
        ):
            over_training = [float(np.nanmean(columns[key])) for columns in runs[method]]
            final = [float(columns[key][-1]) for columns in runs[method]]
            lines.append(
                f'{label:16s} {name:9s} mean over training '
                f'{np.mean(over_training):.2f}  final {np.mean(final):.2f}  '
                f'(per seed final: {", ".join(f"{v:.2f}" for v in final)})'
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    layout = Layout.load(args.env)
    methods: Methods = FRAMEWORKS[args.framework]
    qmp_method = methods[1][0]
    import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

    out_dir = Path(args.out_dir).resolve()
    log_root = out_dir / 'runs'
    flags = list(QUICK_FLAGS) if args.quick else []
    # The jobs share the cores: each run's gradient steps get its share (as sweep.py does).
    flags += ['--torch_threads', str(max((os.cpu_count() or 1) // args.jobs, 1))]
    if args.n_epochs is not None:
        flags += ['--n_epochs', str(args.n_epochs)]
    start = time.perf_counter()
    jobs = [(method, seed) for seed in args.seeds for method, _ in methods]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {job: pool.submit(train, layout.env_id, *job, flags, log_root) for job in jobs}
        run_dirs = {job: future.result() for job, future in futures.items()}
    train_seconds = time.perf_counter() - start
    runs = {
        method: [read_columns(str(run_dirs[(method, seed)])) for seed in args.seeds]
        for method, _ in methods
    }
    figures = {
        name: out_dir / f'{name}.png'
        for name in ('learning_curves', 'trajectories', 'selection_frequencies')
    }
    plot_learning_curves(layout, methods, runs, figures['learning_curves'])
    first_seed = args.seeds[0]
    plot_trajectories(
        layout,
        methods,
        {
            method: collect_episodes(layout, run_dirs[(method, first_seed)], args.episodes)
            for method, _ in methods
        },
        figures['trajectories'],
    )
    frequencies = selection_frequencies(runs[qmp_method], layout.n_tasks)
    plot_selection_frequencies(
        layout, frequencies, len(args.seeds), figures['selection_frequencies']
    )
    print(f'trained {len(jobs)} runs in {train_seconds:.0f} s ({args.jobs} at a time)')
    for line in summarise(layout, methods, runs):
        print(line)
    print('QMP selection frequencies (rows: task, columns: policy):')
    for task, row in enumerate(frequencies):
        print(f'  task {task}: ' + '  '.join(f'{value:.2f}' for value in row))
    for path in figures.values():
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
