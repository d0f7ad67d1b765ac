"""Command line: ``python run_policy.py RUN_DIR [--episodes N] [--task I ...] [--mixture]
[--save_video DIR]``.

Loads a run's snapshot and runs deterministic episodes of its task policies (or, with
``--mixture``, of a QMP run's Q-switch mixture) on its test envs, the same episodes as the
training-time evaluation, and prints a per-task table of success and return. ``--save_video``
writes one MP4 per task, rendered off-screen (MuJoCo envs use ``MUJOCO_GL=egl`` unless set).
Unlike the release's ``run_policy.py`` it replays every task, deterministically (see
docs/deviations.md). A bad run directory or snapshot: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from workflow.replay import ReplayError, check_run_dir


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ReplayError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog='run_policy.py',
        description=('Replay a trained run: deterministic episodes per task on its test envs.'),
    )
    parser.add_argument('run_dir', help='the run directory (holds params.pkl, variant.json)')
    parser.add_argument('--episodes', type=int, default=5, help='episodes per task (default 5)')
    parser.add_argument('--task', type=int, nargs='+', help='task ids to replay (default: all)')
    parser.add_argument(
        '--mixture',
        action='store_true',
        help='replay the Q-switch mixture of a QMP run instead of the task policies',
    )
    parser.add_argument(
        '--save_video', metavar='DIR', help='write one MP4 per task (all its episodes) into DIR'
    )
    parser.add_argument('--video_fps', type=int, default=40, help='frames per second (40)')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.episodes < 1 or args.video_fps < 1:
            raise ReplayError('--episodes and --video_fps must be at least 1')
        config = check_run_dir(args.run_dir, args.mixture)
        if args.save_video:
            os.environ.setdefault('MUJOCO_GL', 'egl')  # before any MuJoCo import
        from workflow.replay import load_learner  # pylint: disable=import-outside-toplevel

        learner = load_learner(args.run_dir, config)
        task_ids = args.task if args.task is not None else list(range(learner.n_tasks))
        bad = [task for task in task_ids if not 0 <= task < learner.n_tasks]
        if bad:
            raise ReplayError(f'--task {bad[0]}: this run has tasks 0..{learner.n_tasks - 1}')
    except ReplayError as error:
        print(f'run_policy.py: error: {error}', file=sys.stderr)
        return 2
    from infrastructure.videos import write_video  # pylint: disable=C0415
    from workflow.replay import replay, result_table  # pylint: disable=C0415

    results, frames = replay(
        learner, task_ids, args.episodes, args.mixture, record=bool(args.save_video)
    )
    mode = 'Q-switch mixture' if args.mixture else 'task policies'
    print(
        f'{os.path.basename(os.path.normpath(args.run_dir))}: {mode}, {args.episodes} '
        f'deterministic episode(s) per task on the test envs'
    )
    print(result_table(results))
    if args.save_video:
        os.makedirs(args.save_video, exist_ok=True)
        suffix = '_mixture' if args.mixture else ''
        for task_id, task_frames in frames.items():
            path = write_video(
                task_frames,
                os.path.join(args.save_video, f'task{task_id}{suffix}.mp4'),
                args.video_fps,
            )
            print(f'run_policy.py: wrote {path} ({len(task_frames)} frames)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
