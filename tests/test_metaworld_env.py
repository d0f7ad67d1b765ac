"""Tests of the Meta-World families (``environments/metaworld_mt.py``).

MT10 is built once for the module (train and test benchmarks, about 17 s), while a subprocess
checks the factory in a fresh interpreter on the other core; MT50 is only checked without
building it. Run as a script to print steps/s through the adapter.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)

import metaworld.env_dict
import numpy as np
import pytest
import torch
from garage import StepType
from gymnasium.utils.env_checker import check_env
from metaworld.policies import SawyerReachV3Policy

from conftest import render_offscreen, steps_per_second
from environments.metaworld_mt import (
    BENCHMARK_CLASSES,
    MetaWorldMT10,
    MetaWorldMT50,
    get_benchmark,
    goal_variations,
    make_metaworld_env,
    task_names,
)
from environments.multitask import MultiTaskEnv, TaskOneHotWrapper
from environments.registry import ENVS, make_env

MT10_TASKS = (
    'reach-v3',
    'push-v3',
    'pick-place-v3',
    'door-open-v3',
    'drawer-open-v3',
    'drawer-close-v3',
    'button-press-topdown-v3',
    'peg-insert-side-v3',
    'window-open-v3',
    'window-close-v3',
)
METAWORLD_INFO_KEYS = {
    'success',
    'near_object',
    'grasp_success',
    'grasp_reward',
    'in_place_reward',
    'obj_to_target',
    'unscaled_reward',
}
GOAL = slice(36, 39)
STATE_DIM = 39
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def mt10() -> Iterator[MultiTaskEnv]:
    env = make_env('MetaWorldMT10-v2', seed=0)
    env.get_train_envs()
    env.get_test_envs()
    yield env
    env.close()


@pytest.mark.mujoco
def test_registry_builds_mt10(mt10: MultiTaskEnv) -> None:
    assert isinstance(mt10, MetaWorldMT10)
    assert mt10.env_id == 'MetaWorldMT10-v2'
    assert mt10.n_tasks == 10 == ENVS['MetaWorldMT10-v2'].n_tasks
    assert mt10.task_names == MT10_TASKS
    assert mt10.task_names == tuple(get_benchmark('MT10', 0).train_classes)
    assert mt10.observation_dim == 49
    assert mt10.network_input_dim == 49
    assert mt10.action_dim == 4
    assert mt10.max_episode_length == 500 == ENVS['MetaWorldMT10-v2'].max_episode_length
    assert mt10.split_mode == 'zero'
    assert mt10.min_reward == 0.0
    action_space = mt10.spec.action_space
    np.testing.assert_array_equal(action_space.low, -np.ones(4))
    np.testing.assert_array_equal(action_space.high, np.ones(4))
    assert len(mt10.get_train_envs()) == len(mt10.get_test_envs()) == 10


@pytest.mark.mujoco
def test_goal_dims_are_not_bounded_to_zero(mt10: MultiTaskEnv) -> None:
    """The stale observation space of Meta-World 3.1.1 (stack.md B11) is refreshed."""
    for env in mt10.get_train_envs():
        space = env.observation_space
        assert np.all(space.high[GOAL] > space.low[GOAL]), env.task_name
        assert space.dtype == np.float32


@pytest.mark.mujoco
def test_mt50_without_building() -> None:
    env = MetaWorldMT50(seed=3)
    assert env.env_id == 'MetaWorldMT50-v2'
    assert env.n_tasks == 50 == ENVS['MetaWorldMT50-v2'].n_tasks
    assert env.task_names == task_names('MT50')
    assert len(set(env.task_names)) == 50 and set(MT10_TASKS) <= set(env.task_names)
    assert all(name.endswith('-v3') for name in env.task_names)
    assert env.split_mode == 'zero' and env.min_reward == 0.0


def test_task_indices_are_the_releases() -> None:
    """MT50 is numbered as Meta-World V2's ``MT50_V2`` (each task at its first position there),
    not as Meta-World 3's ``MT50_V3``; MT10 as both versions' MT10. Every name is a Meta-World 3
    environment."""
    mt50 = task_names('MT50')
    assert len(mt50) == len(set(mt50)) == 50
    assert set(mt50) == set(metaworld.env_dict.ALL_V3_ENVIRONMENTS)
    # Positions in MT50_V2, by hand from its listing (later duplicates dropped).
    released = {
        0: 'assembly-v3',
        13: 'door-close-v3',
        18: 'drawer-close-v3',
        27: 'lever-pull-v3',
        28: 'peg-insert-side-v3',
        29: 'pick-place-wall-v3',
        31: 'reach-v3',
        33: 'push-v3',
        34: 'pick-place-v3',
        39: 'peg-unplug-side-v3',
        43: 'push-wall-v3',
        44: 'reach-wall-v3',
        49: 'window-close-v3',
    }
    assert {index: mt50[index] for index in released} == released
    # Meta-World 3's order differs exactly at 28..43, which is what the table fixes.
    differing = [
        index for index, name in enumerate(metaworld.env_dict.MT50_V3) if name != mt50[index]
    ]
    assert differing == list(range(28, 44))
    assert task_names('MT10') == MT10_TASKS == tuple(metaworld.env_dict.MT10_V3)
    for benchmark in ('MT10', 'MT50'):
        classes = BENCHMARK_CLASSES[benchmark]
        assert all(name in classes for name in task_names(benchmark))


@pytest.mark.mujoco
def test_reset_and_step_shapes(mt10: MultiTaskEnv) -> None:
    env = mt10.get_train_envs()[2]
    observation, episode_info = env.reset()
    assert observation.shape == (49,) and observation.dtype == np.float32
    assert episode_info == {}
    assert env.observation_space.contains(observation)
    env_step = env.step(env.action_space.sample())
    assert env_step.observation.shape == (49,) and env_step.observation.dtype == np.float32
    assert env.observation_space.contains(env_step.observation)
    assert isinstance(env_step.reward, float) and 0.0 <= env_step.reward <= 10.0
    assert env_step.step_type == StepType.FIRST
    assert set(env_step.env_info) == METAWORLD_INFO_KEYS | {'task_id'}
    assert env_step.env_info['success'] in (0.0, 1.0)


@pytest.mark.mujoco
@pytest.mark.parametrize('task_id', [0, 7])
def test_one_hot_and_task_id(mt10: MultiTaskEnv, task_id: int) -> None:
    for env in (mt10.get_train_envs()[task_id], mt10.get_test_envs()[task_id]):
        assert env.task_name == MT10_TASKS[task_id]
        observation, _ = env.reset()
        expected = np.zeros(10, dtype=np.float32)
        expected[task_id] = 1.0
        np.testing.assert_array_equal(observation[STATE_DIM:], expected)
        env_step = env.step(env.action_space.sample())
        np.testing.assert_array_equal(env_step.observation[STATE_DIM:], expected)
        assert env_step.env_info['task_id'] == task_id


@pytest.mark.mujoco
def test_split_observation(mt10: MultiTaskEnv) -> None:
    observations = np.stack([mt10.get_train_envs()[i].reset()[0] for i in (2, 9)])
    states, task_ids = mt10.split_observation(observations)
    assert states.shape == (2, 49)
    np.testing.assert_array_equal(task_ids, [2, 9])
    np.testing.assert_array_equal(states[:, STATE_DIM:], 0.0)
    np.testing.assert_array_equal(states[:, :STATE_DIM], observations[:, :STATE_DIM])
    assert observations[1, STATE_DIM + 9] == 1.0  # the raw observation is untouched

    torch_states, torch_ids = mt10.split_observation(torch.as_tensor(observations))
    np.testing.assert_array_equal(torch_states.numpy(), states)
    np.testing.assert_array_equal(torch_ids.numpy(), [2, 9])

    with_id = MetaWorldMT10(seed=0, include_task_id=True)
    assert with_id.network_input_dim == 49
    kept, kept_ids = with_id.split_observation(observations)
    np.testing.assert_array_equal(kept, observations)
    np.testing.assert_array_equal(kept_ids, [2, 9])


@pytest.mark.mujoco
def test_horizon_is_a_timeout_without_terminal(mt10: MultiTaskEnv) -> None:
    env = mt10.get_train_envs()[5]
    env.reset()
    step_types = []
    for _ in range(500):
        env_step = env.step(env.action_space.sample())
        step_types.append(env_step.step_type)
        assert env.observation_space.contains(env_step.observation)
    assert step_types[0] == StepType.FIRST
    assert step_types[-1] == StepType.TIMEOUT
    assert set(step_types[1:-1]) == {StepType.MID}
    assert StepType.TERMINAL not in step_types
    with pytest.raises(RuntimeError):
        env.step(env.action_space.sample())
    env.reset()  # Meta-World accepts the next episode
    assert env.step(env.action_space.sample()).step_type == StepType.FIRST


@pytest.mark.mujoco
def test_goal_variations_change_every_reset(mt10: MultiTaskEnv) -> None:
    train_env = mt10.get_train_envs()[0]
    first_goal = train_env.reset()[0][GOAL]
    second_goal = train_env.reset()[0][GOAL]
    assert not np.allclose(first_goal, second_goal)

    test_env = mt10.get_test_envs()[0]
    assert test_env is not train_env
    train_goals = np.stack([train_env.reset()[0][GOAL] for _ in range(5)])
    test_goals = np.stack([test_env.reset()[0][GOAL] for _ in range(5)])
    distances = np.linalg.norm(train_goals[:, None] - test_goals[None], axis=-1)
    assert distances.min() > 1e-6


@pytest.mark.mujoco
def test_goal_order_is_a_reshuffled_permutation() -> None:
    """Every pass visits the 50 variations once; consecutive goals always differ."""
    tasks = goal_variations('MT10', 0, 'reach-v3')
    env = make_metaworld_env('MT10', 'reach-v3', tasks, seed=11)
    order = []
    for _ in range(120):
        env.reset()
        order.append(env.goal_index)
    env.close()
    assert sorted(order[:50]) == list(range(50))
    assert sorted(order[50:100]) == list(range(50))
    assert order[:50] != order[50:100]
    assert all(a != b for a, b in itertools.pairwise(order))
    again = make_metaworld_env('MT10', 'reach-v3', tasks, seed=11)
    replay = []
    for _ in range(10):
        again.reset()
        replay.append(again.goal_index)
    again.close()
    assert replay == order[:10]


@pytest.mark.mujoco
def test_pickled_env_is_small_and_steps(mt10: MultiTaskEnv) -> None:
    env = mt10.get_train_envs()[1]
    data = pickle.dumps(env)
    assert len(data) < 50_000
    clone = pickle.loads(data)
    assert isinstance(clone, TaskOneHotWrapper) and clone.task_id == 1
    observation, _ = clone.reset()
    assert observation.shape == (49,)
    env_step = clone.step(clone.action_space.sample())
    assert env_step.env_info['task_id'] == 1
    assert clone.observation_space.contains(env_step.observation)
    clone.close()


@pytest.mark.mujoco
def test_unpickled_env_works_in_a_fresh_process_without_a_benchmark(
    mt10: MultiTaskEnv, tmp_path
) -> None:
    """A Ray worker unpickles environments: it must not rebuild the benchmark (slow, large),
    and it must see the same goal variations as the process that built the family."""
    path = tmp_path / 'env.pkl'
    path.write_bytes(pickle.dumps(mt10.get_train_envs()[1]))
    script = (
        'import json, pickle, sys\n'
        'import environments\n'
        'from environments import metaworld_mt\n'
        'with open(sys.argv[1], "rb") as file:\n'
        '    env = pickle.load(file)\n'
        'goals = [env.reset()[0][36:39].tolist() for _ in range(2)]\n'
        'env.step(env.action_space.sample())\n'
        'print(json.dumps([goals, metaworld_mt.get_benchmark.cache_info().currsize]))\n'
    )
    python_path = os.pathsep.join(p for p in (PROJECT_ROOT, os.environ.get('PYTHONPATH')) if p)
    result = subprocess.run(
        [sys.executable, '-c', script, str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, 'PYTHONPATH': python_path},
    )
    assert result.returncode == 0, result.stderr
    goals, benchmarks_built = json.loads(result.stdout.strip().splitlines()[-1])
    assert benchmarks_built == 0
    local = pickle.loads(path.read_bytes())
    expected = [local.reset()[0][GOAL].tolist() for _ in range(2)]
    np.testing.assert_allclose(goals, expected, atol=1e-6)


@pytest.mark.mujoco
@pytest.mark.filterwarnings('ignore:Constant\\(s\\) may be too high:UserWarning')
def test_success_is_reachable_with_the_scripted_policy(mt10: MultiTaskEnv) -> None:
    env = mt10.get_train_envs()[0]
    assert env.task_name == 'reach-v3'
    policy = SawyerReachV3Policy()
    observation, _ = env.reset()
    successes = []
    for _ in range(500):
        env_step = env.step(policy.get_action(observation[:STATE_DIM].astype(np.float64)))
        successes.append(env_step.env_info['success'])
        observation = env_step.observation
        if env_step.last:
            break
    assert max(successes) == 1.0


@pytest.mark.mujoco
@pytest.mark.filterwarnings('ignore:.*is different from the unwrapped version:UserWarning')
@pytest.mark.filterwarnings(
    'ignore:.*A Box observation space (minimum|maximum) value is -?infinity:UserWarning'
)
def test_gymnasium_env_checker() -> None:
    """Meta-World's object dims are unbounded and the goal rotation is a wrapper, which the
    checker notes; everything it checks passes."""
    env = make_metaworld_env('MT10', 'push-v3', goal_variations('MT10', 0, 'push-v3'), 0)
    check_env(env, skip_render_check=True)
    env.close()


@pytest.mark.mujoco
def test_reseeding_repeats_the_goal_order() -> None:
    env = make_metaworld_env('MT10', 'reach-v3', goal_variations('MT10', 0, 'reach-v3'), 0)
    goals = []
    for _ in range(3):
        env.reset(seed=123)
        goals.append(env.goal_index)
    env.close()
    assert goals[0] == goals[1] == goals[2]


@pytest.mark.mujoco
def test_offscreen_rendering() -> None:
    frame = render_offscreen(
        'from environments.metaworld_mt import goal_variations, make_metaworld_env\n'
        "env = make_metaworld_env('MT10', 'reach-v3', goal_variations('MT10', 0, 'reach-v3'), 0)"
    )
    assert frame['shape'] == [480, 480, 3] and frame['dtype'] == 'uint8'
    assert frame['std'] > 10.0  # a picture, not a blank frame


if __name__ == '__main__':
    family = MetaWorldMT10(seed=0)
    for task in ('reach-v3', 'pick-place-v3'):
        task_env = family.get_train_envs()[family.task_names.index(task)]
        print(f'{task}: {steps_per_second(task_env):.0f} steps/s through the adapter')
    family.close()
