"""``KitchenMTEasy-v0``: ten single-object tasks in the Franka kitchen.

A 9-DoF Franka arm stands in front of the adept kitchen of D4RL / relay policy learning. Every
task asks it to move one object joint to a target configuration; five tasks undo the other five
(close what the other opens, switch off what the other switches on), so behaviour is shared
(reaching the same handles and knobs) but the directions conflict. Tasks, in task-id order, with
the release's success thresholds (``BONUS_THRESH``):

====  ====================  =============  =========
task  name                  element        threshold
====  ====================  =============  =========
0     slide cabinet-open    slide cabinet  0.1
1     slide cabinet-close   slide cabinet  0.1
2     hinge cabinet-open    hinge cabinet  0.1
3     hinge cabinet-close   hinge cabinet  0.3
4     bottom burner-on      bottom burner  0.3
5     bottom burner-off     bottom burner  0.3
6     top burner-on         top burner     0.3
7     top burner-off        top burner     0.3
8     light switch-on       light switch   0.3
9     light switch-off      light switch   0.3
====  ====================  =============  =========

Per task (release behaviour, see docs/deviations.md; the release's ``KitchenSingleTaskEnv``
on D4RL's ``KitchenTaskRelaxV1``):

* start: D4RL's kitchen initial qpos, with the task element's joints set to the task's initial
  configuration: "-open"/"-on" tasks start closed/off (D4RL's own initial values), "-close"/"-off"
  tasks start open/on (at the goal of their "-open"/"-on" twin); the goal is the other
  configuration;
* action: 9 joint-velocity commands in [-1, 1], scaled x2, clipped to the joint velocity bounds
  (+-10) and integrated over one control step (frame skip 40 x 0.002 s = 0.08 s) from the last
  *observed* (noisy) joint positions into position targets, which are clipped to the joint
  position bounds (D4RL's ``Robot_VelAct``);
* state (60, float32): robot joint qpos 9 and object qpos 21, both with D4RL's observation noise
  (``robot_noise_ratio`` 0.1 times the per-joint ``pos_noise_amp`` of ``franka_config.xml``,
  times U(-1, 1)), then the goal vector 30: zeros with the task element's goal, then overwritten
  by four fixed elements (microwave open, kettle pushed, bottom burner on, light switch on; the
  release's "karl's kitchen" hack), so the bottom-burner and light-switch "-off" tasks show the
  same goal vector as their "-on" twins. The task one-hot is appended by ``TaskOneHotWrapper``
  and sliced off again before the networks (``split_mode='slice'``: 60 network inputs unless
  ``include_task_id``);
* success: ||element qpos - goal|| < threshold, with the element qpos read from the *noisy*
  observation (as the release); success ends the episode (``StepType.TERMINAL``);
* reward: dense ``20 * (0.4 * in_place + 0.6 * reach - 1)`` in [-20, 0], where
  ``in_place = tolerance(||element - goal||, bounds=(0, threshold),
  margin=|initial distance - threshold|)`` and ``reach = tolerance(||object site - gripper||,
  bounds=(0, 0.08), margin=|initial hand distance - 0.08|)``, both with dm_control's Gaussian
  sigmoid (0.1 at the margin). The gripper is the midpoint of the two finger bodies; the
  initial hand distance is measured at reset from the ``end_effector`` site instead (a quirk of
  the release, kept). On the success step the reward is ``20 * 140 = 2800`` (the release's
  ``early_termination_bonus = max_episode_steps``). A task listed in ``sparse_tasks`` gets
  ``1[success]`` instead;
* horizon 140 (a ``StepType.TIMEOUT`` from the adapter); ``min_reward`` -20, or 0 when every
  task is sparse;
* infos (numbers only): ``success`` (0/1 float), ``distance_to_goal`` (element to goal) and
  ``distance_to_object`` (gripper to the element's site), plus ``task_id`` from the wrapper;
* train and test environments run the same tasks but are separate instances, seeded
  ``seed + task_id`` and ``seed + 100 + task_id`` (the seed drives the observation noise);
* ``task_name="i,j,..."`` keeps only those tasks, in that order; task ids, one-hots, seeds and
  ``sparse_tasks`` then index the selection.

Implementation: the simulation is Gymnasium-Robotics 1.4.2's ``FrankaRobot`` (the MuJoCo env
inside ``FrankaKitchen-v1``) loaded with FrankaKitchen-v1's kitchen model. Its control is D4RL's
(x2 scaling, velocity and position bounds from the same ``franka_config.xml``, integration from
the last noisy observation, frame skip 40), so it is stepped directly; Gymnasium-Robotics'
``KitchenEnv`` wrapper (Dict observations, sparse task-count reward, its own object noise) is not
used. The element indices and goals are D4RL's ``OBS_ELEMENT_INDICES`` / ``OBS_ELEMENT_GOALS``,
which Gymnasium-Robotics' ``kitchen_env`` repeats unchanged (the tests compare them), and the
initial qpos is D4RL's ``KitchenV0.init_qpos`` (also repeated there). Per-task environments reach
garage through ``GymnasiumEnv`` and pickle as a ``functools.partial`` of the module-level
``make_kitchen_task_env``.

Differences from the release:

* dynamics: Farama's MJCF port of D4RL's ``franka_kitchen_jntpos_act_ab.xml`` on MuJoCo 3.3
  instead of the original model on mujoco-py / MuJoCo 2.x. Timestep, frame skip, actuators
  (joint position servos), joint bounds and the initial state are the same, but the two models
  were not compared element by element and contacts are solved by another MuJoCo version, so
  trajectories are not bit-identical;
* noise: the noise model is D4RL's (robot *and* object qpos, both scaled by 0.1, as D4RL's
  ``Robot.get_obs`` applies ``robot_noise_ratio`` to the objects too; Gymnasium-Robotics' own
  defaults would be 0.01 for the robot and 0.0005 with amplitudes shifted by one joint for the
  objects), but it is drawn from another random stream: D4RL draws five extra observations at
  every reset to fill its observation cache, and the release seeds each task environment from
  the global NumPy generator, whereas here the seeds are ``seed + task_id`` (+ 100 for
  evaluation), so runs are reproducible;
* D4RL's constructor takes one unscaled, noise-free zero-action step "while initializing";
  nothing here depends on it, since every episode starts from ``reset``;
* ``task_name``: the release's ``MT_EASY`` benchmark ignores it (only its ``MT1`` benchmark uses
  it, to pick a single task); here it selects a subset, as for the Maze family. It must list
  distinct task indices in 0..9;
* ``min_reward`` is 0 when every task is sparse (the release always uses -20);
* the release's ``control_penalty`` (asserted to be 0), ``use_skill_space`` and
  ``vectorized_skills`` options are not offered;
* infos: the release's ``VIS:*`` distances, pad distances, ``timeout`` and ``ctrl_penalty`` are
  not reported; ``success`` is a float;
* rendering: 400 x 400 RGB images from the release's camera (distance 2.2, azimuth 70,
  elevation -35, look-at (-0.2, 0.5, 2.0), which is also Gymnasium-Robotics' default), drawn by
  Gymnasium's MuJoCo renderer from Gymnasium-Robotics' scene.

Rendering: environments are built with ``render_mode='rgb_array'``; MuJoCo's renderer is created
on the first ``render()`` only, so rendering costs nothing unless used. Off-screen rendering
needs ``MUJOCO_GL=egl`` (or ``osmesa``) set before MuJoCo is first imported.
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen import franka_env
from gymnasium_robotics.envs.franka_kitchen.franka_env import FrankaRobot

from environments.family import GymnasiumTaskFamily
from environments.multitask import sparse_task_set
from environments.registry import ENVS, select_tasks

ENV_ID = 'KitchenMTEasy-v0'
MAX_EPISODE_LENGTH = ENVS[ENV_ID].max_episode_length
N_ROBOT_JOINTS = 9
N_OBJECT_JOINTS = 21
STATE_DIM = 60  # robot qpos 9 + object qpos 21 + goal vector 30
OBSERVATION_BOUND = 8.0  # D4RL's KitchenV0 observation space is Box(-8, 8)
REWARD_SCALE = 20.0
SUCCESS_REWARD = REWARD_SCALE * MAX_EPISODE_LENGTH  # the release's early-termination bonus
MIN_REWARD = -REWARD_SCALE
HANDLE_REACH_RADIUS = 0.08
VALUE_AT_MARGIN = 0.1
ROBOT_NOISE_RATIO = 0.1  # D4RL's KitchenV0: "10% as per robot_config specs"
RENDER_SIZE = 400
KITCHEN_MODEL = '../assets/kitchen_franka/kitchen_assets/kitchen_env_model.xml'
FRANKA_CONFIG = os.path.join(
    os.path.dirname(franka_env.__file__), '../assets/kitchen_franka/franka_assets/franka_config.xml'
)

# D4RL's kitchen tables (d4rl/kitchen/kitchen_envs.py), repeated unchanged by Gymnasium-Robotics'
# kitchen_env.py: the qpos indices of each object and its "on"/"open" configuration.
OBS_ELEMENT_INDICES: dict[str, tuple[int, ...]] = {
    'bottom burner': (11, 12),
    'top burner': (15, 16),
    'light switch': (17, 18),
    'slide cabinet': (19,),
    'hinge cabinet': (20, 21),
    'microwave': (22,),
    'kettle': (23, 24, 25, 26, 27, 28, 29),
}
OBS_ELEMENT_GOALS: dict[str, tuple[float, ...]] = {
    'bottom burner': (-0.88, -0.01),
    'top burner': (-0.92, -0.01),
    'light switch': (-0.69, -0.05),
    'slide cabinet': (0.37,),
    'hinge cabinet': (0.0, 1.45),
    'microwave': (-0.75,),
    'kettle': (-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06),
}
# The object sites the reach term measures the gripper against (the release's OBS_ELEMENT_SITES).
OBS_ELEMENT_SITES: dict[str, str] = {
    'bottom burner': 'knob2_site',
    'top burner': 'knob4_site',
    'light switch': 'light_site',
    'slide cabinet': 'slide_site',
    'hinge cabinet': 'hinge_site2',
    'microwave': 'microhandle_site',
    'kettle': 'kettle_site',
}
# The elements whose goals overwrite every task's goal vector (the release's _get_task_goal).
FIXED_GOAL_ELEMENTS = ('microwave', 'kettle', 'bottom burner', 'light switch')
# D4RL's KitchenV0.init_qpos (= Gymnasium-Robotics' KitchenEnv init_qpos): all closed and off.
INIT_QPOS = np.array(
    [
        1.48388023e-01,
        -1.76848573e00,
        1.84390296e00,
        -2.47685760e00,
        2.60252026e-01,
        7.12533105e-01,
        1.59515394e00,
        4.79267505e-02,
        3.71350919e-02,
        -2.66279850e-04,
        -5.18043486e-05,
        3.12877220e-05,
        -4.51199853e-05,
        -3.90842156e-06,
        -4.22629655e-05,
        6.28065475e-05,
        4.04984708e-05,
        4.62730939e-04,
        -2.26906415e-04,
        -4.65501369e-04,
        -6.44129196e-03,
        -1.77048263e-03,
        1.08009684e-03,
        -2.69397440e-01,
        3.50383255e-01,
        1.61944683e00,
        1.00618764e00,
        4.06395120e-03,
        -6.62095997e-03,
        -2.68278933e-04,
    ]
)


@dataclass(frozen=True)
class KitchenTask:
    """One task: move ``element`` from ``init`` to ``goal`` (joint values of its qpos indices)."""

    name: str
    element: str
    init: tuple[float, ...]
    goal: tuple[float, ...]
    threshold: float

    @property
    def indices(self) -> np.ndarray:
        """The element's indices into the 30 qpos (= into the observation's first 30 entries)."""
        return np.array(OBS_ELEMENT_INDICES[self.element])


def _task_pair(
    element: str, forward: str, backward: str, forward_threshold: float, backward_threshold: float
) -> tuple[KitchenTask, KitchenTask]:
    """A task from D4RL's initial state to D4RL's goal and its reverse."""
    off = tuple(float(v) for v in INIT_QPOS[list(OBS_ELEMENT_INDICES[element])])
    on = OBS_ELEMENT_GOALS[element]
    return (
        KitchenTask(f'{element}-{forward}', element, off, on, forward_threshold),
        KitchenTask(f'{element}-{backward}', element, on, off, backward_threshold),
    )


TASKS: tuple[KitchenTask, ...] = (
    *_task_pair('slide cabinet', 'open', 'close', 0.1, 0.1),
    *_task_pair('hinge cabinet', 'open', 'close', 0.1, 0.3),
    *_task_pair('bottom burner', 'on', 'off', 0.3, 0.3),
    *_task_pair('top burner', 'on', 'off', 0.3, 0.3),
    *_task_pair('light switch', 'on', 'off', 0.3, 0.3),
)
TASK_NAMES: tuple[str, ...] = tuple(task.name for task in TASKS)
TASKS_BY_NAME: dict[str, KitchenTask] = {task.name: task for task in TASKS}


def tolerance(
    x: float, bounds: tuple[float, float], margin: float, value_at_margin: float = VALUE_AT_MARGIN
) -> float:
    """dm_control's ``tolerance`` with its Gaussian sigmoid, for a scalar ``x``.

    1 inside ``bounds`` (inclusive); outside, ``value_at_margin ** (d / margin) ** 2`` where d
    is the distance to the nearest bound, so it is ``value_at_margin`` at ``margin`` away; with
    ``margin == 0`` it is 0 outside the bounds.

    Raises:
        ValueError: if the bounds are reversed, the margin is negative or ``value_at_margin``
            is not strictly between 0 and 1.
    """
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f'lower bound {lower} exceeds upper bound {upper}')
    if margin < 0:
        raise ValueError(f'margin must be non-negative, got {margin}')
    if not 0.0 < value_at_margin < 1.0:
        raise ValueError(f'value_at_margin must be in (0, 1), got {value_at_margin}')
    if lower <= x <= upper:
        return 1.0
    if margin == 0:
        return 0.0
    distance = (lower - x if x < lower else x - upper) / margin
    # exp(-0.5 (d s)^2) with s = sqrt(-2 ln v) is v ** (d^2).
    return float(np.exp(np.log(value_at_margin) * distance**2))


def goal_vector(task: KitchenTask) -> np.ndarray:
    """The 30-d goal part of the observation, as the release builds it (module docstring)."""
    goal = np.zeros(N_ROBOT_JOINTS + N_OBJECT_JOINTS)
    goal[task.indices] = task.goal
    for element in FIXED_GOAL_ELEMENTS:
        goal[list(OBS_ELEMENT_INDICES[element])] = OBS_ELEMENT_GOALS[element]
    return goal


@functools.lru_cache(maxsize=1)
def object_noise_amplitudes() -> np.ndarray:
    """D4RL's per-object-joint qpos noise amplitudes: ``pos_noise_amp`` of config joints 9..29.

    Read from Gymnasium-Robotics' copy of ``franka_config.xml``. (Gymnasium-Robotics' own
    ``KitchenEnv`` reads only 29 entries and uses entries 8..28 for the objects.)
    """
    root = ElementTree.parse(FRANKA_CONFIG).getroot()
    n_joints = N_ROBOT_JOINTS + N_OBJECT_JOINTS
    amplitudes = []
    for i in range(n_joints):
        joint = root.find(f'qpos{i}')
        amplitude = None if joint is None else joint.get('pos_noise_amp')
        if amplitude is None:
            raise ValueError(f'{FRANKA_CONFIG} has no pos_noise_amp for qpos{i}')
        amplitudes.append(float(amplitude))
    return np.array(amplitudes[N_ROBOT_JOINTS:])


class KitchenTaskEnv(gymnasium.Env):
    """One task of the family (see module docstring).

    Args:
        task_name: one of ``TASK_NAMES``.
        sparse: reward ``1[success]`` instead of the dense reward.
        render_mode: ``'rgb_array'`` (renderer created on first use) or None.
    """

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 12}

    def __init__(
        self, task_name: str, sparse: bool = False, render_mode: str | None = 'rgb_array'
    ) -> None:
        if task_name not in TASKS_BY_NAME:
            raise ValueError(f'unknown kitchen task {task_name!r}; tasks: {TASK_NAMES}')
        self.task = TASKS_BY_NAME[task_name]
        self.sparse = sparse
        self.render_mode = render_mode
        self._robot = FrankaRobot(
            model_path=KITCHEN_MODEL,
            robot_noise_ratio=ROBOT_NOISE_RATIO,
            render_mode=render_mode,
            width=RENDER_SIZE,
            height=RENDER_SIZE,
        )
        self.model: mujoco.MjModel = self._robot.model
        self.data: mujoco.MjData = self._robot.data
        init_qpos = INIT_QPOS.copy()
        init_qpos[self.task.indices] = self.task.init
        # FrankaRobot resets to these (its defaults alias the simulation's own arrays).
        self._robot.init_qpos = init_qpos
        self._robot.init_qvel = np.zeros(self.model.nv)
        self._goal = np.array(self.task.goal)
        self._goal_vector = goal_vector(self.task)
        self._object_noise = ROBOT_NOISE_RATIO * object_noise_amplitudes()
        self._site = OBS_ELEMENT_SITES[self.task.element]
        self._goal_margin = abs(
            float(np.linalg.norm(np.subtract(self.task.init, self.task.goal))) - self.task.threshold
        )
        self._hand_margin = 0.0
        self.observation_space = gymnasium.spaces.Box(
            -OBSERVATION_BOUND, OBSERVATION_BOUND, (STATE_DIM,), np.float32
        )
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (N_ROBOT_JOINTS,), np.float32)

    @property
    def goal_vector(self) -> np.ndarray:
        """The goal part of the observation (30)."""
        return self._goal_vector.copy()

    @property
    def hand_margin(self) -> float:
        """The reach term's margin: |end effector to object site at reset - 0.08|."""
        return self._hand_margin

    @property
    def goal_margin(self) -> float:
        """The in-place term's margin: |initial element distance to goal - threshold|."""
        return self._goal_margin

    def gripper_position(self) -> np.ndarray:
        """The midpoint of the two finger bodies (the release's gripper position)."""
        return (
            self.data.body('panda0_leftfinger').xpos + self.data.body('panda0_rightfinger').xpos
        ) / 2.0

    def object_position(self) -> np.ndarray:
        """World position of the task element's site (handle, knob or switch)."""
        return self.data.site(self._site).xpos.copy()

    def set_qpos(self, indices: Sequence[int], values: Sequence[float]) -> None:
        """Writes qpos entries of hinge and slide joints (zero velocity there) and recomputes
        the kinematics; used by tests to put an object into a given configuration.

        Raises:
            ValueError: for the kettle's free joint (qpos 23..29), whose qpos and qvel indices
                differ.
        """
        qpos_indices = np.asarray(indices, dtype=int)
        if qpos_indices.min() < 0 or qpos_indices.max() >= OBS_ELEMENT_INDICES['kettle'][0]:
            raise ValueError(f'set_qpos takes qpos indices 0..22, got {qpos_indices.tolist()}')
        self.data.qpos[qpos_indices] = values
        self.data.qvel[qpos_indices] = 0.0  # below the kettle, qpos index = dof index
        mujoco.mj_forward(self.model, self.data)

    def get_random_state(self) -> Any:
        """The robot's own generator (its reset noise), for snapshots (``GymnasiumEnv``)."""
        return self._robot._np_random  # pylint: disable=protected-access

    def set_random_state(self, state: Any) -> None:
        """Restores ``get_random_state``'s generator."""
        self._robot._np_random = state  # pylint: disable=protected-access

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        robot_observation, _ = self._robot.reset(seed=seed)
        hand_distance = np.linalg.norm(self.object_position() - self.data.site('end_effector').xpos)
        self._hand_margin = abs(float(hand_distance) - HANDLE_REACH_RADIUS)
        observation, _ = self._observe(robot_observation)
        return observation, {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64).reshape(N_ROBOT_JOINTS)
        # Clips to [-1, 1], scales by 2, integrates from the last noisy joint positions and
        # clips to the joint bounds, then simulates 40 steps (D4RL's control).
        robot_observation, *_ = self._robot.step(action)
        observation, element = self._observe(robot_observation)
        distance_to_goal = float(np.linalg.norm(element - self._goal))
        distance_to_object = float(np.linalg.norm(self.object_position() - self.gripper_position()))
        success = distance_to_goal < self.task.threshold
        reward = self.compute_reward(distance_to_goal, distance_to_object, success)
        info = {
            'success': float(success),
            'distance_to_goal': distance_to_goal,
            'distance_to_object': distance_to_object,
        }
        return observation, reward, success, False, info

    def compute_reward(
        self, distance_to_goal: float, distance_to_object: float, success: bool
    ) -> float:
        """The release's reward for one step (module docstring)."""
        if self.sparse:
            return float(success)
        if success:
            return SUCCESS_REWARD
        in_place = tolerance(distance_to_goal, (0.0, self.task.threshold), self._goal_margin)
        reach = tolerance(distance_to_object, (0.0, HANDLE_REACH_RADIUS), self._hand_margin)
        return REWARD_SCALE * (0.4 * in_place + 0.6 * reach - 1.0)

    def _observe(self, robot_observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(observation, noisy task-element qpos) from the robot's noisy observation.

        The robot's joint positions already carry D4RL's noise (drawn by ``FrankaRobot``); the
        object positions get theirs here, from the same random stream.
        """
        object_qpos = self.data.qpos[N_ROBOT_JOINTS:].copy()
        object_qpos += self._object_noise * self._robot.np_random.uniform(
            -1.0, 1.0, N_OBJECT_JOINTS
        )
        state = np.concatenate([robot_observation[:N_ROBOT_JOINTS], object_qpos, self._goal_vector])
        element = state[self.task.indices]
        return state.astype(np.float32), element

    def render(self) -> np.ndarray | None:
        """A 400 x 400 RGB image from the release's camera (``render_mode='rgb_array'``)."""
        return self._robot.render()

    def close(self) -> None:
        self._robot.close()


def make_kitchen_task_env(task_name: str, sparse: bool = False) -> KitchenTaskEnv:
    """Module-level factory of one task's Gymnasium env (picklable through a partial)."""
    return KitchenTaskEnv(task_name, sparse=sparse, render_mode='rgb_array')


class KitchenMTEasy(GymnasiumTaskFamily):
    """The ``KitchenMTEasy-v0`` family (module docstring).

    Constructing it builds no simulator: task environments are built on the first
    ``get_train_envs`` / ``get_test_envs`` (or ``spec``) call.

    Args:
        seed: train environment ``i`` is seeded ``seed + i``, test environment ``i``
            ``seed + 100 + i`` (observation noise).
        include_task_id: keep the task one-hot in the network input.
        task_name: ``"i,j,..."``: run only these tasks, in this order.
        sparse_tasks: indices (into the selected tasks) of tasks rewarded ``1[success]``.
    """

    ENV_ID = ENV_ID
    SPLIT_MODE = 'slice'

    def __init__(
        self,
        seed: int = 0,
        include_task_id: bool = False,
        task_name: str | None = None,
        sparse_tasks: Sequence[int] = (),
    ) -> None:
        self.task_indices = select_tasks(task_name, len(TASKS))
        n_tasks = len(self.task_indices)
        self._sparse_tasks = sparse_task_set(sparse_tasks, n_tasks, ENV_ID)
        all_sparse = len(self._sparse_tasks) == n_tasks
        super().__init__(
            [TASK_NAMES[i] for i in self.task_indices],
            seed,
            include_task_id,
            min_reward=0.0 if all_sparse else MIN_REWARD,
        )

    def task_factory(
        self, task_id: int, split: str, seed: int
    ) -> functools.partial[KitchenTaskEnv]:
        return functools.partial(
            make_kitchen_task_env, self.task_names[task_id], task_id in self._sparse_tasks
        )
