"""``Walker2dMT4-v0``: four locomotion tasks of one planar walker.

The family of the release's ``Walker2dMTEnv`` (after the "transition" codebase), in one-hot
order ``forward``, ``backward``, ``balance``, ``crawl``, rebuilt on Gymnasium's ``MujocoEnv``
and the official ``mujoco`` bindings (the release used gym's ``MujocoEnv`` over mujoco-py).

What is kept from the release:

* model: the gym Walker2d (7 bodies, 9 DoF, 6 motors of gear 100 with ctrl in [-1, 1]),
  RK4 integrator, timestep 0.002, frame skip 4 (dt = 0.008); Crawl adds a ceiling box;
* observation: ``qpos[1:]`` (8) and ``clip(qvel, -10, 10)`` (9), 17 dims, plus the task
  one-hot (21); ``split_mode='zero'`` (one-hot zeroed, width kept); horizon 1000;
* reset: ``qpos``/``qvel`` noise U(±0.01) around the initial pose, then 5 steps of uniform
  random actions (10 for Balance);
* reward, with ``v = Δx / dt`` of the root, ``Δh`` = torso frame z − max(foot frame z),
  ``nz = cos(torso angle qpos[2])`` and the foot joints' speeds ``|Δq| / dt``::

      common:   ctrl -1e-3·‖a‖²,  alive +1,  angle +0.1·nz
      forward:  +1·(3 − |v − 3|)   −1·|1.1 − Δh|    −0.01·(foot speeds)
      backward: same with v → −v
      balance:  −1·|v|             −0.5·|1.1 − Δh|  (no foot term)
      crawl:    +2·(3 − |v − 3|)   (no height term) −0.01·(foot speeds),
                −10 on touching a ceiling geom, which also ends the episode;

* ``info['x_velocity']`` as the release reports it (Forward, Crawl: the shaped ``3 − |v − 3|``;
  Backward: minus its shaped value; Balance: the raw ``v``), the release's other reward-term
  infos (same keys for every task, so garage can stack episodes of different tasks; the
  release's Balance reports ``x_vel_mean = −v``, kept), and ``info['success']`` (a float);
* termination (Gymnasium ``terminated``, i.e. ``StepType.TERMINAL``): torso height
  ``qpos[1] < min_height`` (0.8; 0.3 for Crawl) or Crawl's ceiling contact. Surviving
  ``success_steps`` (1000) steps is a success and also terminates, so the last step of a
  successful episode is TERMINAL as in the release (the adapter lets a termination on the
  horizon step win over the time-out). The env counts its own steps; ``reset`` zeroes them.

Differences from the release:

* the walker model is Gymnasium's ``walker2d.xml`` instead of the release's ``walker_v1.xml``.
  Both are gym's Walker2d: Gymnasium's file is the local-coordinate port of gym's
  global-coordinate ``walker2d.xml`` (which ``walker_v1.xml`` copies), which Gymnasium checked
  to behave identically over 100 M steps on MuJoCo 2.3.3 (Gymnasium PR #589), with the same
  bodies, joints, geoms, frictions (right foot 0.9, left foot 1.9), actuators and options.
  ``Δh`` reads the foot *body frames*, which no dynamics depend on: in the port they lie 0.1
  below the foot joints (z = 0 when standing, so ``Δh`` = 1.25 upright), i.e. the original's
  malformed ``pos="0.2/2 0 0.1"`` read as (0.2, 0, 0). Had mujoco-py's MuJoCo 2.1 read it as
  (0.2, 0, 0.1), the release's ``Δh`` would be 0.1 smaller; this could not be checked here
  (MuJoCo 3 rejects the attribute, and mujoco-py is not installable). Only visual parts
  differ: floor size and texture, skybox, and the release's two contact-free target markers
  are absent. ``walker_v1.xml`` also includes the release's ``shared.xml``, which this
  model does not load (its bodies, joints, frictions and options come from Gymnasium's
  file, listed above). Integrator, timestep, gears and control ranges are set explicitly on the
  loaded tree (Gymnasium's file already has the release's values);
* the Crawl model is generated at runtime from the same file (``xml.etree``) by adding the
  obstacle geoms of the release's ``walker_v2.xml`` where the release leaves them at reset:
  ``ceiling_long`` (half sizes 6 × 2 × 0.1, centred at z = 1.0, so its underside is at 0.9)
  spanning x ∈ [2, 14], and the unused ``ceiling1``/``ceiling2`` (x ≈ −10) and
  ``curb1``–``curb5`` (x = −5) parked behind the start as in ``walker_v2.xml``;
* MuJoCo 3.3 instead of MuJoCo 2.1: same integrator and model, but trajectories are not
  bit-identical (e.g. MuJoCo 3's convex collision code for the box ceiling);
* randomness: the reset noise and the random reset actions come from the env's seeded
  ``np_random`` (train envs seeded ``seed + task_id``, test envs ``seed + 100 + task_id``)
  instead of the global ``np.random`` and an unseeded action space;
* external perturbation forces are not implemented: the release's probability is 0;
* observations are float32 (float64 in the release); ``task_id`` is added to the infos by
  ``TaskOneHotWrapper`` rather than by the env itself;
* rendering uses the model's ``track`` camera (follows the walker) instead of the release's
  viewer placement; ``render_mode='rgb_array'`` by default, the renderer is created on the
  first ``render()``, and off-screen rendering needs ``MUJOCO_GL=egl`` (or ``osmesa``) set
  before MuJoCo is imported.
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium
import mujoco
import numpy as np
from gymnasium.envs.mujoco import MujocoEnv

from environments.family import GymnasiumTaskFamily
from environments.registry import ENVS

ENV_ID = 'Walker2dMT4-v0'
MAX_EPISODE_LENGTH = ENVS[ENV_ID].max_episode_length
TIMESTEP = 0.002
FRAME_SKIP = 4
GEAR = 100.0
INIT_NOISE = 0.01
CTRL_COST = 1e-3
ALIVE_REWARD = 1.0
ANGLE_REWARD = 0.1
TARGET_DELTA_H = 1.1
VELOCITY_LIMIT = 3.0
COLLISION_PENALTY = 10.0
CEILING_X = 2.0
CEILING_HEIGHT = 1.0
CEILING_HALF_SIZE = (6.0, 2.0, 0.1)
STATE_DIM = 17
VELOCITY_CLIP = 10.0
RENDER_MODE = 'rgb_array'
GYMNASIUM_WALKER_XML = os.path.join(
    os.path.dirname(gymnasium.envs.mujoco.__file__), 'assets', 'walker2d.xml'
)
# walker_v2.xml's other obstacles, at the positions the release never moves them from:
# (name, centre, half sizes).
PARKED_OBSTACLES = (
    *((f'curb{i}', (-5.0, 0.0, 0.2), (0.1, 2.0, 0.2)) for i in range(1, 6)),
    ('ceiling1', (-10.0, 0.0, CEILING_HEIGHT), (1.5, 2.0, 0.1)),
    ('ceiling2', (-10.0, 0.0, CEILING_HEIGHT), (1.5, 2.0, 0.1)),
)


@dataclass(frozen=True)
class WalkerTask:
    """The settings in which the release's four task classes differ.

    Attributes:
        name: task name (one-hot order is the order of ``TASKS``).
        velocity: ``'forward'`` rewards ``3 − |v − 3|``, ``'backward'`` the same of ``−v``,
            ``'still'`` penalises ``|v|``.
        velocity_weight: weight of the velocity term.
        height_weight: weight of ``−|1.1 − Δh|``.
        foot_weight: weight of ``−(foot joint speeds)``.
        random_steps: random-action steps at reset.
        min_height: the episode fails when the torso height falls below this.
        ceiling: the model has ceilings; touching one costs 10 and ends the episode.
    """

    name: str
    velocity: Literal['forward', 'backward', 'still']
    velocity_weight: float
    height_weight: float
    foot_weight: float
    random_steps: int
    min_height: float
    ceiling: bool = False


TASKS = (
    WalkerTask('forward', 'forward', 1.0, 1.0, 0.01, 5, 0.8),
    WalkerTask('backward', 'backward', 1.0, 1.0, 0.01, 5, 0.8),
    WalkerTask('balance', 'still', 1.0, 0.5, 0.0, 10, 0.8),
    WalkerTask('crawl', 'forward', 2.0, 0.0, 0.01, 5, 0.3, ceiling=True),
)
TASK_NAMES = tuple(task.name for task in TASKS)


def _vector(values: tuple[float, ...]) -> str:
    return ' '.join(repr(float(v)) for v in values)


def _add_box(
    worldbody: ElementTree.Element,
    name: str,
    pos: tuple[float, ...],
    size: tuple[float, ...],
    rgba: str,
) -> None:
    """A static box that collides with the walker (walker geoms have contype 1)."""
    ElementTree.SubElement(
        worldbody,
        'geom',
        name=name,
        type='box',
        pos=_vector(pos),
        size=_vector(size),
        contype='1',
        conaffinity='1',
        rgba=rgba,
    )


@functools.lru_cache(maxsize=2)
def walker_xml(ceiling: bool) -> str:
    """The MJCF of the walker (with the Crawl obstacles if ``ceiling``), built from Gymnasium's.

    Generated rather than committed so that the walker itself stays Gymnasium's file; the
    release's physics settings are written explicitly (they equal Gymnasium's).
    """
    root = ElementTree.parse(GYMNASIUM_WALKER_XML).getroot()
    option = root.find('option')
    if option is None:
        option = ElementTree.SubElement(root, 'option')
    option.set('integrator', 'RK4')
    option.set('timestep', repr(TIMESTEP))
    motors = root.findall('./actuator/motor')
    if len(motors) != 6:
        raise ValueError(f'{GYMNASIUM_WALKER_XML} has {len(motors)} motors, expected 6')
    for motor in motors:
        motor.set('gear', repr(GEAR))
        motor.set('ctrllimited', 'true')
        motor.set('ctrlrange', '-1 1')
    if ceiling:
        worldbody = root.find('worldbody')
        if worldbody is None:
            raise ValueError(f'{GYMNASIUM_WALKER_XML} has no worldbody')
        centre = (CEILING_X + CEILING_HALF_SIZE[0], 0.0, CEILING_HEIGHT)
        _add_box(worldbody, 'ceiling_long', centre, CEILING_HALF_SIZE, '0.3 0.3 0.9 1')
        for name, pos, size in PARKED_OBSTACLES:
            _add_box(worldbody, name, pos, size, '0.7 0.5 0.9 1')
    return ElementTree.tostring(root, encoding='unicode')


class Walker2dTaskEnv(MujocoEnv):
    """One task of ``Walker2dMT4-v0`` as a Gymnasium env (see the module docstring).

    Args:
        task: task index or name (``TASK_NAMES``).
        success_steps: surviving this many steps is a success and ends the episode (1000 as in
            the release; tests shorten it).
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
        success_steps: int = MAX_EPISODE_LENGTH,
        render_mode: str | None = RENDER_MODE,
        width: int = 480,
        height: int = 480,
    ) -> None:
        self.task = TASKS[TASK_NAMES.index(task) if isinstance(task, str) else task]
        self.success_steps = success_steps
        self._steps = 0
        self._collided = False
        # Joint positions are unbounded (the torso hinge has no limits); velocities are clipped.
        bound = np.concatenate([np.full(8, np.inf), np.full(9, VELOCITY_CLIP)]).astype(np.float32)
        observation_space = gymnasium.spaces.Box(-bound, bound, dtype=np.float32)
        super().__init__(
            GYMNASIUM_WALKER_XML,
            FRAME_SKIP,
            observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name='track',
        )
        self._torso = self.model.body('torso').id
        self._feet = np.array([self.model.body('foot').id, self.model.body('foot_left').id])
        self._foot_qpos = np.array(
            [
                self.model.jnt_qposadr[self.model.joint(name).id]
                for name in ('foot_joint', 'foot_left_joint')
            ]
        )
        self._is_ceiling = np.array(
            ['ceiling' in self.model.geom(i).name for i in range(self.model.ngeom)]
        )

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Loads the generated MJCF (``walker_xml``) instead of the file at ``fullpath``."""
        model = mujoco.MjModel.from_xml_string(walker_xml(self.task.ceiling))
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    @property
    def steps(self) -> int:
        """Steps taken since the last reset (the random reset steps excluded)."""
        return self._steps

    def _get_obs(self) -> np.ndarray:
        velocity = np.clip(self.data.qvel, -VELOCITY_CLIP, VELOCITY_CLIP)
        return np.concatenate([self.data.qpos[1:], velocity]).astype(np.float32)

    def touches_ceiling(self) -> bool:
        """Whether a current contact involves a ceiling geom (the release matches 'ceiling')."""
        if self.data.ncon == 0 or not self._is_ceiling.any():
            return False
        contact = self.data.contact
        return bool(self._is_ceiling[contact.geom1].any() or self._is_ceiling[contact.geom2].any())

    # gymnasium's MujocoEnv.step annotation (np.float64 reward and infos) is narrower than Env's.
    def step(  # type: ignore[override]
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        task = self.task
        action = np.asarray(action, dtype=np.float64)
        x_before = float(self.data.qpos[0])
        feet_before = self.data.qpos[self._foot_qpos].copy()
        self.do_simulation(action, self.frame_skip)
        qpos = self.data.qpos
        raw_velocity = (float(qpos[0]) - x_before) / self.dt
        foot_speed = float(np.abs(qpos[self._foot_qpos] - feet_before).sum()) / self.dt

        collision_penalty = 0.0
        if task.ceiling and self.touches_ceiling():
            self._collided = True
            collision_penalty = -COLLISION_PENALTY

        height = float(qpos[1])
        nz = float(np.cos(qpos[2]))
        delta_h = float(self.data.xpos[self._torso, 2] - self.data.xpos[self._feet, 2].max())
        if task.velocity == 'still':
            velocity_reward = -task.velocity_weight * abs(raw_velocity)
            reported_velocity = raw_velocity
            mean_velocity = -raw_velocity
        else:
            signed = raw_velocity if task.velocity == 'forward' else -raw_velocity
            shaped = VELOCITY_LIMIT - abs(signed - VELOCITY_LIMIT)
            velocity_reward = task.velocity_weight * shaped
            reported_velocity = shaped if task.velocity == 'forward' else -shaped
            mean_velocity = signed
        ctrl_reward = -CTRL_COST * float(np.square(action).sum())
        angle_reward = ANGLE_REWARD * nz
        height_reward = -task.height_weight * abs(TARGET_DELTA_H - delta_h)
        foot_reward = -task.foot_weight * foot_speed
        reward = (
            velocity_reward
            + angle_reward
            + height_reward
            + ctrl_reward
            + ALIVE_REWARD
            + foot_reward
            + collision_penalty
        )

        failed = height < task.min_height or self._collided
        self._steps += 1
        success = not failed and self._steps >= self.success_steps
        info = {
            'x_velocity': reported_velocity,
            'success': float(success),
            'x_vel_reward': velocity_reward,
            'ctrl_reward': ctrl_reward,
            'angle_reward': angle_reward,
            'height_reward': height_reward,
            'alive_reward': ALIVE_REWARD,
            'foot_reward': foot_reward,
            'collision_penalty': collision_penalty,
            'delta_h_mean': delta_h,
            'nz_mean': nz,
            'x_vel_mean': mean_velocity,
            'height_mean': height,
        }
        if self.render_mode == 'human':
            self.render()
        return self._get_obs(), float(reward), bool(failed or success), False, info

    def reset_model(self) -> np.ndarray:
        """Noisy initial pose, then the release's random-action steps; zeroes the step count."""
        qpos = self.init_qpos + self.np_random.uniform(-INIT_NOISE, INIT_NOISE, self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-INIT_NOISE, INIT_NOISE, self.model.nv)
        self.set_state(qpos, qvel)
        for _ in range(self.task.random_steps):
            self.do_simulation(self.np_random.uniform(-1.0, 1.0, self.model.nu), self.frame_skip)
        self._steps = 0
        self._collided = False
        return self._get_obs()


def make_walker_env(task_id: int, success_steps: int = MAX_EPISODE_LENGTH) -> Walker2dTaskEnv:
    """Module-level factory, so that pickled environments stay small (see the adapter)."""
    return Walker2dTaskEnv(task_id, success_steps=success_steps)


class Walker2dMT4(GymnasiumTaskFamily):
    """The ``Walker2dMT4-v0`` family: forward, backward, balance, crawl.

    Args:
        seed: base seed of the reset randomness; task ``i`` trains with ``seed + i`` and is
            evaluated with ``seed + 100 + i``.
        include_task_id: keep the task one-hot in the network input.
    """

    ENV_ID = ENV_ID
    SPLIT_MODE = 'zero'

    def __init__(self, seed: int = 0, include_task_id: bool = False) -> None:
        super().__init__(TASK_NAMES, seed, include_task_id, min_reward=0.0)

    def task_factory(
        self, task_id: int, split: str, seed: int
    ) -> functools.partial[Walker2dTaskEnv]:
        return functools.partial(make_walker_env, task_id)
