"""``MetaWorldCDS-v1``: door and drawer tasks in one shared Meta-World scene.

Four tasks, in one-hot order ``door-open``, ``door-close``, ``drawer-open``, ``drawer-close``
(the release named them ``door-open-v1``, ... although they subclass Meta-World's V2 classes,
i.e. V2 dynamics and rewards). Every task runs in the same scene, which holds both a drawer
and a door (``environments/assets/door_drawer.xml``), so one state means the same thing in
every task and a transition of one task can be relabelled for the others.

What is kept from the release:

* the task classes are Meta-World's own (here Meta-World 3's ``SawyerDoorEnvV3``,
  ``SawyerDoorCloseEnvV3``, ``SawyerDrawerOpenEnvV3``, ``SawyerDrawerCloseEnvV3``) subclassed
  to load the shared scene; arm, mocap control (action = xyz delta × 1/100 and gripper, in
  [-1, 1]), frame skip 5, timestep 0.0025 and reward functions are Meta-World's;
* observation (21 + 4): hand xyz 3, gripper opening 1, drawer handle position 3 and
  quaternion 4, door handle position 3 and quaternion 4, goal 3, then the task one-hot. There
  is no frame stacking (Meta-World's 39-d layout repeats the previous frame; this one does
  not). ``split_mode='zero'`` (one-hot zeroed, width kept), ``min_reward=0.0``;
* rewards are Meta-World's shaped rewards in [0, 10]. The door rewards read the object at
  slots 4:11 of Meta-World's layout, so they are computed on a copy of the observation whose
  slots 4:11 hold the door entries (moved from 11:18); the drawer rewards read the drawer
  entries, which already sit there;
* initial positions: door-open hand (0, 0.6, 0.2); door-close hand (-0.6, 0.6, 0.2); both
  door tasks draw the door position x ∈ [-0.1, 0.0], y ∈ [0.85, 0.95] (z = 0.15), door-open
  starts closed, door-close starts open (-π/2). Drawer tasks: hand (0, 0.6, 0.2), drawer at
  x ∈ [0.3, 0.4] (y = 0.9, z = 0); drawer-open starts closed, drawer-close pulled out;
* goals follow the object as in Meta-World: door-open target = door + (-0.3, -0.45, 0),
  door-close target = door + (0.2, -0.2, 0), drawer-open target = drawer + (0, -0.36, 0.09),
  drawer-close target = drawer + (0, -0.16, 0.09);
* the scene: the drawer at (0.4, 0.9, 0), listed first (so its joint comes first in the state
  vector), and the door at (-0.1, 0.9, 0.15); each task moves its own object on reset, the other
  stays there, closed;
* success: door-open |door handle x - target x| ≤ 0.08; door-close
  ‖door handle - target‖ ≤ 0.08; drawer-open ‖handle - target‖ ≤ 0.03 and drawer-close
  ‖handle - target‖ ≤ 0.065 (Meta-World's drawer tests; drawer-close's is its
  ``TARGET_RADIUS + 0.015`` with the base class's radius 0.05, not its own ``_TARGET_RADIUS``).
  Both drawer tests, and the drawer rewards, read the handle as the shared observation reports
  it (drawer link + (0, -0.16, 0)): the release replaced the observation Meta-World's
  drawer-close reads (its handle is 0.05 higher) and left the test alone. The target is
  drawer + (0, -0.16, 0.09), 1 cm beyond the closed handle at the same height, so drawer-close
  succeeds while the drawer is at most 5.5 cm open (Meta-World's own reading: 3.15 cm);
* 50 goal variations (object positions) per task, a new one on every reset, visited in a
  reshuffled random order (``GoalVariationWrapper`` of ``metaworld_mt``); evaluation
  environments use a separately drawn set (seed + 100); horizon 500, never terminated
  (Meta-World truncates at 500, the adapter emits ``StepType.TIMEOUT``).

Differences from the release (or places where the release could not be checked):

* Meta-World 3 (``-v3`` classes, official ``mujoco`` bindings, MuJoCo 3.3) instead of
  Meta-World V2 on mujoco-py: same models and V2 reward functions, trajectories not
  bit-identical;
* the scene file is written for this project (the release's is in its repository). It
  includes Meta-World 3's installed ``drawer.xml`` and ``doorlockB.xml`` objects as
  Meta-World's per-task scenes do, with the release's placements and order; the release's
  unused goal site at x = 2.0 is at (0, 0.74, 0.05) here (every task moves it to its target).
  Within the tasks' ranges the two objects never touch (at least 2.9 cm apart, the closest
  being a fully open drawer at x = 0.3 beside the closed door);
* the object entries of the observation are defined once for all tasks, with Meta-World's
  conventions for each object: the drawer as Meta-World's drawer-open reads it (drawer link
  origin + (0, -0.16, 0), quaternion ``drawer_link`` wxyz) and the door as its door tasks read
  it (``handle`` geom position, quaternion xyzw from SciPy), as in the release. Meta-World's
  drawer-close reads the drawer 0.05 higher and reports a zero quaternion; as in the release its
  reward and success test read the shared observation's handle (see the success item above),
  while the starting handle position its reward margins use keeps Meta-World's +0.05;
* the goal variations are drawn by this module (uniform over the ranges above, a NumPy
  generator seeded by ``(seed, task index)``) rather than by a Meta-World benchmark class;
* bounds: the observation space's hand x lower bound is widened from Meta-World's -0.525 to
  -0.625 so that door-close's initial hand (x = -0.6) lies inside it (Meta-World, which
  clips step observations to its bounds, would report x = -0.525 for door-close's first few
  steps; here the true x is reported); goal bounds are the exact ranges of the goals above.
  Door-close's initial hand lies outside Meta-World's mocap range (x ≥ -0.5, the same in
  V2), so its first step moves the mocap to x = -0.5;
* the reset runs Meta-World's per-task ``reset_model`` once (Meta-World 3's ``reset`` runs it
  twice, the first run being erased by ``mj_resetData``; the result is the same), and reads
  the first observation after updating the kinematics: Meta-World 3's drawer-open (probably
  V2's too) moves the drawer body without recomputing positions, so its first observation
  reports the previous episode's drawer position; here it reports the current one (the
  dynamics are unchanged);
* randomness of the goal order comes from the wrapper's seeded generator (train envs seeded
  ``seed + task_id``, test envs ``seed + 100 + task_id``) instead of the global one.

Checked in ``tests/test_metaworld_cds_env.py``: with the same object position, initial hand
and actions, each task reproduces Meta-World 3's own single-object task step for step (object
trajectory, goal, reward and success agree to 1e-9; for drawer-close the object trajectory and
goal), i.e. the other object never interferes.

The scene file includes Meta-World's assets by paths relative to Meta-World's
``assets/sawyer_xyz`` directory. ``scene_path`` therefore places a copy of it, once per
process, in a temporary directory whose ``scene``, ``objects`` and ``textures`` entries are
symbolic links to the installed Meta-World assets (removed at exit); nothing is written into
the installed package.

Pickling stays small (no MuJoCo state): ``GymnasiumEnv`` pickles its factory, a
``functools.partial`` of the module-level ``make_cds_env`` holding the task name, its 50 goal
variations and the goal-order seed. Rendering: ``render_mode='rgb_array'`` (480x480, Meta-World's
default camera), the renderer is created on the first ``render()``; off-screen rendering needs
``MUJOCO_GL=egl`` (or ``osmesa``) set before MuJoCo is first imported.
"""

from __future__ import annotations

import atexit
import functools
import os
import pickle
import shutil
import tempfile
from functools import cached_property
from typing import Any, ClassVar, Final

import mujoco
import numpy as np
import numpy.typing as npt
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box
from metaworld.asset_path_utils import ENV_ASSET_DIR_V3
from metaworld.envs.sawyer_door_close_v3 import SawyerDoorCloseEnvV3
from metaworld.envs.sawyer_door_v3 import SawyerDoorEnvV3
from metaworld.envs.sawyer_drawer_close_v3 import SawyerDrawerCloseEnvV3
from metaworld.envs.sawyer_drawer_open_v3 import SawyerDrawerOpenEnvV3
from metaworld.sawyer_xyz_env import RenderMode, SawyerXYZEnv
from metaworld.types import InitConfigDict, Task
from scipy.spatial.transform import Rotation

from environments.family import GymnasiumTaskFamily
from environments.metaworld_mt import GoalVariationWrapper
from environments.multitask import TEST_SEED_OFFSET
from environments.registry import ENVS

ENV_ID = 'MetaWorldCDS-v1'
TASK_NAMES = ('door-open', 'door-close', 'drawer-open', 'drawer-close')
MAX_EPISODE_LENGTH = ENVS[ENV_ID].max_episode_length
N_GOAL_VARIATIONS = 50
RENDER_MODE: Final = 'rgb_array'
SCENE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'assets', 'door_drawer.xml')

# Layout of the 21-d state (before the one-hot).
HAND = slice(0, 3)
GRIPPER = 3
DRAWER_POS = slice(4, 7)
DRAWER = slice(4, 11)  # drawer position and quaternion
DOOR_POS = slice(11, 14)
DOOR = slice(11, 18)  # door handle position and quaternion
GOAL = slice(18, 21)
STATE_DIM = 21

# Door random range (both door tasks) and drawer random range (both drawer tasks), the release's.
DOOR_LOW = np.array([-0.1, 0.85, 0.15])
DOOR_HIGH = np.array([0.0, 0.95, 0.15])
DRAWER_LOW = np.array([0.3, 0.9, 0.0])
DRAWER_HIGH = np.array([0.4, 0.9, 0.0])
# Offset from the drawer link's origin to the handle position the observation reports
# (Meta-World's drawer-open convention); both drawer tasks score this position.
DRAWER_HANDLE_OFFSET = np.array([0.0, -0.16, 0.0])
# Lowest hand x of the observation space: Meta-World's -0.525 widened to hold door-close's
# initial hand (x = -0.6) with the same 0.025 margin Meta-World keeps around its hand range.
HAND_SPACE_LOW = np.array([-0.625, 0.348, -0.0525])
HAND_SPACE_HIGH = np.array([0.525, 1.025, 0.7])
# Meta-World's goal bounds are [z - 1e-4, z + 1e-4] for constant goal heights; kept here.
GOAL_Z_TOLERANCE = 1e-4


_scene_paths: dict[int, str] = {}  # process id -> loadable copy of the scene


def scene_path() -> str:
    """Path of a loadable copy of the shared scene (written once per process).

    The scene includes Meta-World's asset files by paths relative to Meta-World's
    ``assets/sawyer_xyz`` directory (as Meta-World's own scenes do), so the copy sits in a
    temporary directory next to links to the installed ``scene``, ``objects`` and
    ``textures`` directories. The copy is keyed by process id, and only the process that
    wrote it removes it at exit, so a forked child neither reuses nor deletes its parent's.
    """
    path = _scene_paths.get(os.getpid())
    if path is None or not os.path.exists(path):
        path = _write_scene()
        _scene_paths[os.getpid()] = path
    return path


def _write_scene() -> str:
    root = tempfile.mkdtemp(prefix='metaworld_cds_')
    atexit.register(_remove_scene, root, os.getpid())
    for name in ('scene', 'objects', 'textures'):
        os.symlink(ENV_ASSET_DIR_V3 / name, os.path.join(root, name))
    os.mkdir(os.path.join(root, 'sawyer_xyz'))
    path = os.path.join(root, 'sawyer_xyz', 'door_drawer.xml')
    shutil.copyfile(SCENE_FILE, path)
    return path


def _remove_scene(root: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(root, ignore_errors=True)


def _goal_box(low: npt.ArrayLike, high: npt.ArrayLike) -> Box:
    """A goal space whose constant coordinates get Meta-World's small tolerance."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    flat = low == high
    return Box(
        np.where(flat, low - GOAL_Z_TOLERANCE, low),
        np.where(flat, high + GOAL_Z_TOLERANCE, high),
        dtype=np.float64,
    )


class _DoorDrawerScene(SawyerXYZEnv):
    """What the four tasks share: the scene, the 21-d observation, and the reset.

    Subclasses list this class before their Meta-World task class, so these overrides win
    while Meta-World's ``reset_model``, ``compute_reward`` and ``evaluate_state`` stay in use.
    Each subclass sets its initial hand position, object range and goal space after Meta-World's
    constructor, and says (``_reward_observation``) which object its reward reads.
    """

    HAND_INIT: ClassVar[npt.NDArray[np.float64]]
    OBJECT_INIT: ClassVar[npt.NDArray[np.float64]]
    OBJECT_LOW: ClassVar[npt.NDArray[np.float64]]
    OBJECT_HIGH: ClassVar[npt.NDArray[np.float64]]
    GOAL_OFFSET: ClassVar[npt.NDArray[np.float64]]

    def __init__(self, render_mode: RenderMode | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.hand_init_pos = self.HAND_INIT.copy()
        self.init_config: InitConfigDict = {
            'obj_init_angle': self.init_config['obj_init_angle'],
            'obj_init_pos': self.OBJECT_INIT.copy(),
            'hand_init_pos': self.HAND_INIT.copy(),
        }
        self.obj_init_pos = self.init_config['obj_init_pos']
        self._random_reset_space = Box(self.OBJECT_LOW, self.OBJECT_HIGH, dtype=np.float64)
        self.goal_space = _goal_box(
            self.OBJECT_LOW + self.GOAL_OFFSET, self.OBJECT_HIGH + self.GOAL_OFFSET
        )
        self.drawer_qpos_adr: int = self.model.joint('goal_slidey').qposadr.item()
        self.drawer_qvel_adr: int = self.model.joint('goal_slidey').dofadr.item()
        self.door_qpos_adr: int = self.model.joint('doorjoint').qposadr.item()
        self.door_qvel_adr: int = self.model.joint('doorjoint').dofadr.item()

    @property
    def model_name(self) -> str:
        return scene_path()

    def drawer_entries(self) -> npt.NDArray[np.float64]:
        """Drawer handle position (Meta-World's drawer-open reading) and link quaternion."""
        position = self.data.body('drawer_link').xpos + DRAWER_HANDLE_OFFSET
        return np.hstack((position, self.data.body('drawer_link').xquat))

    def door_entries(self) -> npt.NDArray[np.float64]:
        """Door handle position and quaternion, as Meta-World's door tasks read them."""
        handle = self.data.geom('handle')
        quaternion = Rotation.from_matrix(handle.xmat.reshape(3, 3)).as_quat()
        return np.hstack((handle.xpos, quaternion))

    def _get_curr_obs_combined_no_goal(self) -> npt.NDArray[np.float64]:
        """Hand, gripper opening, drawer and door entries: 18 dims.

        Hand and gripper are computed as Meta-World computes them (the finger distance over
        its 0.1 maximum, clipped to [0, 1]).
        """
        finger_distance = np.linalg.norm(
            self.data.body('rightclaw').xpos - self.data.body('leftclaw').xpos
        )
        gripper = np.clip(finger_distance / 0.1, 0.0, 1.0)
        return np.hstack(
            (self.get_endeff_pos(), gripper, self.drawer_entries(), self.door_entries())
        )

    def _get_obs(self) -> npt.NDArray[np.float64]:
        """The current frame and the goal, without Meta-World's frame stacking (21 dims)."""
        goal = self._get_pos_goal()
        if self._partially_observable:
            goal = np.zeros_like(goal)
        return np.hstack((self._get_curr_obs_combined_no_goal(), goal))

    @cached_property
    def sawyer_observation_space(self) -> Box:
        """Bounds of the 21-d observation (Meta-World clips step observations to them).

        A cached property as in Meta-World, whose ``set_task`` deletes it when the goal's
        visibility changes.
        """
        goal_low: np.ndarray
        goal_high: np.ndarray
        if self._partially_observable:
            goal_low, goal_high = np.zeros(3), np.zeros(3)
        else:
            assert self.goal_space is not None, 'the goal space must be set first'
            goal_low, goal_high = self.goal_space.low, self.goal_space.high
        objects = np.full(14, np.inf)
        return Box(
            np.hstack((HAND_SPACE_LOW, -1.0, -objects, goal_low)),
            np.hstack((HAND_SPACE_HIGH, 1.0, objects, goal_high)),
            dtype=np.float64,
        )

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float64], dict]:
        """Meta-World's reset without the frame stacking that assumes its 39-d layout.

        ``MujocoEnv.reset`` restores the initial state (both objects closed, so the object
        of the other tasks is always back in place) and runs the task's ``reset_model``. The
        seed only seeds ``np_random`` (Gymnasium's contract), which these tasks never draw
        from: the object position comes from the goal variation that was set.

        The observation is read after ``mj_forward``: Meta-World's drawer-open moves the
        drawer body after its last simulation step and reads the stale kinematics, so its
        first observation would report the previous episode's drawer position. The forward
        pass changes no state, so the dynamics are unchanged.
        """
        self.curr_path_length = 0
        _, info = MujocoEnv.reset(self, seed=seed, options=options)
        mujoco.mj_forward(self.model, self.data)
        return self._get_obs().astype(np.float64), info

    def _reward_observation(self, obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The observation as the Meta-World reward of this task expects it."""
        raise NotImplementedError

    def evaluate_state(
        self, obs: npt.NDArray[np.float64], action: npt.NDArray[np.float32]
    ) -> tuple[float, dict[str, Any]]:
        """Meta-World's reward and success test, fed with this task's object at slots 4:11."""
        return super().evaluate_state(self._reward_observation(obs), action)


class _DoorTask(_DoorDrawerScene):
    """Door tasks: the reward reads the door entries, moved into the object slots."""

    OBJECT_INIT = np.array([0.0, 0.95, 0.15])
    OBJECT_LOW = DOOR_LOW
    OBJECT_HIGH = DOOR_HIGH

    def _reward_observation(self, obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        reward_obs = obs.copy()
        reward_obs[DRAWER] = obs[DOOR]
        return reward_obs


class _DrawerTask(_DoorDrawerScene):
    """Drawer tasks: the drawer entries already sit in the object slots.

    Both drawer tasks read the handle there as the observation reports it, drawer-close too
    (Meta-World's drawer-close would read it 0.05 higher): the release's success rule, see the
    module docstring.
    """

    OBJECT_INIT = np.array([0.4, 0.9, 0.0])
    OBJECT_LOW = DRAWER_LOW
    OBJECT_HIGH = DRAWER_HIGH

    def _reward_observation(self, obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return obs

    def _set_obj_xyz(self, pos: npt.NDArray[Any]) -> None:
        """Sets the drawer joint (Meta-World's drawer-close hard-codes its qpos index)."""
        qpos = self.data.qpos.copy()
        qvel = self.data.qvel.copy()
        qpos[self.drawer_qpos_adr] = pos
        qvel[self.drawer_qvel_adr] = 0
        self.set_state(qpos, qvel)


# The ignores on the four task classes: Meta-World's SawyerXYZEnv inherits the
# incompatible __getstate__/__setstate__ annotations of SawyerMocapBase and EzPickle,
# which mypy reports on every class that combines two SawyerXYZEnv subclasses.
class CDSDoorOpenEnv(_DoorTask, SawyerDoorEnvV3):  # type: ignore[misc]
    """``door-open``: Meta-World's door-open in the shared scene."""

    HAND_INIT = np.array([0.0, 0.6, 0.2])
    GOAL_OFFSET = np.array([-0.3, -0.45, 0.0])


class CDSDoorCloseEnv(_DoorTask, SawyerDoorCloseEnvV3):  # type: ignore[misc]
    """``door-close``: Meta-World's door-close in the shared scene (door starts open)."""

    HAND_INIT = np.array([-0.6, 0.6, 0.2])
    GOAL_OFFSET = np.array([0.2, -0.2, 0.0])


class CDSDrawerOpenEnv(_DrawerTask, SawyerDrawerOpenEnvV3):  # type: ignore[misc]
    """``drawer-open``: Meta-World's drawer-open in the shared scene."""

    HAND_INIT = np.array([0.0, 0.6, 0.2])
    GOAL_OFFSET = np.array([0.0, -0.36, 0.09])


class CDSDrawerCloseEnv(_DrawerTask, SawyerDrawerCloseEnvV3):  # type: ignore[misc]
    """``drawer-close``: Meta-World's drawer-close in the shared scene (drawer starts open)."""

    HAND_INIT = np.array([0.0, 0.6, 0.2])
    GOAL_OFFSET = np.array([0.0, -0.16, 0.09])


TASK_CLASSES: dict[str, type[_DoorDrawerScene]] = {
    'door-open': CDSDoorOpenEnv,
    'door-close': CDSDoorCloseEnv,
    'drawer-open': CDSDrawerOpenEnv,
    'drawer-close': CDSDrawerCloseEnv,
}


def goal_variations(
    task_name: str, seed: int, n_variations: int = N_GOAL_VARIATIONS
) -> tuple[Task, ...]:
    """The task's goal variations: object positions drawn uniformly from its random range.

    They are Meta-World ``Task`` objects (goal visible), so ``set_task`` applies them the way
    it applies a benchmark's; the draw is seeded by ``(seed, task index)``.
    """
    env_cls = TASK_CLASSES[task_name]
    rng = np.random.default_rng([seed, TASK_NAMES.index(task_name)])
    positions = rng.uniform(
        env_cls.OBJECT_LOW, env_cls.OBJECT_HIGH, size=(n_variations, len(env_cls.OBJECT_LOW))
    )
    return tuple(
        Task(
            env_name=task_name,
            data=pickle.dumps(
                {'env_cls': env_cls, 'rand_vec': position, 'partially_observable': False}
            ),
        )
        for position in positions
    )


def make_cds_env(task_name: str, tasks: tuple[Task, ...], seed: int | None) -> GoalVariationWrapper:
    """Module-level factory of one task's Gymnasium environment (picklable through a partial).

    Args:
        task_name: one of ``TASK_NAMES``.
        tasks: its goal variations (from ``goal_variations``).
        seed: seed of the order in which the goal variations are visited.
    """
    return GoalVariationWrapper(TASK_CLASSES[task_name](render_mode=RENDER_MODE), tasks, seed)


class MetaWorldCDS(GymnasiumTaskFamily):
    """``MetaWorldCDS-v1`` as a ``MultiTaskEnv``; environments are built on first use.

    Args:
        seed: seed of the training goal variations; evaluation environments draw theirs with
            ``seed + 100`` (as in the release), and each environment's goal order is seeded by
            ``seed + task_id`` (plus 100 for evaluation).
        include_task_id: keep the task one-hot in the network input.
    """

    ENV_ID = ENV_ID
    SPLIT_MODE = 'zero'

    def __init__(self, seed: int = 0, include_task_id: bool = False) -> None:
        super().__init__(TASK_NAMES, seed, include_task_id, min_reward=0.0)

    def task_factory(self, task_id: int, split: str, seed: int) -> functools.partial[Any]:
        offset = TEST_SEED_OFFSET if split == 'test' else 0  # the test goal set's seed
        name = self.task_names[task_id]
        tasks = goal_variations(name, self._seed + offset)
        return functools.partial(make_cds_env, name, tasks, seed)
