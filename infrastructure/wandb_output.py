"""A dowel output that forwards each epoch's tabular to Weights & Biases (``--wandb true``).

wandb is optional and off by default. ``WANDB_MODE=offline`` logs to a local run directory
without a network; ``wandb sync`` uploads it later.
"""

from __future__ import annotations

from typing import Any

from dowel import LogOutput, TabularInput

from infrastructure.videos import VideoRecord


class WandbOutput(LogOutput):
    """Logs every scalar of the tabular at step ``TotalEnvSteps`` (dowel's x-axis here)."""

    def __init__(self, run: Any) -> None:
        self._run = run

    @property
    def types_accepted(self) -> tuple[type, ...]:
        return (TabularInput, VideoRecord)

    def record(self, data: TabularInput | VideoRecord, prefix: str = '') -> None:
        if isinstance(data, VideoRecord):  # the release's <prefix>Task{i}/Video media
            import wandb  # pylint: disable=import-outside-toplevel  (present: the run exists)

            self._run.log({data.tag: wandb.Video(data.path, fps=data.fps)}, step=data.step)
            return
        values = data.as_primitive_dict
        step = values.get('TotalEnvSteps')
        self._run.log(dict(values), step=None if step is None else int(step))

    def close(self) -> None:
        self._run.finish()


def start_wandb(config: dict[str, Any], run_name: str, log_dir: str) -> WandbOutput:
    """Starts a wandb run for ``config``; raises ImportError with the fix when wandb is
    missing."""
    try:
        import wandb  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise ImportError(
            '--wandb true needs the wandb package: pip install wandb==0.31.0'
        ) from error
    run = wandb.init(
        name=run_name,
        project=config['wandb_project'],
        entity=config['wandb_entity'],
        notes=config['notes'],
        config=config,
        dir=log_dir,
    )
    return WandbOutput(run)
