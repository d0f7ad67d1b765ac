"""Paper-style figures over many runs: learning curves, a final-performance table, and the
Q-switch selection heatmaps.

* Curves (the paper's Fig. 3 layout): one panel per env; x = ``TotalEnvSteps``, y = the
  evaluation success rate of the task policies (the average return on envs scored by return,
  Walker); each method is the mean over seeds with a 95 % Student-t interval, after every seed
  is interpolated onto a common step grid. Method X and X + QMP share a colour (X solid,
  X + QMP dashed).
* Final performance: the last evaluation of every seed, as a mean with a 95 % interval and as
  the interquartile mean (IQM) with a stratified bootstrap interval over seeds × tasks, from
  the ``rliable`` library (Agarwal et al., 2021), computed on the per-task scores.
* Selection heatmaps: task i × acting policy j from ``Train/Task{i}/Policy{j}Freq``, averaged
  over seeds, at chosen epochs and averaged over training (the paper's mixture-probability
  analysis).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from scipy import stats

from workflow.runs import RunData

matplotlib.use('Agg')
import matplotlib.pyplot as plt

# Envs whose paper figure shows the average return instead of the success rate.
RETURN_ENVS = frozenset({'Walker2dMT4-v0'})

# Method -> (paper label, family). X and X + QMP are one family, drawn in one colour.
METHOD_STYLE: dict[str, tuple[str, str]] = {
    'dnc_sac': ('Separated', 'separated'),
    'qmp_dnc': ('Separated + QMP', 'separated'),
    'mtsac': ('Parameters', 'parameters'),
    'qmp_sac': ('Parameters + QMP', 'parameters'),
    'uds_dnc': ('Data', 'data'),
    'qmp_uds_dnc': ('Data + QMP', 'data'),
    'mcal': ('MCAL', 'mcal'),
    'qmp_mcal': ('MCAL + QMP', 'mcal'),
    'sac': ('Fully-Shared', 'shared'),
    'decaf': ('DECAF', 'decaf'),
}
FAMILY_COLOURS = {
    'separated': 'tab:blue',
    'parameters': 'tab:orange',
    'data': 'tab:green',
    'mcal': 'tab:red',
    'shared': 'tab:purple',
    'decaf': 'tab:brown',
}


def metric_for(env: str, choice: str = 'auto') -> str:
    """The ``Evaluation/`` metric a panel shows: ``SuccessRate`` or ``AverageReturn``."""
    if choice == 'success' or (choice == 'auto' and env not in RETURN_ENVS):
        return 'SuccessRate'
    return 'AverageReturn'


def mean_interval(
    values: np.ndarray,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its Student-t ``confidence`` interval (mean ± t·s/√n), clipped to
    ``bounds`` where the metric has them (a success rate lies in [0, 1]; with 2 seeds t is
    12.7, so the unclipped band of a success curve spans several units).

    With one seed the interval collapses onto the mean.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return mean, low, high


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """The range a metric's values lie in (None: unbounded)."""
    return (0.0, 1.0) if metric == 'SuccessRate' else None


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of all scores (rliable's definition)."""
    from rliable import metrics  # pylint: disable=import-outside-toplevel

    return float(metrics.aggregate_iqm(np.asarray(scores, dtype=np.float64)))


def iqm_interval(
    scores: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """IQM of a (runs, tasks) score matrix and its stratified bootstrap interval.

    The bootstrap resamples runs independently within each task (rliable's stratified
    bootstrap), the recommended interval for few runs per task.
    """
    from rliable import library  # pylint: disable=import-outside-toplevel

    scores = np.asarray(scores, dtype=np.float64)
    point = iqm(scores)
    if scores.shape[0] < 2:
        return point, point, point
    np.random.seed(seed)  # rliable's bootstrap draws from NumPy's global generator
    _, intervals = library.get_interval_estimates(
        {'run': scores},
        lambda x: np.array([iqm(x)]),
        reps=reps,
        confidence_interval_size=confidence,
    )
    low, high = intervals['run'][:, 0]
    return point, float(low), float(high)


@dataclass
class RunGroup:
    """The seeds of one method (and sweep label) on one env."""

    env: str
    method: str
    name: str
    runs: list[RunData]

    def label(self, with_name: bool) -> str:
        base = METHOD_STYLE.get(self.method, (self.method, ''))[0]
        return f'{base} [{self.name}]' if with_name else base

    @property
    def colour_family(self) -> str:
        return METHOD_STYLE.get(self.method, ('', self.method))[1]

    @property
    def dashed(self) -> bool:
        return self.method.startswith('qmp_')


def group_runs(runs: Sequence[RunData]) -> list[RunGroup]:
    """Runs grouped by (env, method, name), the name being the sweep label of a grid point."""
    groups: dict[tuple[str, str, str], RunGroup] = {}
    for run in runs:
        key = (run.env, run.method, run.name)
        groups.setdefault(key, RunGroup(*key, runs=[])).runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda run: run.seed)
    order = list(METHOD_STYLE)
    return sorted(
        groups.values(),
        key=lambda g: (
            g.env,
            order.index(g.method) if g.method in order else len(order),
            g.method,
            g.name,
        ),
    )


def evaluated_points(run: RunData, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, value) of the epochs that logged ``Evaluation/<metric>``."""
    values = run.columns.get(f'Evaluation/{metric}', np.full(run.n_rows, np.nan))
    keep = ~np.isnan(values)
    return run.columns['TotalEnvSteps'][keep], values[keep]


def interpolated_curves(
    runs: Sequence[RunData],
    metric: str,
    n_points: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Each run's curve linearly interpolated onto one step grid; returns (grid, (runs, n)).

    The grid spans the steps every run covers (no extrapolation); a group whose runs share no
    span, or that has fewer than two evaluations, gets its runs' common points only.
    """
    curves = [evaluated_points(run, metric) for run in runs]
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return np.empty(0), np.empty((0, 0))
    start = max(x[0] for x, _ in curves)
    stop = min(x[-1] for x, _ in curves)
    grid = np.linspace(start, stop, n_points) if stop > start else np.array([stop])
    return grid, np.stack([np.interp(grid, x, y) for x, y in curves])


def plot_curves(
    groups: Sequence[RunGroup], path: str, metric_choice: str = 'auto', n_points: int = 100
) -> str:
    """One panel per env of every group's mean curve and 95 % interval; returns ``path``."""
    envs = sorted({group.env for group in groups})
    columns = min(len(envs), 3)
    rows = math.ceil(len(envs) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.8 * rows), squeeze=False)
    for axis, env in zip(axes.flat, envs, strict=False):  # the grid's last row may have spare axes
        metric = metric_for(env, metric_choice)
        env_groups = [group for group in groups if group.env == env]
        named = len({group.name for group in env_groups}) > 1
        for index, group in enumerate(env_groups):
            grid, curves = interpolated_curves(group.runs, metric, n_points)
            if not len(grid):
                continue
            mean, low, high = mean_interval(curves, bounds=metric_bounds(metric))
            colour = FAMILY_COLOURS.get(group.colour_family, f'C{index % 10}')
            label = f'{group.label(named)} (n={curves.shape[0]})'
            axis.plot(
                grid,
                mean,
                color=colour,
                linestyle='--' if group.dashed else '-',
                label=label,
                marker='o' if len(grid) == 1 else None,
            )
            axis.fill_between(grid, low, high, color=colour, alpha=0.15, linewidth=0)
        axis.set_title(env)
        axis.set_xlabel('environment steps (all tasks)')
        axis.set_ylabel('success rate' if metric == 'SuccessRate' else 'average return')
        bounds = metric_bounds(metric)
        if bounds is not None:
            margin = 0.03 * (bounds[1] - bounds[0])
            axis.set_ylim(bounds[0] - margin, bounds[1] + margin)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(envs) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def final_scores(run: RunData, metric: str) -> tuple[float, np.ndarray]:
    """The last evaluation's pooled value and per-task values (the pooled one alone when the
    per-task columns are missing)."""
    values = run.columns.get(f'Evaluation/{metric}', np.full(run.n_rows, np.nan))
    rows = np.flatnonzero(~np.isnan(values))
    if not len(rows):
        return math.nan, np.empty(0)
    last = rows[-1]
    task_keys = sorted(
        (key for key in run.columns if re.fullmatch(rf'Evaluation/Task(\d+)/{metric}', key)),
        key=lambda key: int(key.split('/')[1][4:]),
    )
    per_task = np.array([run.columns[key][last] for key in task_keys])
    if not len(per_task) or np.isnan(per_task).any():
        per_task = np.array([values[last]])
    return float(values[last]), per_task


def final_table(
    groups: Sequence[RunGroup],
    metric_choice: str = 'auto',
    reps: int = 2000,
) -> str:
    """A markdown table of final performance per env and method (module docstring)."""
    lines = [
        '| env | method | seeds | metric | final: mean [95% CI] | IQM [95% bootstrap CI] |',
        '|---|---|---|---|---|---|',
    ]
    for group in groups:
        metric = metric_for(group.env, metric_choice)
        finals = [final_scores(run, metric) for run in group.runs]
        finals = [(pooled, tasks) for pooled, tasks in finals if not math.isnan(pooled)]
        if not finals:
            continue
        mean, low, high = mean_interval(
            np.array([pooled for pooled, _ in finals]), bounds=metric_bounds(metric)
        )
        width = min(len(tasks) for _, tasks in finals)
        point, iqm_low, iqm_high = iqm_interval(np.stack([t[:width] for _, t in finals]), reps)
        named = len({g.name for g in groups if g.env == group.env}) > 1
        lines.append(
            f'| {group.env} | {group.label(named)} | {len(finals)} | {metric} | '
            f'{float(mean):.3f} [{float(low):.3f}, {float(high):.3f}] | '
            f'{point:.3f} [{iqm_low:.3f}, {iqm_high:.3f}] |'
        )
    return '\n'.join(lines)


def selection_frequencies(run: RunData) -> np.ndarray | None:
    """(rows, N, N): per epoch, the share of task i's collection steps in which π_j acted;
    None for runs that did not log it (methods without the Q-switch)."""
    pattern = re.compile(r'Train/Task(\d+)/Policy(\d+)Freq')
    cells = [
        (int(m.group(1)), int(m.group(2)), key)
        for key in run.columns
        if (m := pattern.fullmatch(key))
    ]
    if not cells:
        return None
    n_tasks = max(max(i, j) for i, j, _ in cells) + 1
    matrices = np.full((run.n_rows, n_tasks, n_tasks), np.nan)
    for task_id, policy_id, key in cells:
        matrices[:, task_id, policy_id] = run.columns[key]
    return matrices


def _row_at_epoch(run: RunData, epoch: int) -> int | None:
    if epoch < 0:
        return run.n_rows + epoch if run.n_rows + epoch >= 0 else None
    rows = np.flatnonzero(run.epochs() == epoch)
    return int(rows[0]) if len(rows) else None


def selection_panels(group: RunGroup, epochs: Sequence[int]) -> list[tuple[str, np.ndarray]]:
    """(title, N × N matrix averaged over seeds) for training as a whole and each epoch."""
    per_run = [(run, selection_frequencies(run)) for run in group.runs]
    per_run = [(run, m) for run, m in per_run if m is not None]
    if not per_run:
        return []
    with np.errstate(invalid='ignore'):
        panels = [
            (
                'mean over training',
                np.nanmean(np.stack([np.nanmean(m, axis=0) for _, m in per_run]), axis=0),
            )
        ]
        for epoch in epochs:
            chosen = [
                m[row] for run, m in per_run if (row := _row_at_epoch(run, epoch)) is not None
            ]
            if chosen:
                title = 'last epoch' if epoch == -1 else f'epoch {epoch}'
                panels.append((title, np.nanmean(np.stack(chosen), axis=0)))
    return panels


def plot_selection_heatmap(group: RunGroup, epochs: Sequence[int], path: str) -> str | None:
    """Draws the group's selection heatmaps into ``path``; None when the group has none."""
    panels = selection_panels(group, epochs)
    if not panels:
        return None
    n_tasks = panels[0][1].shape[0]
    size = 1.2 + 0.45 * n_tasks
    figure, axes = plt.subplots(
        1, len(panels), figsize=(size * len(panels) + 1.0, size), squeeze=False
    )
    for axis, (title, matrix) in zip(axes[0], panels, strict=True):
        image = axis.imshow(matrix, vmin=0.0, vmax=1.0, cmap='viridis')
        if n_tasks <= 12:
            for (i, j), value in np.ndenumerate(matrix):
                if not np.isnan(value):
                    axis.text(
                        j,
                        i,
                        f'{value:.2f}',
                        ha='center',
                        va='center',
                        fontsize=7,
                        color='white' if value < 0.6 else 'black',
                    )
        axis.set_title(title, fontsize=9)
        axis.set_xlabel('acting policy j')
        axis.set_ylabel('task i')
        axis.set_xticks(range(n_tasks))
        axis.set_yticks(range(n_tasks))
    figure.colorbar(image, ax=list(axes[0]), shrink=0.8, label='share of steps')
    figure.suptitle(
        f'{group.env}: {group.label(False)} — Q-switch selections (n={len(group.runs)})',
        fontsize=10,
    )
    figure.savefig(path, dpi=80, bbox_inches='tight')
    plt.close(figure)
    return path


def heatmap_filename(group: RunGroup) -> str:
    return (
        re.sub(r'[^A-Za-z0-9.+-]+', '_', f'selection_{group.env}_{group.method}_{group.name}')
        + '.png'
    )


def write_report(
    runs: Sequence[RunData],
    out_dir: str,
    metric_choice: str = 'auto',
    heatmap_epochs: Sequence[int] = (0, -1),
    reps: int = 2000,
    n_points: int = 100,
) -> list[str]:
    """Curves, table and heatmaps of ``runs`` into ``out_dir``; returns the files written."""
    os.makedirs(out_dir, exist_ok=True)
    groups = group_runs(runs)
    written = [plot_curves(groups, os.path.join(out_dir, 'curves.png'), metric_choice, n_points)]
    table_path = os.path.join(out_dir, 'final_performance.md')
    with open(table_path, 'w') as file:
        file.write(final_table(groups, metric_choice, reps) + '\n')
    written.append(table_path)
    for group in groups:
        path = plot_selection_heatmap(
            group, heatmap_epochs, os.path.join(out_dir, heatmap_filename(group))
        )
        if path:
            written.append(path)
    return written
