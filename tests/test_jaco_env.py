"""Tests of the ``JacoReachMT5-v1`` family (``environments/jaco.py``).

Rewards are recomputed by hand from the post-step simulator state. Subgoals are reached by a
joint-space PD controller with gravity compensation towards a pose from a small numerical
inverse kinematics (``mujoco.mj_jac``) or, where gravity is too strong for the motors to hold
the goal itself, towards the closest pose they can hold (SLSQP); the stage logic alone is
tested by setting the arm to the goal before a step. Run as a script to print steps/s of one
task env through the adapter.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Iterator

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import mujoco
import numpy as np
import pytest
import scipy.optimize
import torch
from garage import EnvStep, StepType
from gymnasium.utils.env_checker import check_env

from conftest import render_offscreen, steps_per_second
from environments.jaco import (
    HAND,
    MAX_EPISODE_LENGTH,
    MODEL_PATH,
    QPOS,
    QVEL,
    STAGE,
    SUBGOALS,
    TASK_NAMES,
    JacoObservationSplitter,
    JacoReachMT5,
    JacoReachTaskEnv,
    JacoTaskReward,
)
from environments.multitask import TaskOneHotWrapper

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTION = np.array([0.5, -0.3, 0.2, -0.8, 0.1, 0.9])
GEARS = np.array([5.0, 10.0, 10.0, 10.0, 10.0, 10.0])
N_TASKS = 5
STAY = 4
# Joint-space PD gains: stiff shoulder and elbow, soft wrist (its inertia is ~0.01 kg m^2).
PD_GAINS = np.array([20.0, 50.0, 30.0, 3.0, 3.0, 3.0])
PD_DAMPING = np.array([2.0, 5.0, 3.0, 0.05, 0.05, 0.05])


@pytest.fixture(scope='module')
def family() -> Iterator[JacoReachMT5]:
    env = JacoReachMT5(seed=0)
    env.get_train_envs()
    env.get_test_envs()
    yield env
    env.close()


def _inverse_kinematics(
    jaco: JacoReachTaskEnv, goal: np.ndarray, required: bool = True
) -> np.ndarray | None:
    """Joint positions (within the joint ranges) that put the hand body at ``goal``.

    Damped least squares on ``mujoco.mj_jac`` in a scratch ``MjData``, from the initial pose
    clipped into the ranges, then from seeded random poses if the ranges stop it; the env's own
    state is not touched.
    """
    model = jaco.model
    data = mujoco.MjData(model)
    hand = model.body('jaco_link_hand').id
    low, high = model.jnt_range[:, 0], model.jnt_range[:, 1]
    jacp = np.zeros((3, model.nv))
    rng = np.random.default_rng(0)
    for start in range(20):
        qpos = np.clip(model.qpos0, low, high) if start == 0 else rng.uniform(low, high)
        for _ in range(200):
            data.qpos[:] = qpos
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            error = goal - data.xpos[hand]
            if np.linalg.norm(error) < 1e-6:
                return qpos
            mujoco.mj_jac(model, data, jacp, None, data.xpos[hand], hand)
            step = jacp.T @ np.linalg.solve(jacp @ jacp.T + 1e-4 * np.eye(3), error)
            qpos = np.clip(qpos + step, low, high)
    assert not required, f'no IK solution for {goal}'
    return None


def _hold_at(jaco: JacoReachTaskEnv, qpos: np.ndarray) -> np.ndarray:
    """Puts the arm at rest at ``qpos``; returns the action that best cancels gravity there."""
    jaco.set_state(qpos, np.zeros(jaco.model.nv))
    return np.clip(jaco.data.qfrc_bias / GEARS, -1.0, 1.0)


def _initial_hand_position() -> np.ndarray:
    """The hand at the model's noise-free initial pose (the stay task's ``reward_fn`` goal)."""
    model = mujoco.MjModel.from_xml_path(MODEL_PATH)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return data.body('jaco_link_hand').xpos.copy()


def _pd_action(jaco: JacoReachTaskEnv, pose: np.ndarray) -> np.ndarray:
    """PD control with gravity compensation towards the joint positions ``pose``."""
    data = jaco.data
    torque = PD_GAINS * (pose - data.qpos) - PD_DAMPING * data.qvel
    return np.clip((torque + data.qfrc_bias) / GEARS, -1.0, 1.0)


def _holdable_pose_near(
    jaco: JacoReachTaskEnv, goal: np.ndarray, max_load: float
) -> tuple[np.ndarray, float]:
    """The joint positions closest (hand to ``goal``) among those the motors can hold at rest.

    Holding at rest needs ``|bias force / gear| <= 1`` on every joint; ``max_load`` < 1 keeps a
    margin. SLSQP from the initial pose clipped into the joint ranges. Returns (pose, distance).
    """
    model = jaco.model
    data = mujoco.MjData(model)
    hand = model.body('jaco_link_hand').id

    def at_rest(qpos: np.ndarray) -> mujoco.MjData:
        data.qpos[:] = qpos
        data.qvel[:] = 0.0
        mujoco.mj_forward(model, data)
        return data

    result = scipy.optimize.minimize(
        lambda q: np.linalg.norm(at_rest(q).xpos[hand] - goal),
        np.clip(model.qpos0, model.jnt_range[:, 0], model.jnt_range[:, 1]),
        method='SLSQP',
        bounds=model.jnt_range.tolist(),
        constraints=[
            {'type': 'ineq', 'fun': lambda q: max_load - np.abs(at_rest(q).qfrc_bias / GEARS)}
        ],
    )
    assert result.success, result.message
    return result.x, float(result.fun)


def _drive_to(env: TaskOneHotWrapper, goal: np.ndarray, max_steps: int) -> tuple[int, EnvStep]:
    """PD control (with gravity compensation) towards an IK pose of ``goal``.

    Stops at the first success step, the end of the episode or after ``max_steps``; returns
    (steps taken, last step).
    """
    jaco = env.gymnasium_env
    target_qpos = _inverse_kinematics(jaco, goal)
    for step in range(1, max_steps + 1):  # noqa: B007  (returned after the loop)
        data = jaco.data
        torque = PD_GAINS * (target_qpos - data.qpos) - PD_DAMPING * data.qvel
        env_step = env.step(np.clip((torque + data.qfrc_bias) / GEARS, -1.0, 1.0))
        if env_step.env_info['success'] or env_step.last:
            break
    return step, env_step


def _expected_reward(
    task_id: int,
    jaco: JacoReachTaskEnv,
    action: np.ndarray,
    goal: np.ndarray,
    stage: int,
    success: bool,
) -> dict[str, float]:
    """The release's reward terms (``environments/jaco.py``) from the post-step simulator state."""
    data = jaco.data
    distance = np.linalg.norm(data.body('jaco_link_hand').xpos - goal)
    ctrl = (
        -0.01 * np.sum(action**2)
        - 0.001 * np.abs(data.qvel).mean()
        - 1e-5 * np.abs(data.qacc).mean()
    )
    dist = 0.0 if task_id == 3 else -distance
    if task_id == STAY:
        stage_term = 0.0
    elif task_id == 1:
        stage_term = 200.0 * success
    else:
        stage_term = -0.4 * max(3 - stage, 0)
    shift = -2.0 if task_id == 1 else 0.0
    return {
        'reward': dist + stage_term + ctrl + shift,
        'dist_reward': dist,
        'stage_reward': stage_term,
        'ctrl_reward': ctrl,
        'distance': distance,
    }


def _numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    return array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


@pytest.mark.mujoco
def test_family_facts(family: JacoReachMT5) -> None:
    assert family.env_id == 'JacoReachMT5-v1'
    assert family.task_names == TASK_NAMES and family.n_tasks == N_TASKS
    assert family.observation_dim == 23 and family.network_input_dim == 23
    assert JacoReachMT5(include_task_id=True).network_input_dim == 23
    assert family.action_dim == 6
    assert family.max_episode_length == MAX_EPISODE_LENGTH == 200
    assert family.split_mode == 'zero' and family.min_reward == -5.0
    keys = []
    for task_id, env in enumerate(family.get_train_envs()):
        assert env.task_id == task_id and env.task_name == TASK_NAMES[task_id]
        observation, _ = env.reset()
        assert observation.dtype == np.float32 and observation.shape == (23,)
        np.testing.assert_array_equal(observation[18:], np.eye(N_TASKS)[task_id])
        np.testing.assert_array_equal(observation[STAGE], [1.0, 0.0, 0.0])
        env_step = env.step(np.zeros(6))
        assert env_step.observation.dtype == np.float32
        assert env_step.env_info['task_id'] == task_id
        jaco = env.gymnasium_env
        data = jaco.data
        expected = np.concatenate(
            [data.qpos, data.qvel, [1.0, 0.0, 0.0], data.body('jaco_link_hand').xpos]
        ).astype(np.float32)
        np.testing.assert_array_equal(env_step.observation[:18], expected)
        assert env.observation_space.contains(env_step.observation)
        keys.append(set(env_step.env_info))
    assert keys[0] == {
        'stage_reward',
        'ctrl_reward',
        'dist_reward',
        'success',
        'stages_completed',
        'task_id',
    }
    assert all(k == keys[0] for k in keys), 'garage stacks infos of all tasks together'


@pytest.mark.mujoco
@pytest.mark.parametrize('include_task_id', [False, True])
@pytest.mark.parametrize('as_torch', [False, True])
def test_split_observation(include_task_id: bool, as_torch: bool) -> None:
    family = JacoReachMT5(include_task_id=include_task_id)
    splitter = family.split_observation
    assert isinstance(splitter, JacoObservationSplitter)
    assert pickle.loads(pickle.dumps(splitter)) == splitter
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(N_TASKS, 23)).astype(np.float32)
    batch[:, 18:] = np.eye(N_TASKS)[[3, 0, 4, 1, 2]]
    raw = torch.as_tensor(batch) if as_torch else batch
    original = raw.clone() if as_torch else raw.copy()
    for observations in (raw, raw[2]):
        states, task_ids = splitter(observations)
        assert type(states) is type(raw) and states.shape == observations.shape
        expected = _numpy(observations).copy()
        expected[..., HAND] = 0.0
        if not include_task_id:
            expected[..., 18:] = 0.0
        np.testing.assert_array_equal(_numpy(states), expected)
        np.testing.assert_array_equal(
            _numpy(task_ids), np.argmax(_numpy(observations)[..., 18:], axis=-1)
        )
    np.testing.assert_array_equal(_numpy(raw), _numpy(original))
    assert _numpy(splitter(raw)[1]).tolist() == [3, 0, 4, 1, 2]


@pytest.mark.mujoco
def test_model_facts(family: JacoReachMT5) -> None:
    for env in family.get_train_envs() + family.get_test_envs():
        jaco = env.gymnasium_env
        model = jaco.model
        assert model.opt.timestep == 0.01 and jaco.frame_skip == 4
        assert jaco.dt == pytest.approx(0.04)
        assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
        assert model.opt.iterations == 10
        assert model.nq == model.nv == model.nu == 6
        np.testing.assert_array_equal(model.actuator_gear[:, 0], GEARS)
        np.testing.assert_array_equal(model.actuator_ctrlrange, [[-1.0, 1.0]] * 6)
        assert model.actuator_ctrllimited.all()
        # Plain torque motors on the six arm joints, in order.
        assert (model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT).all()
        assert (model.actuator_dyntype == mujoco.mjtDyn.mjDYN_NONE).all()
        assert (model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED).all()
        assert (model.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE).all()
        np.testing.assert_array_equal(model.actuator_gainprm[:, 0], 1.0)
        joints = [model.joint(model.actuator_trnid[i, 0]).name for i in range(6)]
        assert joints == [f'jaco_joint_{i}' for i in range(1, 7)]
        assert (model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE).all()
        np.testing.assert_allclose(model.dof_damping, 0.5)
        np.testing.assert_allclose(model.dof_armature, 0.01)
        np.testing.assert_allclose(model.qpos0, [0, 0, 0, 0, -2.8, 0])
        target = model.body('target')
        assert target.mocapid[0] >= 0
        sphere = model.geom('target')
        assert sphere.size[0] == pytest.approx(0.049)
        assert sphere.contype[0] == 0 and sphere.conaffinity[0] == 0
        assert model.body('jaco_link_hand').id > 0
    # The release's arm cannot hold its initial pose: joint 2 needs more than its motor gives.
    jaco = family.get_train_envs()[0].gymnasium_env
    data = mujoco.MjData(jaco.model)
    mujoco.mj_forward(jaco.model, data)
    assert 1.0 < abs(data.qfrc_bias[1]) / GEARS[1] < 1.1


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', range(N_TASKS))
def test_reward_matches_the_formula(family: JacoReachMT5, task_id: int) -> None:
    env = family.get_train_envs()[task_id]
    jaco = env.gymnasium_env
    env.reset()
    goal = jaco.goal
    # The hand 0.1 from the first goal, in the first axis direction that the arm can reach.
    for offset in 0.1 * np.array([[0, 0, -1], [0, 0, 1], [-1, 0, 0], [1, 0, 0], [0, -1, 0]]):
        qpos = _inverse_kinematics(jaco, goal + offset, required=False)
        if qpos is not None:
            break
    assert qpos is not None
    jaco.set_state(qpos, np.array([0.3, -0.2, 0.1, 0.5, -0.4, 0.2]))
    assert np.linalg.norm(jaco.hand_position() - goal) == pytest.approx(0.1, abs=1e-4)
    env_step = env.step(ACTION)
    info = env_step.env_info
    expected = _expected_reward(task_id, jaco, ACTION, goal, 0, False)
    assert 0.05 < expected['distance'] < 0.15  # the hand stayed about where it was set
    assert env_step.reward == pytest.approx(expected['reward'], rel=1e-9, abs=1e-9)
    for key in ('dist_reward', 'stage_reward', 'ctrl_reward'):
        assert info[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12)
    assert info['success'] == 0.0 and info['stages_completed'] == 0.0
    assert env_step.step_type == StepType.FIRST
    data = jaco.data
    np.testing.assert_array_equal(env_step.observation[QPOS], data.qpos.astype(np.float32))
    np.testing.assert_array_equal(env_step.observation[QVEL], data.qvel.astype(np.float32))
    np.testing.assert_array_equal(
        env_step.observation[HAND], data.body('jaco_link_hand').xpos.astype(np.float32)
    )
    np.testing.assert_array_equal(data.mocap_pos[0], goal)

    # reward_fn: the same reward from the observation, minus the velocity/acceleration terms,
    # with the stay task's goal at the noise-free initial pose (the episode's is its reset pose).
    reward_goal = np.array(jaco.task_reward.goals[0])
    if task_id == STAY:
        np.testing.assert_allclose(reward_goal, _initial_hand_position(), atol=1e-12)
        assert 0.0 < np.linalg.norm(reward_goal - goal) < 0.01
        observed_distance = np.linalg.norm(env_step.observation[HAND] - reward_goal)
        action_only = -observed_distance - 0.01 * np.sum(ACTION**2)
    else:
        np.testing.assert_array_equal(reward_goal, goal)
        action_only = expected['reward'] - expected['ctrl_reward'] - 0.01 * np.sum(ACTION**2)
    for observation in (env_step.observation, env_step.observation[:18]):
        assert jaco.reward_fn(observation, ACTION) == pytest.approx(action_only, abs=1e-5)
    batch = np.stack([env_step.observation] * 3)
    rewards = family.reward_fns()[task_id](batch, np.stack([ACTION] * 3))
    assert rewards.shape == (3,)
    np.testing.assert_allclose(rewards, action_only, atol=1e-5)
    reward_fn = pickle.loads(pickle.dumps(family.reward_fns()[task_id]))
    assert isinstance(reward_fn, JacoTaskReward)
    assert reward_fn(torch.as_tensor(batch), torch.as_tensor(batch[:, :6])).shape == (3,)


@pytest.mark.mujoco
def test_pd_controller_reaches_s0_then_s1(family: JacoReachMT5) -> None:
    """Reachability: a PD controller to IK poses completes task 0's first two stages."""
    env = family.get_train_envs()[0]
    jaco = env.gymnasium_env
    env.reset()
    steps, env_step = _drive_to(env, np.array(SUBGOALS[0]), MAX_EPISODE_LENGTH)
    assert env_step.env_info['success'] == 1.0, 'the PD controller never reached S0'
    assert np.linalg.norm(jaco.hand_position() - np.array(SUBGOALS[0])) < 0.05
    assert env_step.env_info['stages_completed'] == 1.0 and jaco.stage == 1
    np.testing.assert_array_equal(jaco.goal, SUBGOALS[1])
    np.testing.assert_array_equal(jaco.data.mocap_pos[0], SUBGOALS[1])
    # The observation is read before the stage update: it still shows stage 0.
    np.testing.assert_array_equal(env_step.observation[STAGE], [1.0, 0.0, 0.0])
    assert env_step.step_type in (StepType.FIRST, StepType.MID)

    more_steps, env_step = _drive_to(env, np.array(SUBGOALS[1]), MAX_EPISODE_LENGTH - steps)
    assert env_step.env_info['success'] == 1.0, 'the PD controller never reached S1'
    assert env_step.env_info['stages_completed'] == 2.0 and jaco.stage == 2
    np.testing.assert_array_equal(env_step.observation[STAGE], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(jaco.data.mocap_pos[0], SUBGOALS[2])
    assert env_step.step_type == StepType.MID and steps + more_steps < 100


@pytest.mark.mujoco
def test_scripted_controller_completes_task_0(family: JacoReachMT5) -> None:
    """S2 cannot be held, but a scripted swing reaches it: task 0 can be completed in time."""
    env = family.get_train_envs()[0]
    jaco = env.gymnasium_env
    env.reset()
    poses = []
    for goal in SUBGOALS[:3]:
        pose, distance = _holdable_pose_near(jaco, np.array(goal), max_load=1.0)
        poses.append(pose)
    assert distance > 0.05  # no pose within S2's success radius can be held
    # From the holdable pose near S2, a short push along the Jacobian towards S2.
    data = mujoco.MjData(jaco.model)
    data.qpos[:] = poses[2]
    mujoco.mj_forward(jaco.model, data)
    hand = jaco.model.body('jaco_link_hand').id
    jacp = np.zeros((3, jaco.model.nv))
    mujoco.mj_jac(jaco.model, data, jacp, None, data.xpos[hand], hand)
    push = poses[2] + 1.5 * np.linalg.pinv(jacp) @ (np.array(SUBGOALS[2]) - data.xpos[hand])
    # Stage 2: swing down from above into the pose near S2, let it settle, then push.
    above = poses[2].copy()
    above[1], above[2] = -1.1, jaco.model.jnt_range[2, 1]
    stage_2_plan = [above] * 50 + [poses[2]] * 40 + [push] * 4 + [poses[2]] * 30
    successes, stage_2_steps = [], 0
    for step in range(1, MAX_EPISODE_LENGTH + 1):  # noqa: B007  (checked after the loop)
        if jaco.stage < 2:
            target = poses[jaco.stage]
        else:
            target = stage_2_plan[min(stage_2_steps, len(stage_2_plan) - 1)]
            stage_2_steps += 1
        torque = PD_GAINS * (target - jaco.data.qpos) - PD_DAMPING * jaco.data.qvel
        env_step = env.step(np.clip((torque + jaco.data.qfrc_bias) / GEARS, -1.0, 1.0))
        if env_step.env_info['success']:
            successes.append(env_step.env_info['stages_completed'])
        if env_step.last:
            break
    assert successes == [1.0, 2.0, 3.0]
    assert env_step.step_type == StepType.TERMINAL and step < MAX_EPISODE_LENGTH
    assert np.linalg.norm(jaco.hand_position() - np.array(SUBGOALS[2])) < 0.05


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', [0, 1, 3])
def test_stages_advance_to_a_terminal_step(family: JacoReachMT5, task_id: int) -> None:
    env = family.get_train_envs()[task_id]
    jaco = env.gymnasium_env
    env.reset()
    stage_goals = {0: (0, 1, 2), 1: (0, 1, 3), 3: (1, 2, 0)}[task_id]
    goals = [np.array(SUBGOALS[i]) for i in stage_goals]
    step_types = []
    for stage, goal in enumerate(goals):
        np.testing.assert_array_equal(jaco.goal, goal)
        np.testing.assert_array_equal(jaco.data.mocap_pos[0], goal)
        action = _hold_at(jaco, _inverse_kinematics(jaco, goal))
        env_step = env.step(action)
        info = env_step.env_info
        step_types.append(env_step.step_type)
        assert info['success'] == 1.0 and info['stages_completed'] == stage + 1
        assert env_step.observation[STAGE].tolist() == np.eye(3)[stage].tolist()
        expected = _expected_reward(task_id, jaco, action, goal, stage + 1, True)
        assert expected['distance'] < 0.01
        assert env_step.reward == pytest.approx(expected['reward'], rel=1e-9, abs=1e-9)
        assert info['stage_reward'] == pytest.approx(expected['stage_reward'])
    assert step_types == [StepType.FIRST, StepType.MID, StepType.TERMINAL]
    assert jaco.stage == 3
    if task_id == 1:
        assert info['stage_reward'] == 200.0
    with pytest.raises(RuntimeError):
        env.step(np.zeros(6))


@pytest.mark.mujoco
def test_timeout_at_the_horizon(family: JacoReachMT5) -> None:
    env = family.get_train_envs()[2]
    env.reset()
    step_types = [env.step(np.zeros(6)).step_type for _ in range(MAX_EPISODE_LENGTH)]
    assert step_types[0] == StepType.FIRST and step_types[-1] == StepType.TIMEOUT
    assert set(step_types[1:-1]) == {StepType.MID}


@pytest.mark.mujoco
def test_rest_pose_under_zero_actions() -> None:
    """Where the mesh arm lies on the ground after a zero-action episode from the noise-free
    initial pose.

    Recorded from this model (MuJoCo 3.3). It slides on slowly (about 0.015 per 100 steps), so
    the step count matters. The capsule stand-ins used before the meshes ended 0.067 away, more
    than the success radius: the link shapes matter here.
    """
    jaco = JacoReachTaskEnv(0)
    jaco.reset(seed=0)
    jaco.set_state(jaco.init_qpos, jaco.init_qvel)
    start = jaco.hand_position()
    for _ in range(MAX_EPISODE_LENGTH):
        jaco.step(np.zeros(6))
    np.testing.assert_allclose(jaco.hand_position(), [0.4194, 0.0970, 0.0877], atol=0.005)
    assert jaco.data.ncon >= 1  # on the ground
    assert start[2] - jaco.hand_position()[2] > 0.14
    jaco.close()


@pytest.mark.mujoco
def test_stay_goal_is_the_reset_pose_in_train_and_test_envs(family: JacoReachMT5) -> None:
    """Task 4 is a stay task in both envs (the release's shared goal list fixed); its goal is
    the hand at each episode's reset pose; a policy that lets the arm sag never succeeds."""
    for env in (family.get_train_envs()[STAY], family.get_test_envs()[STAY]):
        jaco = env.gymnasium_env
        assert jaco.task.stay and env.task_name == 'stay'
        goals = []
        for _ in range(2):
            env.reset()
            hand = jaco.hand_position()
            np.testing.assert_array_equal(np.array(jaco.goals), [hand] * 3)
            np.testing.assert_array_equal(jaco.data.mocap_pos[0], hand)
            goals.append(hand)
        assert 0.0 < np.linalg.norm(goals[0] - goals[1]) < 0.02  # the reset noise moves it

        # Zero actions: the hand starts at the goal, so step 1 is in the radius, but the arm
        # sags out of it at once. One in-radius step completes no stage: no success.
        successes, in_radius = [], []
        for _ in range(MAX_EPISODE_LENGTH):
            env_step = env.step(np.zeros(6))
            info = env_step.env_info
            successes.append(info['success'])
            in_radius.append(info['dist_reward'] > -0.05)
            assert info['stage_reward'] == 0.0  # dense stay task
            assert env_step.reward == pytest.approx(info['dist_reward'] + info['ctrl_reward'])
        assert in_radius[0] and not any(in_radius[2:])
        assert jaco.success_steps == sum(in_radius) < 30
        assert successes == [0.0] * MAX_EPISODE_LENGTH
        assert env_step.step_type == StepType.TIMEOUT and info['stages_completed'] == 0.0
    train, test = (
        e.gymnasium_env for e in (family.get_train_envs()[STAY], family.get_test_envs()[STAY])
    )
    assert train is not test and train.goals != test.goals


@pytest.mark.mujoco
def test_holding_still_completes_the_stay_task() -> None:
    """A PD controller to the closest pose the motors can hold succeeds where that pose lies in
    the radius: success is reported at the 30th, 60th and 90th in-radius step, and the 90th
    ends the episode. Where it lies outside (about half of the reset poses), it cannot."""
    jaco = JacoReachTaskEnv(STAY)
    distances = {}
    for seed in range(10):
        jaco.reset(seed=seed)
        pose, distances[seed] = _holdable_pose_near(jaco, np.array(jaco.goal), max_load=0.999)
        if distances[seed] < 0.049:
            break
    assert distances[seed] < 0.049, distances
    assert max(distances.values()) > 0.05  # the earlier seeds' goals cannot be held
    jaco.reset(seed=seed)
    successes, counts = [], []
    for step in range(1, MAX_EPISODE_LENGTH + 1):  # noqa: B007  (checked after the loop)
        _, reward, terminated, _, info = jaco.step(_pd_action(jaco, pose))
        if info['success']:
            successes.append(info['stages_completed'])
            counts.append(jaco.success_steps)
        assert info['stages_completed'] == jaco.success_steps // 30
        assert info['stage_reward'] == 0.0
        assert reward == pytest.approx(info['dist_reward'] + info['ctrl_reward'])
        if terminated:
            break
    assert successes == [1.0, 2.0, 3.0] and counts == [30, 60, 90]
    assert terminated and jaco.stage == 3 and step < MAX_EPISODE_LENGTH
    assert np.linalg.norm(jaco.hand_position() - jaco.goal) < 0.05
    jaco.close()


@pytest.mark.mujoco
def test_sparse_stay_reward() -> None:
    """Not used by the five tasks, kept from the release: a sparse stay task pays the in-radius
    count every 30th in-radius step."""
    jaco = JacoReachTaskEnv(STAY)
    jaco.task = dataclasses.replace(jaco.task, sparse=True)
    jaco.reset(seed=0)
    pose = _inverse_kinematics(jaco, np.array(jaco.goals[0]))
    stage_rewards, successes = [], []
    for _ in range(60):
        _, reward, _, _, info = jaco.step(_hold_at(jaco, pose))
        assert info['dist_reward'] == 0.0
        assert reward == pytest.approx(info['stage_reward'] + info['ctrl_reward'])
        stage_rewards.append(info['stage_reward'])
        successes.append(info['success'])
    assert jaco.success_steps == 60
    assert stage_rewards == [0.0] * 29 + [30.0] + [0.0] * 29 + [60.0]
    assert successes == [0.0] * 29 + [1.0] + [0.0] * 29 + [1.0]
    jaco.close()


@pytest.mark.mujoco
def test_unstable_simulation_ends_the_episode(family: JacoReachMT5) -> None:
    env = family.get_train_envs()[0]
    jaco = env.gymnasium_env
    env.reset()
    env.step(np.zeros(6))
    jaco.data.qvel[1] = 1e11
    data = jaco.data
    before = np.concatenate(
        [data.qpos, data.qvel, [1.0, 0.0, 0.0], data.body('jaco_link_hand').xpos]
    ).astype(np.float32)
    env_step = env.step(np.zeros(6))
    assert env_step.step_type == StepType.TERMINAL
    assert env_step.env_info['ctrl_reward'] < -100.0 and env_step.reward < -100.0
    assert env_step.env_info['success'] == 0.0
    np.testing.assert_array_equal(env_step.observation[:18], before)
    env.reset()
    assert np.isfinite(env.step(np.zeros(6)).reward)


@pytest.mark.mujoco
def test_reset_noise_and_seeding() -> None:
    jaco = JacoReachTaskEnv(0)
    first, _ = jaco.reset(seed=3)
    offset = jaco.data.qpos - jaco.init_qpos
    assert 0 < np.abs(offset).max() <= 0.01
    assert 0 < np.abs(jaco.data.qvel).max() <= 0.001
    assert jaco.stage == 0 and first[STAGE].tolist() == [1.0, 0.0, 0.0]
    again, _ = jaco.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    other, _ = jaco.reset(seed=4)
    assert not np.array_equal(first, other)
    jaco.close()


@pytest.mark.mujoco
def test_pickled_env_is_small_and_steps(family: JacoReachMT5) -> None:
    env = family.get_train_envs()[STAY]
    data = pickle.dumps(env)
    assert len(data) < 20_000
    clone = pickle.loads(data)
    assert isinstance(clone, TaskOneHotWrapper) and clone.task_id == STAY
    observation, _ = clone.reset()
    assert observation.shape == (23,) and observation[-1] == 1.0
    env_step = clone.step(clone.action_space.sample())
    assert env_step.env_info['task_id'] == STAY
    assert clone.gymnasium_env.task_reward == env.gymnasium_env.task_reward
    np.testing.assert_allclose(clone.gymnasium_env.goals[0], observation[HAND], atol=1e-6)
    clone.close()


@pytest.mark.mujoco
def test_test_envs_differ_from_train_envs() -> None:
    first, second, other = JacoReachMT5(seed=0), JacoReachMT5(seed=0), JacoReachMT5(seed=1)
    for task_id in range(N_TASKS):
        train, test = first.get_train_envs()[task_id], first.get_test_envs()[task_id]
        assert train is not test and train.gymnasium_env is not test.gymnasium_env
        train_observation = train.reset()[0]
        assert not np.array_equal(train_observation, test.reset()[0])
        same_seed = second.get_train_envs()[task_id].reset()[0]
        np.testing.assert_array_equal(train_observation, same_seed)
        assert not np.array_equal(train_observation, other.get_train_envs()[task_id].reset()[0])
    for env in (first, second, other):
        env.close()


@pytest.mark.mujoco
@pytest.mark.filterwarnings(
    'ignore:.*A Box observation space (minimum|maximum) value is -?infinity:UserWarning'
)
@pytest.mark.parametrize('task_id', [1, STAY])
def test_gymnasium_env_checker(task_id: int) -> None:
    """Joint positions, velocities and the hand position are unbounded, which the checker flags."""
    jaco = JacoReachTaskEnv(task_id)
    check_env(jaco, skip_render_check=True)
    jaco.close()


@pytest.mark.mujoco
def test_offscreen_rendering() -> None:
    frame = render_offscreen(
        'from environments.jaco import JacoReachTaskEnv\n'
        'env = JacoReachTaskEnv(0, width=64, height=48)'
    )
    assert frame['shape'] == [48, 64, 3] and frame['dtype'] == 'uint8'
    assert frame['std'] > 0.0  # a picture, not a blank frame


if __name__ == '__main__':
    jaco_family = JacoReachMT5(seed=0)
    for name, task_env_ in zip(TASK_NAMES, jaco_family.get_train_envs(), strict=True):
        print(f'{name}: {steps_per_second(task_env_):.0f} steps/s through the adapter')
    jaco_family.close()
