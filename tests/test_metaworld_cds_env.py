"""Tests of ``MetaWorldCDS-v1`` (``environments/metaworld_cds.py``).

The family (4 train and 4 test environments, about 2 s) is built once for the module. Run as a
script to print steps/s through the adapter.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import mujoco
import numpy as np
import pytest
import torch
from garage import StepType
from gymnasium.utils.env_checker import check_env
from metaworld.envs.sawyer_door_close_v3 import SawyerDoorCloseEnvV3
from metaworld.envs.sawyer_door_v3 import SawyerDoorEnvV3
from metaworld.envs.sawyer_drawer_close_v3 import SawyerDrawerCloseEnvV3
from metaworld.envs.sawyer_drawer_open_v3 import SawyerDrawerOpenEnvV3
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.types import Task

from conftest import render_offscreen, steps_per_second
from environments.metaworld_cds import (
    DOOR,
    DOOR_HIGH,
    DOOR_LOW,
    DOOR_POS,
    DRAWER,
    DRAWER_HANDLE_OFFSET,
    DRAWER_HIGH,
    DRAWER_LOW,
    DRAWER_POS,
    GOAL,
    N_GOAL_VARIATIONS,
    STATE_DIM,
    TASK_CLASSES,
    TASK_NAMES,
    MetaWorldCDS,
    goal_variations,
    make_cds_env,
    scene_path,
)
from environments.multitask import TaskOneHotWrapper

N_TASKS = 4
OBS_DIM = STATE_DIM + N_TASKS
DOOR_JOINT, DRAWER_JOINT = 'doorjoint', 'goal_slidey'
# Fully open: the door at -90 degrees; the drawer pulled against its -0.16 joint limit, which
# its soft constraint lets it pass by about 5e-4 (the handle is then within 0.03 of the goal).
DOOR_OPEN, DRAWER_OPEN = -np.pi / 2, -0.1605
# The release: initial hand, the task's object (body, joint, initial joint value, range), goal
# offset from the object's position.
HAND_INIT = {
    'door-open': (0.0, 0.6, 0.2),
    'door-close': (-0.6, 0.6, 0.2),
    'drawer-open': (0.0, 0.6, 0.2),
    'drawer-close': (0.0, 0.6, 0.2),
}
OBJECT = {
    'door-open': ('door', DOOR_JOINT, 0.0, DOOR_LOW, DOOR_HIGH),
    'door-close': ('door', DOOR_JOINT, -1.5708, DOOR_LOW, DOOR_HIGH),  # Meta-World's value
    'drawer-open': ('drawer', DRAWER_JOINT, 0.0, DRAWER_LOW, DRAWER_HIGH),
    'drawer-close': ('drawer', DRAWER_JOINT, -0.15, DRAWER_LOW, DRAWER_HIGH),
}
GOAL_OFFSET = {
    'door-open': (-0.3, -0.45, 0.0),
    'door-close': (0.2, -0.2, 0.0),
    'drawer-open': (0.0, -0.36, 0.09),
    'drawer-close': (0.0, -0.16, 0.09),
}
# Where the object a task does not use stays (the scene's defaults, the release's placements),
# always closed.
DEFAULT_POSITION = {'door': (-0.1, 0.9, 0.15), 'drawer': (0.4, 0.9, 0.0)}
ZERO_ACTION = np.zeros(4, dtype=np.float32)
METAWORLD_CLASSES = {
    'door-open': SawyerDoorEnvV3,
    'door-close': SawyerDoorCloseEnvV3,
    'drawer-open': SawyerDrawerOpenEnvV3,
    'drawer-close': SawyerDrawerCloseEnvV3,
}


@pytest.fixture(scope='module')
def family() -> Iterator[MetaWorldCDS]:
    env = MetaWorldCDS(seed=0)
    env.get_train_envs()
    env.get_test_envs()
    yield env
    env.close()


def set_joint(task_env: TaskOneHotWrapper, joint: str, value: float) -> None:
    """Puts a joint of the scene at ``value`` (at rest) and recomputes the kinematics."""
    sim = task_env.gymnasium_env.unwrapped
    sim.data.joint(joint).qpos = value
    sim.data.joint(joint).qvel = 0.0
    mujoco.mj_forward(sim.model, sim.data)


@pytest.mark.mujoco
def test_family_facts_one_hot_and_split(family: MetaWorldCDS) -> None:
    assert family.env_id == 'MetaWorldCDS-v1'
    assert family.n_tasks == N_TASKS
    assert family.task_names == ('door-open', 'door-close', 'drawer-open', 'drawer-close')
    assert family.observation_dim == OBS_DIM == 25
    assert family.network_input_dim == 25
    assert family.action_dim == 4
    assert family.max_episode_length == 500
    assert family.split_mode == 'zero' and family.min_reward == 0.0
    assert family.spec.observation_space.dtype == np.float32
    np.testing.assert_array_equal(family.spec.action_space.low, -np.ones(4))
    np.testing.assert_array_equal(family.spec.action_space.high, np.ones(4))

    observations = []
    for task_id, (train_env, test_env) in enumerate(
        zip(family.get_train_envs(), family.get_test_envs(), strict=True)
    ):
        assert train_env is not test_env and train_env.task_name == TASK_NAMES[task_id]
        expected = np.eye(N_TASKS, dtype=np.float32)[task_id]
        for env in (train_env, test_env):
            observation, _ = env.reset()
            assert observation.shape == (OBS_DIM,) and observation.dtype == np.float32
            assert env.observation_space.contains(observation)
            np.testing.assert_array_equal(observation[STATE_DIM:], expected)
            env_step = env.step(env.action_space.sample())
            np.testing.assert_array_equal(env_step.observation[STATE_DIM:], expected)
            assert env.observation_space.contains(env_step.observation)
            assert env_step.env_info['task_id'] == task_id
            assert env_step.env_info['success'] in (0.0, 1.0)
        observations.append(observation)

    observations = np.stack(observations)
    states, task_ids = family.split_observation(observations)
    np.testing.assert_array_equal(task_ids, np.arange(N_TASKS))
    assert states.shape == (N_TASKS, OBS_DIM)
    np.testing.assert_array_equal(states[:, STATE_DIM:], 0.0)
    np.testing.assert_array_equal(states[:, :STATE_DIM], observations[:, :STATE_DIM])
    torch_states, torch_ids = family.split_observation(torch.as_tensor(observations))
    np.testing.assert_array_equal(torch_states.numpy(), states)
    np.testing.assert_array_equal(torch_ids.numpy(), np.arange(N_TASKS))
    kept, _ = MetaWorldCDS(include_task_id=True).split_observation(observations)
    np.testing.assert_array_equal(kept, observations)


@pytest.mark.mujoco
def test_scene_holds_both_objects_and_the_observation_tracks_them(family: MetaWorldCDS) -> None:
    for env in family.get_train_envs():
        sim = env.gymnasium_env.unwrapped
        for name in ('door', 'drawer', 'door_link', 'drawer_link'):
            sim.model.body(name)  # raises KeyError if missing
        observation, _ = env.reset()
        drawer_before = sim.data.joint(DRAWER_JOINT).qpos.item()
        set_joint(env, DOOR_JOINT, -0.5)
        set_joint(env, DRAWER_JOINT, -0.1)
        moved = env.step(ZERO_ACTION).observation
        # Hand and gripper as Meta-World computes them; the object entries are the handle
        # positions MuJoCo reports, with their orientations.
        np.testing.assert_allclose(
            moved[:4], SawyerXYZEnv._get_curr_obs_combined_no_goal(sim)[:4], atol=1e-6
        )
        np.testing.assert_allclose(moved[DOOR_POS], sim.data.geom('handle').xpos, atol=1e-6)
        np.testing.assert_allclose(
            moved[DRAWER_POS], sim.data.body('drawer_link').xpos + DRAWER_HANDLE_OFFSET, atol=1e-6
        )
        np.testing.assert_allclose(
            moved[DRAWER.stop - 4 : DRAWER.stop], sim.data.body('drawer_link').xquat, atol=1e-6
        )
        assert abs(np.linalg.norm(moved[DOOR.stop - 4 : DOOR.stop]) - 1.0) < 1e-6
        # Both objects moved in the observation, whatever the task.
        assert np.linalg.norm(moved[DOOR] - observation[DOOR]) > 0.05, env.task_name
        np.testing.assert_allclose(
            moved[DRAWER_POS] - observation[DRAWER_POS], [0.0, -0.1 - drawer_before, 0.0], atol=2e-3
        )


@pytest.mark.mujoco
def test_initial_positions(family: MetaWorldCDS) -> None:
    for env in family.get_train_envs():
        name = env.task_name
        sim = env.gymnasium_env.unwrapped
        body, joint, initial_value, low, high = OBJECT[name]
        other_body, other_joint = (
            ('drawer', DRAWER_JOINT) if body == 'door' else ('door', DOOR_JOINT)
        )
        for _ in range(3):
            observation, _ = env.reset()
            position = sim.model.body(body).pos
            assert np.all(position >= low - 1e-9) and np.all(position <= high + 1e-9), name
            assert sim.data.joint(joint).qpos.item() == pytest.approx(initial_value)
            np.testing.assert_allclose(sim.model.body(other_body).pos, DEFAULT_POSITION[other_body])
            assert sim.data.joint(other_joint).qpos.item() == pytest.approx(0.0, abs=1e-9)
            np.testing.assert_allclose(observation[:3], HAND_INIT[name], atol=0.02)
            np.testing.assert_allclose(observation[GOAL], position + GOAL_OFFSET[name], atol=1e-6)


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', range(N_TASKS))
def test_success_tests(family: MetaWorldCDS, task_id: int) -> None:
    """The task's goal state succeeds (with Meta-World's 10 where it overrides the reward);
    the opposite task's goal state does not."""
    env = family.get_train_envs()[task_id]
    name = env.task_name
    joint = DOOR_JOINT if name.startswith('door') else DRAWER_JOINT
    opened = DOOR_OPEN if joint == DOOR_JOINT else DRAWER_OPEN
    goal_state, other_state = (opened, 0.0) if name.endswith('open') else (0.0, opened)
    results = {}
    for state in (goal_state, other_state):
        env.reset()
        set_joint(env, joint, state)
        env_step = env.step(ZERO_ACTION)
        results[state] = (env_step.env_info['success'], env_step.reward)
    assert results[goal_state][0] == 1.0 and results[other_state][0] == 0.0, results
    if name != 'drawer-open':  # Meta-World's drawer-open does not override its reward
        assert results[goal_state][1] == 10.0


@pytest.mark.mujoco
def test_rewards_read_the_task_object(family: MetaWorldCDS) -> None:
    """Door rewards read the door entries (moved into the slots Meta-World's door rewards
    read), drawer rewards the drawer entries; the other object does not matter."""
    action = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)  # drawer-close's reach needs it
    for env in family.get_train_envs():
        sim = env.gymnasium_env.unwrapped
        env.reset()
        env.step(action)
        observation = sim._last_stable_obs.copy()
        own, other = (
            (DOOR_POS, DRAWER_POS) if env.task_name.startswith('door') else (DRAWER_POS, DOOR_POS)
        )
        reward = sim.evaluate_state(observation, action)[0]
        for entries, changes in ((own, True), (other, False)):
            shifted = observation.copy()
            shifted[entries] += np.array([0.05, -0.05, 0.02])
            assert (sim.evaluate_state(shifted, action)[0] != reward) == changes, env.task_name


@pytest.mark.mujoco
@pytest.mark.parametrize('task_name', TASK_NAMES)
def test_each_task_matches_metaworlds_own_task(task_name: str) -> None:
    """In the shared scene, with the same object position, initial hand and actions, every
    task steps as Meta-World's own single-object task: same object trajectory, goal, rewards
    and success (the other object never interferes). Drawer-close's reward and success are the
    release's, which read the handle 0.05 lower than Meta-World's (tested below)."""
    position = pickle.loads(goal_variations(task_name, 0)[0].data)['rand_vec']
    shared = TASK_CLASSES[task_name]()
    original = METAWORLD_CLASSES[task_name]()
    for env in (shared, original):
        env.set_task(
            Task(
                task_name,
                pickle.dumps(
                    {'env_cls': type(env), 'rand_vec': position, 'partially_observable': False}
                ),
            )
        )
    original.hand_init_pos = shared.hand_init_pos.copy()  # door-close's differs (as in the release)
    shared.reset()
    original.reset()
    own = DOOR_POS if task_name.startswith('door') else DRAWER_POS
    # Meta-World's drawer-close reads the handle 0.05 higher than the shared observation.
    read_offset = np.array([0.0, 0.0, 0.05 if task_name == 'drawer-close' else 0.0])
    rng = np.random.default_rng(0)
    for _ in range(150):
        action = rng.uniform(-1.0, 1.0, 4).astype(np.float32)
        shared_obs, shared_reward, _, _, shared_info = shared.step(action)
        original_obs, original_reward, _, _, original_info = original.step(action)
        np.testing.assert_allclose(shared_obs[own] + read_offset, original_obs[4:7], atol=1e-9)
        np.testing.assert_allclose(shared_obs[GOAL], original._target_pos, atol=1e-9)
        if task_name != 'drawer-close':
            assert shared_reward == pytest.approx(original_reward, abs=1e-9)
            assert shared_info['success'] == original_info['success']
    shared.close()
    original.close()


@pytest.mark.mujoco
@pytest.mark.parametrize('opening, success, distance', [(0.04, 1.0, 0.05), (0.07, 0.0, 0.08)])
def test_drawer_close_scores_the_observed_handle(
    family: MetaWorldCDS, opening: float, success: float, distance: float
) -> None:
    """The release's drawer-close rule: the handle as observed (drawer link + (0, -0.16, 0))
    within 0.065 of the target drawer + (0, -0.16, 0.09). Closed, the handle sits 0.01 short of
    the target at its height, so the distance is opening + 0.01: 4 cm open succeeds (0.05; with
    Meta-World's +0.05 height it would be 0.071 and fail), 7 cm open fails (0.08)."""
    env = family.get_train_envs()[TASK_NAMES.index('drawer-close')]
    sim = env.gymnasium_env.unwrapped
    env.reset()
    set_joint(env, DRAWER_JOINT, -opening)
    env_step = env.step(ZERO_ACTION)
    drawer = sim.model.body('drawer').pos
    np.testing.assert_allclose(env_step.observation[GOAL], drawer + (0.0, -0.16, 0.09), atol=1e-6)
    np.testing.assert_allclose(
        env_step.observation[DRAWER_POS], drawer + (0.0, -0.17 - opening, 0.09), atol=1e-3
    )
    assert env_step.env_info['obj_to_target'] == pytest.approx(distance, abs=1e-3)
    assert env_step.env_info['success'] == success
    if success:
        assert env_step.reward == 10.0
    else:
        assert env_step.reward < 10.0


@pytest.mark.mujoco
def test_scene_layout_is_the_releases() -> None:
    """Drawer at (0.4, 0.9, 0), listed first (its joint precedes the door's in the state), door
    at (-0.1, 0.9, 0.15); within the tasks' ranges the two objects stay apart."""
    model = mujoco.MjModel.from_xml_path(scene_path())
    data = mujoco.MjData(model)
    np.testing.assert_allclose(model.body('drawer').pos, DEFAULT_POSITION['drawer'])
    np.testing.assert_allclose(model.body('door').pos, DEFAULT_POSITION['door'])
    assert model.body('drawer').id < model.body('door').id
    assert model.joint(DRAWER_JOINT).qposadr < model.joint(DOOR_JOINT).qposadr

    def subtree_geoms(root: str) -> list[int]:
        root_id = model.body(root).id
        return [
            geom
            for geom in range(model.ngeom)
            if root_id in _ancestors(model, model.geom_bodyid[geom])
        ]

    door_geoms, drawer_geoms = subtree_geoms('door'), subtree_geoms('drawer')
    assert door_geoms and drawer_geoms

    def gap(door: tuple, door_angle: float, drawer: tuple, drawer_slide: float) -> float:
        model.body('door').pos, model.body('drawer').pos = door, drawer
        data.joint(DOOR_JOINT).qpos, data.joint(DRAWER_JOINT).qpos = door_angle, drawer_slide
        mujoco.mj_forward(model, data)
        return min(
            mujoco.mj_geomDistance(model, data, a, b, 0.5, None)
            for a in door_geoms
            for b in drawer_geoms
        )

    # Drawer tasks: the drawer anywhere in its range, closed to fully open, beside the door.
    drawer_gaps = [
        gap(DEFAULT_POSITION['door'], 0.0, (x, 0.9, 0.0), slide)
        for x in (0.3, 0.35, 0.4)
        for slide in (0.0, DRAWER_OPEN)
    ]
    # Door tasks: the door at the corners of its range, closed to past open, beside the drawer.
    door_gaps = [
        gap((x, y, 0.15), angle, DEFAULT_POSITION['drawer'], 0.0)
        for x in (-0.1, 0.0)
        for y in (0.85, 0.95)
        for angle in (0.0, -1.0, -2.0)
    ]
    assert min(drawer_gaps) > 0.02 and min(door_gaps) > 0.02, (drawer_gaps, door_gaps)


def _ancestors(model: mujoco.MjModel, body: int) -> set[int]:
    """The body and every body above it, up to the world."""
    chain = {body}
    while body != 0:
        body = model.body_parentid[body]
        chain.add(body)
    return chain


@pytest.mark.mujoco
def test_rewards_and_horizon(family: MetaWorldCDS) -> None:
    for env in family.get_train_envs():
        env.reset()
        step_types, rewards = [], []
        for _ in range(500):
            env_step = env.step(env.action_space.sample())
            step_types.append(env_step.step_type)
            rewards.append(env_step.reward)
        assert 0.0 <= min(rewards) and max(rewards) <= 10.0, env.task_name
        assert max(rewards) > 0.0
        assert step_types[0] == StepType.FIRST and step_types[-1] == StepType.TIMEOUT
        assert set(step_types[1:-1]) == {StepType.MID}
        with pytest.raises(RuntimeError):
            env.step(ZERO_ACTION)
    env.reset()  # the next episode starts normally
    assert env.step(ZERO_ACTION).step_type == StepType.FIRST


@pytest.mark.mujoco
def test_goal_variations(family: MetaWorldCDS) -> None:
    for name in TASK_NAMES:
        tasks = goal_variations(name, 0)
        assert len(tasks) == N_GOAL_VARIATIONS and all(t.env_name == name for t in tasks)
        assert [t.data for t in goal_variations(name, 0)] == [t.data for t in tasks]
        positions = np.stack([pickle.loads(t.data)['rand_vec'] for t in tasks])
        _, _, _, low, high = OBJECT[name]
        assert np.all(positions >= low) and np.all(positions <= high)
        assert len(np.unique(positions[:, 0])) == N_GOAL_VARIATIONS
        assert pickle.loads(tasks[0].data)['env_cls'] is TASK_CLASSES[name]
    for train_env, test_env in zip(family.get_train_envs(), family.get_test_envs(), strict=True):
        train_goals = np.stack([train_env.reset()[0][GOAL] for _ in range(4)])
        test_goals = np.stack([test_env.reset()[0][GOAL] for _ in range(4)])
        assert np.all(np.linalg.norm(np.diff(train_goals, axis=0), axis=-1) > 1e-6)
        distances = np.linalg.norm(train_goals[:, None] - test_goals[None], axis=-1)
        assert distances.min() > 1e-6, train_env.task_name


@pytest.mark.mujoco
def test_pickled_env_is_small_and_steps(family: MetaWorldCDS) -> None:
    env = family.get_train_envs()[3]
    data = pickle.dumps(env)
    assert len(data) < 50_000
    clone = pickle.loads(data)
    assert isinstance(clone, TaskOneHotWrapper) and clone.task_id == 3
    observation, _ = clone.reset()
    assert observation.shape == (OBS_DIM,)
    env_step = clone.step(clone.action_space.sample())
    assert env_step.env_info['task_id'] == 3
    assert clone.observation_space.contains(env_step.observation)
    clone.close()


@pytest.mark.mujoco
# The object entries are unbounded (as in Meta-World), which the checker flags.
@pytest.mark.filterwarnings(
    'ignore:.*A Box observation space (minimum|maximum) value is -?infinity:UserWarning'
)
# Meta-World's SawyerXYZEnv still defines the legacy ``seed()`` method, which the checker flags.
@pytest.mark.filterwarnings(
    'ignore:.*Official support for the `seed` function is dropped:UserWarning'
)
def test_gymnasium_env_checker() -> None:
    """Checked on the task environment itself, with a goal variation set, as Gymnasium
    recommends (the goal-variation wrapper changes the goal on every reset by design)."""
    wrapper = make_cds_env('door-close', goal_variations('door-close', 0), seed=0)
    check_env(wrapper.unwrapped, skip_render_check=True)
    wrapper.close()


@pytest.mark.mujoco
def test_offscreen_rendering() -> None:
    frame = render_offscreen(
        'from environments.metaworld_cds import goal_variations, '
        'make_cds_env\n'
        "env = make_cds_env('drawer-open', "
        "goal_variations('drawer-open', 0), 0)"
    )
    assert frame['shape'] == [480, 480, 3] and frame['dtype'] == 'uint8'
    assert frame['std'] > 0.0  # a picture, not a blank frame


if __name__ == '__main__':
    cds = MetaWorldCDS(seed=0)
    for task_name, task_env in zip(TASK_NAMES, cds.get_train_envs(), strict=True):
        print(f'{task_name}: {steps_per_second(task_env):.0f} steps/s through the adapter')
    cds.close()
