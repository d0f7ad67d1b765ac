"""``JacoReachMT5-v1``: the multistage Jaco reacher, five tasks of one arm.

The release's ``JacoReachMT5Env`` (``environments/mujoco/jaco_reach_multistage*.py``), rebuilt on
Gymnasium's ``MujocoEnv`` and the official ``mujoco`` bindings (the release used gym's
``MujocoEnv`` over mujoco-py).

What is kept from the release:

* model (``environments/assets/jaco_reach.xml``): the release's Kinova Jaco (Roboti's model)
  with its link meshes (``environments/assets/jaco_meshes/``, their source and licence in the
  README there) colliding with the ground only, as in the release;
  6 hinge joints driven by torque motors with ctrl in [-1, 1] and gears 5, 10, 10, 10, 10, 10;
  timestep 0.01, Euler integrator, 10 solver iterations, frame skip 4 (dt = 0.04); a mocap
  sphere ``target`` (radius 0.049, no collisions) shows the current subgoal; the hand position
  is the ``jaco_link_hand`` body position, read from ``data.xpos`` right after stepping as the
  release read it (so it lags the integrated ``qpos`` by one physics substep);
* subgoals S0 = (0.2, 0.3, 0.5), S1 = (0.3, 0, 0.3), S2 = (0.4, -0.3, 0.4), S3 = (0.4, 0.3, 0.2)
  and the five tasks of ``TASKS`` (stage goals, sparse task 3, task 1 without time reward and
  with shift -2, task 4 "stay"); horizon 200; ``min_reward = -5``;
* the stay task's goal (all three stages) is the hand position at each episode's reset pose.
  The release stored a live view of the simulator's hand position as the stay goal and copied
  it into the target at reset, so its target was exactly this;
* reset: joint positions ``init + U(±0.01)``, velocities ``init + U(±0.001)``, stage 0, target
  at the first goal. The initial pose is the model's ``qpos0``, in which joint 5 sits at its
  reference angle -2.8, outside its range [-0.698, 0.698], so the joint limit snaps the wrist
  into range during the first steps of every episode, as in the release;
* step: simulate; the hand is *in the radius* when ``‖hand − target‖ < 0.05``, checked before
  any stage change; then a non-stay task advances one stage and moves the target (done at
  stage 3), a stay task counts its in-radius steps and sets ``stage = count // 30`` (done at
  stage 3, i.e. 90 in-radius steps); reward = dist + stage + ctrl + shift with

      dist  = −‖hand − target‖ (0 for the sparse task),
      stage = −0.4·max(3 − stage, 0) with time reward, ((|shift| + 1)·200/3)·1[in radius]
              without (task 1), 0 for the dense stay task (1[in radius]·1[count % 30 == 0]
              ·count were it sparse),
      ctrl  = −0.01‖a‖² − 0.001·mean|qvel| − 1e-5·mean|qacc|;

  infos ``stage_reward``, ``ctrl_reward``, ``dist_reward``, ``success`` and
  ``stages_completed`` (the stage after the update), as floats; ``task_id`` is added by
  ``TaskOneHotWrapper``. As in the release, the observation is read right after simulating,
  before the stage update, so its stage one-hot shows the stage the step started in (the next
  observation shows the new one) and a stage-3 one-hot never occurs;
* an unstable simulation costs −100 (added to ``ctrl_reward``), returns the previous observation
  and ends the episode;
* ``reward_fn(obs, act)`` recomputes the reward from the stage one-hot and hand position inside
  observations, without the velocity and acceleration penalties, 0 stage reward for the stay
  task (used for supervised data sharing);
* ``split_observation`` zeroes the task one-hot and the hand position, or only the hand position
  with ``include_task_id``; actors and critics see 23 dims either way.

Differences from the release:

* observation order: the release emits joint pos 6, joint vel 6, stage one-hot 3, task one-hot
  5, hand xyz 3; here the per-task Gymnasium env emits joint pos 6, joint vel 6, stage one-hot 3,
  hand xyz 3 (18) and ``TaskOneHotWrapper`` appends the task one-hot, so the one-hot is last as
  in every family of this project (23 dims, same content; ``QPOS``, ``QVEL``, ``STAGE`` and
  ``HAND`` are the slices);
* ``info['success']`` means "this step completed a stage". For the four reaching tasks that is
  the release's signal unchanged (every in-radius step completes a stage). For the stay task
  the release reported every in-radius step, and the hand starts at its goal, so the first step
  always succeeded and evaluation's "success at any step" was 1 whatever the policy; here a stay
  step succeeds when it is the 30th, 60th or 90th in-radius step. So for every task, an episode
  succeeds (``SuccessRate``) iff it completed at least one stage, and ``StagesCompleted`` counts
  them; a stay policy must keep the hand in the radius for 30 steps (not necessarily in a row,
  as the release counted them) to succeed. Stages, termination and rewards use the in-radius
  test exactly as the release did;
* bug fix (see docs/deviations.md): the release's train and test envs of task 4 shared one
  goal list, so its test env was not a stay task (one stage per in-radius step, done after ~3
  steps). Here every task-4 env, train and test, is a stay task;
* ``reward_fn`` of the stay task measures the distance to the hand at the noise-free initial
  pose (observations do not tell an episode's reset pose; episodes' goals lie within about
  0.01 of it). The release's compared the observed hand with its live view of the simulator's
  current hand;
* instability is detected from MuJoCo 3's bad-state warnings (non-finite or huge qpos, qvel or
  qacc, after which MuJoCo resets the state) where mujoco-py raised an exception on a warning;
  such a step counts no success. MuJoCo 3.3 instead of 2.x: same model and integrator, but
  trajectories are not bit-identical;
* ``reward_fn`` takes numpy arrays (or CPU tensors) of any leading shape and returns that shape,
  where the release returned a (B, 1) array; ``JacoReachMT5.reward_fns()`` gives picklable
  per-task reward functions;
* randomness comes from the env's seeded ``np_random`` (train envs seeded ``seed + task_id``,
  test envs ``seed + 100 + task_id``) instead of the global ``np.random``; observations are
  float32 as in the release; the unregistered ``add_action_noise`` option is not implemented;
* rendering uses the release's viewer placement as Gymnasium's default camera;
  ``render_mode='rgb_array'`` by default, the renderer is created on the first ``render()``, and
  off-screen rendering needs ``MUJOCO_GL=egl`` (or ``osmesa``) set before MuJoCo is imported.

Note on the model (the release's, reproduced as is; ``tests/test_jaco_env.py`` shows each case):
gravity nearly overpowers joint 2's motor (10 N m): the initial pose needs 1.07 times that, so
the arm sags unless driven; under zero actions it falls onto the ground, where the hand ends
the episode about 0.15 below where it started. S0 and S1 can be held. The stay goal cannot be
held as such:
the closest poses that the motors can hold (joint 2 at its full torque, the wrist joints
against their limits) lie 0.047-0.053 from it, depending on the reset noise, so in about half
of the episodes a policy can complete the stay task by holding still (a PD controller to such a
pose does); in the others it can only collect in-radius steps by swinging through the radius.
S2 cannot be held (the closest holdable pose is 0.055 away) but a scripted swing reaches it: a
scripted controller completes task 0 (S0, S1, S2) in about 140 of the 200 steps.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import mujoco
import numpy as np
import torch
from gymnasium.envs.mujoco import MujocoEnv

from environments.family import GymnasiumTaskFamily
from environments.multitask import (
    Array,
    ObservationSplitter,
)
from environments.registry import ENVS

ENV_ID = 'JacoReachMT5-v1'
MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'assets', 'jaco_reach.xml')
MAX_EPISODE_LENGTH = ENVS[ENV_ID].max_episode_length
TIMESTEP = 0.01
FRAME_SKIP = 4
N_STAGES = 3
HAND_BODY = 'jaco_link_hand'
TARGET_BODY = 'target'
SUCCESS_THRESHOLD = 0.05
INIT_NOISE = 0.01
INIT_VELOCITY_NOISE = 0.001
ACTION_PENALTY = 0.01
VELOCITY_PENALTY = 0.001
ACCELERATION_PENALTY = 1e-5
FAIL_PENALTY = 100.0
TIME_PENALTY = 0.4
STAY_STEPS_PER_STAGE = 30
MIN_REWARD = -5.0
RENDER_MODE = 'rgb_array'
# The release's viewer placement (its ``viewer_setup``).
DEFAULT_CAMERA_CONFIG = {
    'trackbodyid': -1,
    'distance': 2.1,
    'azimuth': 200.0,
    'elevation': -20.0,
    'lookat': np.array([0.5, 0.0, 0.5]),
}
SUBGOALS = ((0.2, 0.3, 0.5), (0.3, 0.0, 0.3), (0.4, -0.3, 0.4), (0.4, 0.3, 0.2))
# MuJoCo's warnings for a state it had to reset: the simulation became unstable.
UNSTABLE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)
_UNSTABLE_WARNING_INDICES = np.array([int(kind) for kind in UNSTABLE_WARNINGS])


# Where things are in a Jaco observation: the per-task env's 18 dims, then the task one-hot.
QPOS = slice(0, 6)
QVEL = slice(6, 12)
STAGE = slice(12, 15)
HAND = slice(15, 18)
STATE_DIM = 18


@dataclass(frozen=True)
class JacoTask:
    """The settings in which the release's five tasks differ.

    Attributes:
        name: task name (one-hot order is the order of ``TASKS``).
        subgoals: indices into ``SUBGOALS`` of the three stage goals, or ``None`` for the stay
            task (all three goals = the hand position at the episode's reset pose).
        sparse: no distance reward.
        time_reward: stage reward −0.4·(stages left) rather than a bonus per success step.
        reward_shift: added to every reward.
    """

    name: str
    subgoals: tuple[int, int, int] | None
    sparse: bool = False
    time_reward: bool = True
    reward_shift: float = 0.0

    @property
    def stay(self) -> bool:
        return self.subgoals is None


TASKS = (
    JacoTask('reach-s0-s1-s2', (0, 1, 2)),
    JacoTask('reach-s0-s1-s3', (0, 1, 3), time_reward=False, reward_shift=-2.0),
    JacoTask('reach-s1-s3-s2', (1, 3, 2)),
    JacoTask('reach-s1-s2-s0-sparse', (1, 2, 0), sparse=True),
    JacoTask('stay', None),
)
TASK_NAMES = tuple(task.name for task in TASKS)
N_TASKS = len(TASKS)


@dataclass(frozen=True)
class JacoTaskReward:
    """One task's ``reward_fn``: the reward recomputed from observations (see module docstring).

    Small and picklable (no simulator), so data-sharing code can hold one per task.

    Attributes:
        task: the task.
        goals: its three stage goals, (3, 3).
    """

    task: JacoTask
    goals: tuple[tuple[float, ...], ...]

    def __call__(
        self, observations: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> np.ndarray:
        """Rewards of (observation, action) pairs of any leading shape; returns that shape.

        Observations may be the per-task env's 18 dims or the 23 with the task one-hot (the
        stage one-hot and the hand position are at the same places in both).
        """
        observations = np.asarray(observations, dtype=np.float64)
        actions = np.asarray(actions, dtype=np.float64)
        stages = observations[..., STAGE].argmax(-1)
        targets = np.asarray(self.goals, dtype=np.float64)[stages]
        distance = np.linalg.norm(observations[..., HAND] - targets, axis=-1)
        success = distance < SUCCESS_THRESHOLD
        ctrl_reward = -ACTION_PENALTY * np.square(actions).sum(-1)
        dist_reward = np.zeros_like(distance) if self.task.sparse else -distance
        if self.task.stay:
            stage_reward = np.zeros_like(distance)
        elif self.task.time_reward:
            stage_reward = -TIME_PENALTY * np.maximum(N_STAGES - stages, 0)
        else:
            stage_reward = success_bonus(self.task) * success
        return dist_reward + stage_reward + ctrl_reward + self.task.reward_shift


def success_bonus(task: JacoTask) -> float:
    """Stage reward of a success step without time reward: ((|shift| + 1)·200/3)."""
    return (abs(task.reward_shift) + 1.0) * MAX_EPISODE_LENGTH / N_STAGES


class JacoReachTaskEnv(MujocoEnv):
    """One task of ``JacoReachMT5-v1`` as a Gymnasium env (see the module docstring).

    Args:
        task: task index or name (``TASK_NAMES``).
        render_mode: Gymnasium render mode.
        width, height: size of rendered images.
    """

    metadata = {
        'render_modes': ['human', 'rgb_array', 'depth_array'],
        'render_fps': int(round(1.0 / (TIMESTEP * FRAME_SKIP))),
    }

    def __init__(
        self,
        task: int | str,
        render_mode: str | None = RENDER_MODE,
        width: int = 480,
        height: int = 480,
    ) -> None:
        self.task_id = TASK_NAMES.index(task) if isinstance(task, str) else int(task)
        self.task = TASKS[self.task_id]
        bound = np.full(STATE_DIM, np.inf, dtype=np.float32)
        low = -bound
        low[STAGE], bound[STAGE] = 0.0, 1.0
        observation_space = gymnasium.spaces.Box(low, bound, dtype=np.float32)
        # gymnasium annotates the camera config as float values; its renderer takes arrays too.
        super().__init__(
            MODEL_PATH,
            FRAME_SKIP,
            observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=DEFAULT_CAMERA_CONFIG,  # type: ignore[arg-type]
        )
        self._hand = self.model.body(HAND_BODY).id
        self._target_mocap = int(self.model.body_mocapid[self.model.body(TARGET_BODY).id])
        if self.task.subgoals is None:
            nominal_goals = (self._initial_hand_position(),) * N_STAGES
        else:
            nominal_goals = tuple(SUBGOALS[i] for i in self.task.subgoals)
        # This episode's stage goals; a stay task replaces them at every reset.
        self.goals: tuple[tuple[float, ...], ...] = nominal_goals
        self.task_reward = JacoTaskReward(self.task, nominal_goals)
        self._stage = 0
        self._success_steps = 0
        self._set_target(0)

    def _initial_hand_position(self) -> tuple[float, ...]:
        """The hand at the noise-free initial pose: the stay task's goal for ``reward_fn``,
        which sees no episode and so cannot know that episode's reset pose."""
        data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, data)
        return tuple(float(x) for x in data.xpos[self._hand])

    @property
    def stage(self) -> int:
        """Stages completed in this episode (0-3)."""
        return self._stage

    @property
    def success_steps(self) -> int:
        """Steps of this episode with the hand within the radius (stay task only)."""
        return self._success_steps

    @property
    def goal(self) -> np.ndarray:
        """The current subgoal (where the target is): ``goals[min(stage, 2)]``."""
        return self._target.copy()

    def hand_position(self) -> np.ndarray:
        """The hand body's position as the env reads it (``data.xpos``)."""
        return self.data.xpos[self._hand].copy()

    def _set_target(self, stage: int) -> None:
        # The stage only moves past the last goal when the episode ends, and a stay task's
        # goals are all equal, so the last target set is always goals[min(stage, 2)].
        self._target = np.array(self.goals[stage])
        self.data.mocap_pos[self._target_mocap] = self._target

    def _observation(
        self, qpos: np.ndarray, qvel: np.ndarray, stage: int, hand: np.ndarray
    ) -> np.ndarray:
        stage_one_hot = np.zeros(N_STAGES)
        stage_one_hot[stage] = 1.0
        return np.concatenate([qpos, qvel, stage_one_hot, hand]).astype(np.float32)

    def _get_obs(self) -> np.ndarray:
        return self._observation(
            self.data.qpos, self.data.qvel, self._stage, self.data.xpos[self._hand]
        )

    def _warning_count(self) -> int:
        return int(self.data.warning.number[_UNSTABLE_WARNING_INDICES].sum())

    def _ctrl_reward(self, action: np.ndarray) -> float:
        # sum / size is ``mean`` to the bit, without its per-call bookkeeping.
        qvel, qacc = self.data.qvel, self.data.qacc
        return float(
            -ACTION_PENALTY * np.square(action).sum()
            - VELOCITY_PENALTY * (np.abs(qvel).sum() / qvel.size)
            - ACCELERATION_PENALTY * (np.abs(qacc).sum() / qacc.size)
        )

    # gymnasium's MujocoEnv.step annotation (np.float64 reward and infos) is narrower than Env's.
    def step(  # type: ignore[override]
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        task = self.task
        action = np.asarray(action, dtype=np.float64)
        # The state before the step, turned into an observation only if the step fails.
        before = (
            self.data.qpos.copy(),
            self.data.qvel.copy(),
            self._stage,
            self.data.xpos[self._hand].copy(),
        )
        warnings_before = self._warning_count()
        self.do_simulation(action, self.frame_skip)
        unstable = (
            self._warning_count() > warnings_before
            or not np.isfinite(self.data.qpos).all()
            or not np.isfinite(self.data.qvel).all()
        )
        observation = self._get_obs()
        ctrl_reward = self._ctrl_reward(action)
        offset = self.data.xpos[self._hand] - self._target
        distance = math.sqrt(float(offset @ offset))  # np.linalg.norm's sqrt(x·x), to the bit
        in_radius = distance < SUCCESS_THRESHOLD and not unstable
        terminated = False
        if unstable:
            ctrl_reward -= FAIL_PENALTY
            observation = self._observation(*before)
            terminated = True

        # success: this step completed a stage (see the module docstring).
        if in_radius and task.stay:
            self._success_steps += 1
            self._stage = self._success_steps // STAY_STEPS_PER_STAGE
            success = self._success_steps % STAY_STEPS_PER_STAGE == 0
        elif in_radius:
            self._stage += 1
            if self._stage < N_STAGES:
                self._set_target(self._stage)
            success = True
        else:
            success = False
        terminated = terminated or self._stage >= N_STAGES

        dist_reward = 0.0 if task.sparse else -distance
        if task.stay and task.sparse:
            count = self._success_steps
            stage_reward = float(in_radius and count % STAY_STEPS_PER_STAGE == 0) * count
        elif task.stay:
            stage_reward = 0.0
        elif task.time_reward:
            stage_reward = -TIME_PENALTY * max(N_STAGES - self._stage, 0)
        else:
            stage_reward = success_bonus(task) * float(success)
        reward = dist_reward + stage_reward + ctrl_reward + task.reward_shift
        info = {
            'stage_reward': float(stage_reward),
            'ctrl_reward': ctrl_reward,
            'dist_reward': float(dist_reward),
            'success': float(success),
            'stages_completed': float(self._stage),
        }
        if self.render_mode == 'human':
            self.render()
        return observation, float(reward), terminated, False, info

    def reset_model(self) -> np.ndarray:
        """Noisy initial pose, stage 0, target at the first goal; a stay task's goal is the
        hand at this pose."""
        qpos = self.init_qpos + self.np_random.uniform(-INIT_NOISE, INIT_NOISE, self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(
            -INIT_VELOCITY_NOISE, INIT_VELOCITY_NOISE, self.model.nv
        )
        self._stage = 0
        self._success_steps = 0
        self.set_state(qpos, qvel)  # runs mj_forward: xpos is this pose's
        if self.task.stay:
            self.goals = (tuple(float(x) for x in self.data.xpos[self._hand]),) * N_STAGES
        self._set_target(0)
        return self._get_obs()

    def reward_fn(
        self, observations: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> np.ndarray:
        """This task's reward recomputed from observations (see ``JacoTaskReward``)."""
        return self.task_reward(observations, actions)


def make_jaco_env(task_id: int) -> JacoReachTaskEnv:
    """Module-level factory, so that pickled environments stay small (see the adapter)."""
    return JacoReachTaskEnv(task_id)


@dataclass(frozen=True)
class JacoObservationSplitter(ObservationSplitter):
    """Jaco's ``split_observation`` (the release's): small, picklable, never modifies its input.

    Zeroes the hand position always and the task one-hot unless ``include_task_id``; the width
    is kept (``split_mode`` is ``'zero'``). Task ids are the argmax of the trailing one-hot.
    Works on numpy arrays and torch tensors, batched or not.
    """

    def __call__(self, observations: Array) -> tuple[Array, Array]:
        task_ids = observations[..., -self.n_tasks :].argmax(-1)
        states = (
            observations.clone() if isinstance(observations, torch.Tensor) else observations.copy()
        )
        states[..., HAND] = 0
        if not self.include_task_id:
            states[..., -self.n_tasks :] = 0
        return states, task_ids


class JacoReachMT5(GymnasiumTaskFamily):
    """The ``JacoReachMT5-v1`` family: four multistage reaching tasks and one stay task.

    Args:
        seed: base seed of the reset randomness; task ``i`` trains with ``seed + i`` and is
            evaluated with ``seed + 100 + i``.
        include_task_id: keep the task one-hot in the network input (the hand position is
            hidden either way).
    """

    ENV_ID = ENV_ID
    SPLIT_MODE = 'zero'

    def __init__(self, seed: int = 0, include_task_id: bool = False) -> None:
        super().__init__(TASK_NAMES, seed, include_task_id, min_reward=MIN_REWARD)

    def task_factory(
        self, task_id: int, split: str, seed: int
    ) -> functools.partial[JacoReachTaskEnv]:
        return functools.partial(make_jaco_env, task_id)

    @property
    def split_observation(self) -> JacoObservationSplitter:
        """Hides the hand position and (unless ``include_task_id``) the task one-hot."""
        return JacoObservationSplitter(self.n_tasks, 'zero', self.include_task_id)

    def reward_fns(self) -> list[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
        """Each task's ``reward_fn`` (picklable), for supervised data sharing."""
        return [env.gymnasium_env.task_reward for env in self.get_train_envs()]
