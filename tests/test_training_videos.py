"""Training-time videos (the release's ``--vis_*``): when, how many, and that they leave the
evaluation's episodes unchanged."""

from __future__ import annotations

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest
from dowel import logger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_TOY_FLAGS
from environments.registry import make_env
from experiment_utils import ConfigError, resolve_config
from garage_experiments import build_algorithm, video_settings
from infrastructure.logging_utils import PurgingTensorBoardOutput
from infrastructure.videos import TrainingVideos, VideoRecord, VideoSettings, resize


def test_due_epochs_and_episodes_per_task_follow_the_release():
    settings = VideoSettings(freq=3, num=10, width=8, height=8, fps=5, video_format='gif')
    assert [epoch for epoch in range(10) if settings.due(epoch)] == [0, 3, 6, 9]
    assert settings.episodes_per_task(4) == 2  # 10 // 4
    assert settings.episodes_per_task(50) == 1  # at least one per task
    assert not VideoSettings(-1, 10, 8, 8, 5, 'mp4').due(0)


def test_resize_gives_the_requested_frame_size():
    frame = np.zeros((64, 64, 4), np.uint8)
    frame[:32] = 255
    resized = resize(frame, 20, 10)
    assert resized.shape == (10, 20, 3)
    assert resized[0, 0, 0] == 255 and resized[-1, 0, 0] == 0


@pytest.mark.parametrize(
    'typed, message',
    [
        ({'vis_freq': 3, 'evaluation_frequency': 2}, 'multiple of --evaluation_frequency'),
        ({'vis_freq': 2, 'vis_width': 0}, '--vis_width must be at least 1'),
    ],
)
def test_bad_video_flags_are_refused(typed, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config('qmp_dnc', {'env': 'PointReachMT-v0', **typed})


def test_recording_writes_one_video_per_task_and_mode_and_leaves_evaluation_unchanged(tmp_path):
    config = resolve_config(
        'qmp_dnc',
        {
            'env': 'PointReachMT-v0',
            'hidden_sizes': [8],
            'num_evaluation_episodes': 8,
            'vis_freq': 1,
            'vis_num': 8,
            'vis_width': 32,
            'vis_height': 24,
            'vis_fps': 20,
            'vis_format': 'gif',
        },
    )
    with_videos = build_algorithm(config, make_env('PointReachMT-v0', seed=3))
    without = build_algorithm(config, make_env('PointReachMT-v0', seed=3))
    without.policy.set_param_values(with_videos.policy.get_param_values())
    without.exploration_policy.set_param_values(with_videos.exploration_policy.get_param_values())
    videos = TrainingVideos(video_settings(config), str(tmp_path / 'videos'))
    paths = videos.record(
        0,
        400,
        with_videos._evaluation_modes(),
        with_videos._test_envs,
        with_videos.max_episode_length,
        with_videos.discount,
    )
    names = sorted(path.rsplit('/', 1)[1] for path in paths)
    assert names == sorted(
        f'epoch0000_{mode}_task{task}.gif'
        for task in range(4)
        for mode in ('Evaluation', 'Evaluation-Mixture')
    )
    frames = imageio.mimread(paths[0])
    assert iio.immeta(paths[0])['duration'] == 50  # ms per frame at --vis_fps 20
    # 8 // 4 = 2 episodes per task, each a reset frame plus one frame per step.
    assert 2 * 2 <= len(frames) <= 2 * (1 + with_videos.max_episode_length)
    assert frames[0].shape[:2] == (24, 32)
    recorded = with_videos._evaluate()
    plain = without._evaluate()
    for prefix in plain:
        assert recorded[prefix][0] == plain[prefix][0]


def test_a_run_with_vis_freq_writes_the_due_epochs_videos(cli, tmp_path):
    result = cli(
        [
            'qmp_dnc',
            *TINY_TOY_FLAGS,
            '--n_epochs',
            '3',
            '--vis_freq',
            '2',
            '--vis_num',
            '4',
            '--vis_width',
            '16',
            '--vis_height',
            '16',
            '--vis_format',
            'gif',
            '--log_root',
            str(tmp_path),
        ]
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    names = sorted(path.name for path in (run_dir / 'videos').iterdir())
    assert names == sorted(
        f'epoch{epoch:04d}_{mode}_task{task}.gif'
        for epoch in (0, 2)
        for task in range(4)
        for mode in ('Evaluation', 'Evaluation-Mixture')
    )


def test_a_video_reaches_tensorboard_as_an_animated_image(tmp_path):
    output = PurgingTensorBoardOutput(str(tmp_path), x_axis='TotalEnvSteps')
    frames = np.zeros((3, 6, 8, 3), np.uint8)
    frames[1] = 255
    logger.add_output(output)
    try:
        logger.log(VideoRecord('Evaluation/Task2/Video', 'unused.gif', frames, 10, 800))
    finally:
        logger.remove_all()
        output.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (image,) = events.Images('Evaluation/Task2/Video')
    assert (image.step, image.width, image.height) == (800, 8, 6)
    assert iio.imread(image.encoded_image_string, extension='.gif', index=None).shape[0] == 3
