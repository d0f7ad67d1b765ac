"""Videos of deterministic episodes: the release's training-time videos (``--vis_*``) and
``run_policy.py --save_video``.

``FrameRecorder`` wraps a garage env and keeps the frame rendered after every reset and step;
``write_video`` encodes frames (MP4 through imageio's ffmpeg, or GIF). ``TrainingVideos`` records,
at the evaluation epochs ``--vis_freq`` selects, ``max(vis_num // n_tasks, 1)`` episodes per
task of every evaluation mode (the task policies and, for QMP, the mixture), as the release did.
It plays them on its own copies of the test envs, so that recording never changes the
evaluation's episodes (docs/deviations.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from dowel import logger
from garage import Environment
from garage.np.policies import Policy

from infrastructure.evaluation import evaluate
from infrastructure.vectorized_sampler import seeded_copy

VIDEO_FORMATS = ('mp4', 'gif')


class FrameRecorder:
    """A garage env that keeps the RGB frame rendered after every reset and step."""

    def __init__(self, env: Environment) -> None:
        self._env = env
        self.frames: list[np.ndarray] = []

    def reset(self) -> Any:
        result = self._env.reset()
        self.frames.append(np.asarray(self._env.render('rgb_array')))
        return result

    def step(self, action: np.ndarray) -> Any:
        env_step = self._env.step(action)
        self.frames.append(np.asarray(self._env.render('rgb_array')))
        return env_step


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` (H, W, 3+) as an RGB image of ``height`` x ``width`` (bilinear)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel  (matplotlib's dependency)

    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))


def gif_bytes(frames: Sequence[np.ndarray] | np.ndarray, fps: int) -> bytes:
    """``frames`` as an animated, looping GIF (what TensorBoard shows as a video)."""
    import imageio.v3 as iio  # pylint: disable=import-outside-toplevel

    # Pillow's GIF writer takes the frame duration in milliseconds.
    return iio.imwrite(
        '<bytes>',
        np.stack([np.asarray(frame)[..., :3] for frame in frames]),
        extension='.gif',
        duration=1000.0 / fps,
        loop=0,
    )


def write_video(
    frames: Sequence[np.ndarray], path: str, fps: int, video_format: str = 'mp4'
) -> str:
    """Writes ``frames`` to ``path`` as MP4 (H.264) or GIF; returns ``path``."""
    import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel

    if video_format not in VIDEO_FORMATS:
        raise ValueError(f'video format must be one of {VIDEO_FORMATS}, got {video_format!r}')
    if video_format == 'gif':
        with open(path, 'wb') as file:
            file.write(gif_bytes(frames, fps))
        return path
    height, width = frames[0].shape[:2]
    # H.264 needs even sizes; imageio's default resizing to multiples of 16 would blur.
    even: list[npt.ArrayLike] = [
        np.ascontiguousarray(frame[: height - height % 2, : width - width % 2, :3])
        for frame in frames
    ]
    imageio.mimwrite(path, even, fps=fps, format='FFMPEG', codec='libx264', macro_block_size=2)
    return path


@dataclass(frozen=True)
class VideoRecord:
    """One recorded video, handed to dowel's outputs with ``logger.log``: TensorBoard shows it
    as an animated image, wandb as a video (``infrastructure/logging_utils.py``,
    ``infrastructure/wandb_output.py``); the text and CSV outputs do not take it.

    Attributes:
        tag: the release's key, ``<prefix>Task{i}/Video`` (e.g. ``Evaluation/Task0/Video``).
        path: the video file.
        frames: its frames, (T, H, W, 3) uint8.
        fps: frames per second.
        step: ``TotalEnvSteps`` when it was recorded (the x-axis of the other metrics).
    """

    tag: str
    path: str
    frames: np.ndarray
    fps: int
    step: int


@dataclass(frozen=True)
class VideoSettings:
    """The release's ``--vis_*`` flags.

    Attributes:
        freq: record at epoch 0 and every ``freq`` epochs (evaluation epochs); <= 0: never.
        num: videos' episodes per evaluation mode, divided across the tasks (at least one each).
        width, height: frame size in pixels.
        fps: frames per second.
        video_format: ``'mp4'`` or ``'gif'``.
    """

    freq: int
    num: int
    width: int
    height: int
    fps: int
    video_format: str

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) records videos."""
        return self.freq > 0 and epoch % self.freq == 0

    def episodes_per_task(self, n_tasks: int) -> int:
        """The release's ``max(vis_num // n_tasks, 1)``."""
        return max(self.num // n_tasks, 1)


class TrainingVideos:
    """Writes ``epoch{k}_{mode}_task{i}.{format}`` under ``video_dir`` at the due epochs.

    Args:
        settings: the ``--vis_*`` flags.
        video_dir: where the files go (created on first use).
    """

    def __init__(self, settings: VideoSettings, video_dir: str) -> None:
        self.settings = settings
        self.video_dir = video_dir
        self._envs: list[Environment] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The env copies are rebuilt after a restore: snapshots stay as small as without videos.
        return {**self.__dict__, '_envs': None}

    def record(
        self,
        epoch: int,
        env_steps: int,
        modes: dict[str, Policy],
        test_envs: Sequence[Environment],
        max_episode_length: int,
        discount: float,
    ) -> list[str]:
        """Records every mode's episodes of every task, writes the files and logs each as a
        ``VideoRecord`` at step ``env_steps``; returns the paths written."""
        if self._envs is None:
            self._envs = [seeded_copy(env, 0) for env in test_envs]
        os.makedirs(self.video_dir, exist_ok=True)
        settings = self.settings
        paths = []
        for prefix, policy in modes.items():
            mode = prefix.strip('/').replace('/', '-') or 'Evaluation'
            recorders = [FrameRecorder(env) for env in self._envs]
            evaluate(
                policy,
                recorders,
                settings.episodes_per_task(len(recorders)),
                max_episode_length,
                discount,
            )
            for task_id, recorder in enumerate(recorders):
                frames = [
                    resize(frame, settings.width, settings.height) for frame in recorder.frames
                ]
                name = f'epoch{epoch:04d}_{mode}_task{task_id}.{settings.video_format}'
                path = write_video(
                    frames, os.path.join(self.video_dir, name), settings.fps, settings.video_format
                )
                logger.log(
                    VideoRecord(
                        f'{prefix}Task{task_id}/Video',
                        path,
                        np.stack(frames),
                        settings.fps,
                        env_steps,
                    )
                )
                paths.append(path)
        return paths
