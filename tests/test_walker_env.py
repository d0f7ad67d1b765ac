"""Tests of the ``Walker2dMT4-v0`` family (``environments/walker.py``).

Rewards are recomputed by hand from the post-step simulator state, terminations are provoked
by setting the state, and success is checked with a shortened ``success_steps``. Run as a
script to print steps/s of one task env through the adapter.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Iterator

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import mujoco
import numpy as np
import pytest
from garage import StepType
from gymnasium.utils.env_checker import check_env

from conftest import render_offscreen, steps_per_second
from environments.gymnasium_adapter import GymnasiumEnv
from environments.multitask import TaskOneHotWrapper
from environments.walker import (
    GYMNASIUM_WALKER_XML,
    MAX_EPISODE_LENGTH,
    TASK_NAMES,
    Walker2dMT4,
    Walker2dTaskEnv,
    make_walker_env,
)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTION = np.array([0.5, -0.3, 0.2, -0.8, 0.1, 0.9])
DT = 0.008
FORWARD, BACKWARD, BALANCE, CRAWL = range(4)


@pytest.fixture(scope='module')
def family() -> Iterator[Walker2dMT4]:
    env = Walker2dMT4(seed=0)
    env.get_train_envs()
    env.get_test_envs()
    yield env
    env.close()


def _set_pose(walker: Walker2dTaskEnv, **qpos_values: float) -> None:
    """Standing initial pose with some root coordinates replaced; zero velocities."""
    qpos = walker.init_qpos.copy()
    for index, name in enumerate(('x', 'z', 'angle')):
        if name in qpos_values:
            qpos[index] = qpos_values[name]
    walker.set_state(qpos, np.zeros(walker.model.nv))


@pytest.mark.mujoco
def test_family_facts(family: Walker2dMT4) -> None:
    assert family.env_id == 'Walker2dMT4-v0'
    assert family.task_names == ('forward', 'backward', 'balance', 'crawl') == TASK_NAMES
    assert family.n_tasks == 4
    assert family.observation_dim == 21 and family.network_input_dim == 21
    assert family.action_dim == 6
    assert family.max_episode_length == MAX_EPISODE_LENGTH == 1000
    assert family.split_mode == 'zero' and family.min_reward == 0.0
    assert Walker2dMT4(include_task_id=True).network_input_dim == 21
    for task_id, env in enumerate(family.get_train_envs()):
        assert env.task_id == task_id and env.task_name == TASK_NAMES[task_id]
        observation, _ = env.reset()
        assert observation.dtype == np.float32 and observation.shape == (21,)
        np.testing.assert_array_equal(observation[17:], np.eye(4, dtype=np.float32)[task_id])
        env_step = env.step(np.zeros(6))
        assert env_step.observation.dtype == np.float32
        assert env_step.env_info['task_id'] == task_id
        assert {'success', 'x_velocity'} <= set(env_step.env_info)
        assert env.observation_space.contains(env_step.observation)
        states, task_ids = family.split_observation(env_step.observation[None])
        assert states.shape == (1, 21) and task_ids.tolist() == [task_id]
        np.testing.assert_array_equal(states[0, 17:], 0.0)
        np.testing.assert_array_equal(states[0, :17], env_step.observation[:17])
        unchanged, _ = Walker2dMT4(include_task_id=True).split_observation(env_step.observation)
        np.testing.assert_array_equal(unchanged, env_step.observation)
    keys = [set(env.step(np.zeros(6)).env_info) for env in family.get_train_envs()]
    assert all(k == keys[0] for k in keys), 'garage stacks infos of all tasks together'


@pytest.mark.mujoco
def test_model_facts(family: Walker2dMT4) -> None:
    reference = mujoco.MjModel.from_xml_path(GYMNASIUM_WALKER_XML)
    for task_id, env in enumerate(family.get_train_envs()):
        walker = env.gymnasium_env
        model = walker.model
        assert model.opt.timestep == 0.002 and walker.frame_skip == 4
        assert walker.dt == pytest.approx(DT)
        assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
        assert model.nu == 6 and model.nq == 9 and model.nv == 9
        np.testing.assert_array_equal(model.actuator_gear[:, 0], 100.0)
        np.testing.assert_array_equal(model.actuator_ctrlrange, [[-1.0, 1.0]] * 6)
        # The walker itself is Gymnasium's model, unchanged.
        for field in ('body_pos', 'body_mass', 'jnt_range', 'dof_damping', 'dof_armature'):
            np.testing.assert_allclose(getattr(model, field), getattr(reference, field))
        n_walker = reference.ngeom
        for geom in range(n_walker):
            ours, theirs = model.geom(reference.geom(geom).name), reference.geom(geom)
            for field in ('size', 'pos', 'quat', 'friction', 'contype', 'conaffinity'):
                np.testing.assert_allclose(getattr(ours, field), getattr(theirs, field))
        names = [model.geom(i).name for i in range(model.ngeom)]
        ceilings = [name for name in names if 'ceiling' in name]
        if task_id != CRAWL:
            assert model.ngeom == n_walker and not ceilings
            continue
        assert set(ceilings) == {'ceiling_long', 'ceiling1', 'ceiling2'}
        for name in ceilings:
            assert model.geom(name).pos[2] == pytest.approx(1.0)
            assert model.geom(name).size[2] == pytest.approx(0.1)
        front = model.geom('ceiling_long')
        assert front.pos[0] - front.size[0] == pytest.approx(2.0)
        assert front.pos[0] + front.size[0] >= 10.0
        assert all(
            model.geom(name).pos[0] + model.geom(name).size[0] < 0
            for name in ('ceiling1', 'ceiling2')
        )


def _expected(
    task_id: int, v: float, delta_h: float, nz: float, foot: float, action: np.ndarray
) -> tuple[float, float]:
    """(reward, info x_velocity) of the release's reward terms, from the measured quantities."""
    common = -1e-3 * float(np.sum(action**2)) + 1.0 + 0.1 * nz
    if task_id == FORWARD:
        shaped = 3.0 - abs(v - 3.0)
        return common + shaped - abs(1.1 - delta_h) - 0.01 * foot, shaped
    if task_id == BACKWARD:
        shaped = 3.0 - abs(-v - 3.0)
        return common + shaped - abs(1.1 - delta_h) - 0.01 * foot, -shaped
    if task_id == BALANCE:
        return common - abs(v) - 0.5 * abs(1.1 - delta_h), v
    shaped = 3.0 - abs(v - 3.0)
    return common + 2.0 * shaped - 0.01 * foot, shaped


@pytest.mark.mujoco
@pytest.mark.parametrize(
    'task_id, x_speed', [(FORWARD, 4.0), (BACKWARD, -1.5), (BALANCE, 0.7), (CRAWL, 1.0)]
)
def test_reward_matches_the_formula(task_id: int, x_speed: float) -> None:
    walker = make_walker_env(task_id)
    walker.reset(seed=0)
    qpos = walker.init_qpos.copy()
    qpos[2], qpos[5], qpos[8] = 0.1, 0.2, -0.15
    qvel = np.zeros(9)
    qvel[0], qvel[2], qvel[5], qvel[8] = x_speed, 15.0, 1.5, -2.0
    walker.set_state(qpos, qvel)
    x_before, feet_before = walker.data.qpos[0], walker.data.qpos[[5, 8]].copy()
    observation, reward, terminated, truncated, info = walker.step(ACTION)

    data = walker.data
    v = (data.qpos[0] - x_before) / DT
    delta_h = data.body('torso').xpos[2] - max(
        data.body('foot').xpos[2], data.body('foot_left').xpos[2]
    )
    foot = float(np.abs(data.qpos[[5, 8]] - feet_before).sum()) / DT
    expected_reward, expected_velocity = _expected(
        task_id, v, delta_h, np.cos(data.qpos[2]), foot, ACTION
    )
    assert reward == pytest.approx(expected_reward, rel=1e-9, abs=1e-9)
    assert info['x_velocity'] == pytest.approx(expected_velocity, rel=1e-9, abs=1e-9)
    assert abs(v - x_speed) < 0.5  # the hand-set speed really drives the velocity term
    assert not terminated and not truncated and info['success'] == 0.0
    assert info['collision_penalty'] == 0.0
    expected_observation = np.concatenate([data.qpos[1:], np.clip(data.qvel, -10, 10)])
    np.testing.assert_allclose(observation, expected_observation.astype(np.float32))
    assert observation.dtype == np.float32 and np.abs(observation[8:]).max() == 10.0
    walker.close()


@pytest.mark.mujoco
def test_reset_noise_random_steps_and_seeding() -> None:
    walker = make_walker_env(BALANCE)
    first, _ = walker.reset(seed=3)
    assert walker.steps == 0
    # 10 random-action steps moved the walker well beyond the ±0.01 noise.
    assert np.abs(walker.data.qpos - walker.init_qpos).max() > 0.05
    walker.step(np.zeros(6))
    assert walker.steps == 1
    again, _ = walker.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    assert walker.steps == 0
    other, _ = walker.reset(seed=4)
    assert not np.array_equal(first, other)
    walker.close()


@pytest.mark.mujoco
@pytest.mark.parametrize(
    'task_id, height, falls',
    [(FORWARD, 0.5, True), (BALANCE, 0.7, True), (CRAWL, 0.5, False), (CRAWL, 0.2, True)],
)
def test_falling_terminates(family: Walker2dMT4, task_id: int, height: float, falls: bool) -> None:
    env = family.get_train_envs()[task_id]
    env.reset()
    # Lying flat at the given height: nothing touches the floor or a ceiling.
    _set_pose(env.gymnasium_env, z=height, angle=1.5)
    env_step = env.step(np.zeros(6))
    assert env.gymnasium_env.data.qpos[1] < 0.8
    assert env_step.env_info['success'] == 0.0
    assert env_step.env_info['collision_penalty'] == 0.0
    assert env_step.step_type == (StepType.TERMINAL if falls else StepType.FIRST)


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', [FORWARD, BALANCE, CRAWL])
def test_surviving_success_steps_is_a_terminal_success(task_id: int) -> None:
    assert make_walker_env(task_id).success_steps == MAX_EPISODE_LENGTH
    # As in the family (success after 1000 steps, horizon 1000), with 5 instead of 1000.
    env = GymnasiumEnv(functools.partial(make_walker_env, task_id, success_steps=5), 5, seed=0)
    env.reset()
    step_types, successes = [], []
    for _ in range(5):
        env_step = env.step(np.zeros(6))
        step_types.append(env_step.step_type)
        successes.append(env_step.env_info['success'])
    assert step_types == [
        StepType.FIRST,
        StepType.MID,
        StepType.MID,
        StepType.MID,
        StepType.TERMINAL,
    ]
    assert successes == [0.0, 0.0, 0.0, 0.0, 1.0]
    env.reset()  # the step count starts again
    assert [env.step(np.zeros(6)).env_info['success'] for _ in range(5)][-1] == 1.0
    env.close()


@pytest.mark.mujoco
def test_crawl_ceiling_collision(family: Walker2dMT4) -> None:
    env = family.get_train_envs()[CRAWL]
    walker = env.gymnasium_env
    env.reset()
    env_step = env.step(np.zeros(6))  # standing at x ~ 0: in front of the ceiling
    assert env_step.env_info['collision_penalty'] == 0.0 and not walker.touches_ceiling()

    env.reset()
    _set_pose(walker, x=4.0, z=0.5, angle=1.5)  # lying under the ceiling: no contact
    env_step = env.step(np.zeros(6))
    assert env_step.env_info['collision_penalty'] == 0.0
    assert env_step.step_type == StepType.FIRST

    env.reset()
    _set_pose(walker, x=4.0)  # standing up inside the ceiling
    env_step = env.step(np.zeros(6))
    info = env_step.env_info
    assert walker.touches_ceiling()
    assert info['collision_penalty'] == -10.0
    assert env_step.step_type == StepType.TERMINAL and info['success'] == 0.0
    terms = (
        'x_vel_reward',
        'ctrl_reward',
        'angle_reward',
        'height_reward',
        'alive_reward',
        'foot_reward',
        'collision_penalty',
    )
    assert env_step.reward == pytest.approx(sum(info[key] for key in terms))
    assert info['height_reward'] == 0.0

    # The other tasks have no ceiling: the same pose is harmless there.
    forward = family.get_train_envs()[FORWARD]
    forward.reset()
    _set_pose(forward.gymnasium_env, x=4.0)
    env_step = forward.step(np.zeros(6))
    assert env_step.env_info['collision_penalty'] == 0.0
    assert env_step.step_type == StepType.FIRST


@pytest.mark.mujoco
def test_pickled_env_is_small_and_steps(family: Walker2dMT4) -> None:
    env = family.get_train_envs()[CRAWL]
    data = pickle.dumps(env)
    assert len(data) < 20_000
    clone = pickle.loads(data)
    assert isinstance(clone, TaskOneHotWrapper) and clone.task_id == CRAWL
    observation, _ = clone.reset()
    assert observation.shape == (21,) and observation[-1] == 1.0
    env_step = clone.step(clone.action_space.sample())
    assert env_step.env_info['task_id'] == CRAWL
    assert clone.observation_space.contains(env_step.observation)
    clone.close()


@pytest.mark.mujoco
def test_test_envs_differ_from_train_envs() -> None:
    first, second, other = Walker2dMT4(seed=0), Walker2dMT4(seed=0), Walker2dMT4(seed=1)
    for task_id in range(4):
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
def test_gymnasium_env_checker() -> None:
    """Joint angles are unbounded (the torso hinge has no limits), which the checker flags."""
    walker = make_walker_env(CRAWL)
    check_env(walker, skip_render_check=True)
    walker.close()


@pytest.mark.mujoco
def test_offscreen_rendering() -> None:
    frame = render_offscreen(
        'from environments.walker import Walker2dTaskEnv\n'
        'env = Walker2dTaskEnv(3, width=64, height=48)'
    )
    assert frame['shape'] == [48, 64, 3] and frame['dtype'] == 'uint8'
    assert frame['std'] > 0.0  # a picture, not a blank frame


if __name__ == '__main__':
    walker_family = Walker2dMT4(seed=0)
    for name, task_env in zip(TASK_NAMES, walker_family.get_train_envs(), strict=True):
        print(f'{name}: {steps_per_second(task_env):.0f} steps/s through the adapter')
    walker_family.close()
