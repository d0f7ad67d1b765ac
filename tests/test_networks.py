"""Tests of ``learning/networks.py`` against independently built per-task reference networks."""

import math

import numpy as np
import pytest
import torch
from garage.torch.distributions import TanhNormal
from torch import nn
from torch.nn import functional as F

from learning import networks
from learning.networks import TaskLinear, TaskMLP, TaskTanhGaussianPolicies, TaskTwinCritics
from learning.networks.separate import RowGroups

torch.set_num_threads(1)

N_TASKS, IN, OUT, HIDDEN = 3, 5, 2, (7, 6)


def _reference_stack(mlp: TaskMLP, task: int) -> list[nn.Linear]:
    """nn.Linear copies of task ``task``'s layers (weight layout (in, out) -> (out, in))."""
    layers = list(mlp.hidden) + ([mlp.output] if mlp.output is not None else [])
    linears = []
    for layer in layers:
        fan_in, fan_out = layer.weight.shape[1:]
        linear = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            linear.weight.copy_(layer.weight[task].T)
            linear.bias.copy_(layer.bias[task, 0])
        linears.append(linear)
    return linears


def _reference_forward(mlp: TaskMLP, task: int, x: torch.Tensor) -> torch.Tensor:
    """Task ``task``'s MLP on x (B, in) with plain torch ops: [LN -> Linear -> ReLU]* -> Linear."""
    linears = _reference_stack(mlp, task)
    n_hidden = len(mlp.hidden)
    for index in range(n_hidden):
        if mlp.norms is not None:
            norm = mlp.norms[index]
            mean = x.mean(-1, keepdim=True)
            var = x.var(-1, unbiased=False, keepdim=True)
            normed = (x - mean) / torch.sqrt(var + 1e-5)
            # cross-check the hand formula against torch's layer_norm
            torch.testing.assert_close(normed, F.layer_norm(x, x.shape[-1:]), atol=1e-5, rtol=1e-5)
            x = normed * norm.weight[task, 0] + norm.bias[task, 0]
        x = torch.relu(linears[index](x))
    if mlp.output is not None:
        x = linears[-1](x)
    return x


def _randomize(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial values everywhere (biases and LayerNorm affines default to 0 / 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator))


@pytest.mark.parametrize('layer_norm', [False, True])
@pytest.mark.parametrize('out_features', [OUT, None])
def test_task_mlp_forward_matches_separate_linear_stacks(layer_norm, out_features):
    torch.manual_seed(0)
    mlp = TaskMLP(N_TASKS, IN, HIDDEN, out_features, 'xavier_uniform', layer_norm=layer_norm)
    _randomize(mlp)
    x = torch.randn(N_TASKS, 4, IN)
    out = mlp(x)
    expected_width = out_features if out_features is not None else HIDDEN[-1]
    assert out.shape == (N_TASKS, 4, expected_width)
    for task in range(N_TASKS):
        torch.testing.assert_close(
            out[task], _reference_forward(mlp, task, x[task]), atol=1e-5, rtol=1e-5
        )
    # the tasks really differ (otherwise the per-task check above would be vacuous)
    same_input = x[0].expand(N_TASKS, -1, -1)
    same_out = mlp(same_input)
    assert not torch.allclose(same_out[0], same_out[1])


def test_layer_norm_precedes_each_hidden_linear():
    """With LayerNorm, a per-row positive rescaling + shift of the input cannot change the
    output (LN is applied first); without it, it does."""
    torch.manual_seed(1)
    x = torch.randn(N_TASKS, 4, IN)
    shifted = 3.0 * x + 2.0
    with_norm = TaskMLP(N_TASKS, IN, HIDDEN, OUT, 'xavier_normal', layer_norm=True)
    _randomize(with_norm)
    torch.testing.assert_close(with_norm(shifted), with_norm(x), atol=1e-4, rtol=1e-4)
    without = TaskMLP(N_TASKS, IN, HIDDEN, OUT, 'xavier_normal', layer_norm=False)
    _randomize(without)
    assert not torch.allclose(without(shifted), without(x), atol=1e-3)
    assert len(with_norm.norms) == len(HIDDEN)
    assert [n.weight.shape for n in with_norm.norms] == [(N_TASKS, 1, IN), (N_TASKS, 1, HIDDEN[0])]


# Row task ids that take each of ``RowGroups``' four layer paths (N_TASKS = 3), unordered, and
# two already in task order (not permuted).
ROW_TASK_IDS = {
    'one matmul per task': [2, 0, 2, 1, 0, 2],
    'every task evenly, one baddbmm': [2, 0, 1, 1, 0, 2],
    'about one row per task, per-row gather': [1, 1, 0, 2],
    'one task, rows as they are': [1, 1, 1, 1, 1],
    'in task order, every task evenly': [0, 0, 1, 1, 2, 2],
    'in task order, one matmul per task': [0, 1, 1, 1, 2],
}


def test_row_groups_permute_only_rows_out_of_task_order():
    in_order = RowGroups(torch.tensor([0, 0, 1, 2, 2]), 5, N_TASKS)
    assert in_order.order is None and in_order.inverse is None
    assert (in_order.tasks, in_order.sizes) == ([0, 1, 2], [2, 1, 2])
    shuffled = RowGroups(torch.tensor([2, 0, 1, 0, 2]), 5, N_TASKS)
    assert shuffled.order.tolist() == [1, 3, 2, 0, 4]
    assert shuffled.sorted_ids.tolist() == [0, 0, 1, 2, 2]
    rows = torch.arange(5.0)
    assert shuffled.ungroup(shuffled.group(rows)).tolist() == rows.tolist()


@pytest.mark.parametrize('rows', ROW_TASK_IDS)
@pytest.mark.parametrize('layer_norm', [False, True])
def test_forward_selected_matches_forward_on_the_row_task(layer_norm, rows):
    torch.manual_seed(2)
    mlp = TaskMLP(N_TASKS, IN, HIDDEN, OUT, 'xavier_normal', layer_norm=layer_norm)
    _randomize(mlp)
    task_ids = torch.tensor(ROW_TASK_IDS[rows])
    x = torch.randn(len(task_ids), 3, IN)
    out = mlp.forward_selected(task_ids, x)
    assert out.shape == (len(task_ids), 3, OUT)
    for row, task in enumerate(task_ids.tolist()):
        full = torch.zeros(N_TASKS, 3, IN)
        full[task] = x[row]
        torch.testing.assert_close(out[row], mlp(full)[task], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            out[row], _reference_forward(mlp, task, x[row]), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize('rows', ROW_TASK_IDS)
def test_task_linear_forward_selected(rows):
    torch.manual_seed(3)
    layer = TaskLinear(N_TASKS, IN, OUT)
    _randomize(layer)
    task_ids = torch.tensor(ROW_TASK_IDS[rows])
    x = torch.randn(len(task_ids), 2, IN)
    out = layer.forward_selected(task_ids, x)
    for row, task in enumerate(task_ids.tolist()):
        expected = x[row] @ layer.weight[task] + layer.bias[task, 0]
        torch.testing.assert_close(out[row], expected)


@pytest.mark.parametrize('layer_norm', [False, True])
def test_tasks_are_independent(layer_norm):
    torch.manual_seed(4)
    mlp = TaskMLP(N_TASKS, IN, HIDDEN, OUT, 'xavier_uniform', layer_norm=layer_norm)
    _randomize(mlp)
    x = torch.randn(N_TASKS, 5, IN)
    before = mlp(x).detach().clone()
    perturbed_task = 1
    with torch.no_grad():
        for param in mlp.parameters():
            param[perturbed_task].add_(torch.randn_like(param[perturbed_task]))
    after = mlp(x).detach()
    for task in range(N_TASKS):
        if task == perturbed_task:
            assert not torch.allclose(after[task], before[task])
        else:
            assert torch.equal(after[task], before[task])

    # gradient of task 0's output w.r.t. every other task's parameters is exactly zero
    mlp.zero_grad()
    mlp(x)[0].sum().backward()
    for param in mlp.parameters():
        assert param.grad[0].abs().sum() > 0
        assert torch.equal(param.grad[1:], torch.zeros_like(param.grad[1:]))


def test_forward_selected_gradient_only_reaches_selected_tasks():
    torch.manual_seed(5)
    mlp = TaskMLP(N_TASKS, IN, HIDDEN, OUT, 'xavier_uniform', layer_norm=True)
    _randomize(mlp)
    task_ids = torch.tensor([2, 0, 2])
    mlp.forward_selected(task_ids, torch.randn(3, 2, IN)).sum().backward()
    for param in mlp.parameters():
        assert torch.equal(param.grad[1], torch.zeros_like(param.grad[1]))
        assert param.grad[0].abs().sum() > 0 and param.grad[2].abs().sum() > 0


def test_xavier_uniform_init_per_task():
    torch.manual_seed(6)
    fan_in, fan_out = 64, 96
    layer = TaskLinear(4, fan_in, fan_out, 'xavier_uniform')
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert layer.weight.abs().max() <= bound
    for task in range(4):
        std = layer.weight[task].std().item()
        assert abs(std - bound / math.sqrt(3.0)) < 0.05 * bound / math.sqrt(3.0)
        # uniform: the extremes get close to the bound
        assert layer.weight[task].abs().max() > 0.95 * bound
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    # tasks are initialised independently
    assert not torch.equal(layer.weight[0], layer.weight[1])


def test_xavier_normal_init_per_task():
    torch.manual_seed(7)
    fan_in, fan_out = 64, 96
    layer = TaskLinear(4, fan_in, fan_out, 'xavier_normal')
    expected = math.sqrt(2.0 / (fan_in + fan_out))
    for task in range(4):
        std = layer.weight[task].std().item()
        assert abs(std - expected) < 0.1 * expected
        assert abs(layer.weight[task].mean().item()) < 0.1 * expected
    # normal, not uniform: some weights exceed the uniform bound sqrt(3) * std
    assert layer.weight.abs().max() > math.sqrt(3.0) * expected
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_actor_and_critic_inits():
    torch.manual_seed(8)
    state_dim, action_dim, hidden = 40, 4, (80, 80)
    actors = TaskTanhGaussianPolicies(3, state_dim, action_dim, hidden)
    for layer in [*actors.trunk.hidden, actors.mean_head, actors.log_std_head]:
        fan_in, fan_out = layer.weight.shape[1:]
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        for task in range(3):
            assert abs(
                layer.weight[task].std().item() - bound / math.sqrt(3)
            ) < 0.15 * bound / math.sqrt(3)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    critics = TaskTwinCritics(3, state_dim, action_dim, hidden)
    for mlp in (critics.q1, critics.q2):
        for layer in [*mlp.hidden]:
            fan_in, fan_out = layer.weight.shape[1:]
            expected = math.sqrt(2.0 / (fan_in + fan_out))
            for task in range(3):
                assert abs(layer.weight[task].std().item() - expected) < 0.1 * expected
            assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
        assert mlp.output.weight.shape == (3, hidden[-1], 1)
        assert torch.equal(mlp.output.bias, torch.zeros_like(mlp.output.bias))
    assert critics.q1.hidden[0].weight.shape == (3, state_dim + action_dim, hidden[0])
    assert not torch.equal(critics.q1.hidden[0].weight, critics.q2.hidden[0].weight)


def _actor_heads(actors: TaskTanhGaussianPolicies, task: int, states: torch.Tensor):
    """(mu, log_std) of actor ``task`` on states (B, S), computed with nn.Linear copies."""
    features = _reference_forward(actors.trunk, task, states)
    mu = features @ actors.mean_head.weight[task] + actors.mean_head.bias[task, 0]
    log_std = features @ actors.log_std_head.weight[task] + actors.log_std_head.bias[task, 0]
    return mu, log_std


def test_policies_forward_distribution():
    torch.manual_seed(9)
    actors = TaskTanhGaussianPolicies(N_TASKS, IN, OUT, HIDDEN)
    _randomize(actors)
    states = torch.randn(N_TASKS, 4, IN)
    distribution = actors(states)
    assert isinstance(distribution, TanhNormal)
    assert distribution.mean.shape == (N_TASKS, 4, OUT)
    for task in range(N_TASKS):
        mu, log_std = _actor_heads(actors, task, states[task])
        torch.testing.assert_close(distribution.mean[task], torch.tanh(mu), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            distribution.stddev[task], log_std.clamp(-20, 2).exp(), atol=1e-5, rtol=1e-5
        )
    sample = distribution.rsample()
    assert sample.shape == (N_TASKS, 4, OUT)
    assert sample.abs().max() <= 1.0


@pytest.mark.parametrize('bias, expected_log_std', [(10.0, 2.0), (-50.0, -20.0)])
def test_log_std_is_clamped(bias, expected_log_std):
    assert (networks.LOG_STD_MIN, networks.LOG_STD_MAX) == (-20.0, 2.0)
    torch.manual_seed(10)
    actors = TaskTanhGaussianPolicies(N_TASKS, IN, OUT, HIDDEN)
    with torch.no_grad():
        actors.log_std_head.weight.zero_()
        actors.log_std_head.bias.fill_(bias)
    states = torch.randn(N_TASKS, 4, IN)
    for distribution in (actors(states), actors.for_rows(torch.tensor([0, 2]), states[:2])):
        torch.testing.assert_close(
            distribution.stddev, torch.full_like(distribution.stddev, math.exp(expected_log_std))
        )


@pytest.mark.parametrize('rows', ROW_TASK_IDS)
def test_policies_forward_selected(rows):
    torch.manual_seed(11)
    actors = TaskTanhGaussianPolicies(N_TASKS, IN, OUT, HIDDEN)
    _randomize(actors)
    task_ids = torch.tensor(ROW_TASK_IDS[rows])
    states = torch.randn(len(task_ids), 3, IN)
    distribution = actors.for_rows(task_ids, states)
    for row, task in enumerate(task_ids.tolist()):
        mu, log_std = _actor_heads(actors, task, states[row])
        torch.testing.assert_close(distribution.mean[row], torch.tanh(mu), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            distribution.stddev[row], log_std.clamp(-20, 2).exp(), atol=1e-5, rtol=1e-5
        )


def test_propose_returns_every_policy_on_every_state():
    torch.manual_seed(12)
    actors = TaskTanhGaussianPolicies(N_TASKS, IN, OUT, HIDDEN)
    _randomize(actors)
    states = torch.randn(5, IN)
    sampled, mean = actors.propose(states)
    assert sampled.shape == mean.shape == (N_TASKS, 5, OUT)
    for task in range(N_TASKS):
        mu, _ = _actor_heads(actors, task, states)
        torch.testing.assert_close(mean[task], torch.tanh(mu), atol=1e-5, rtol=1e-5)
    assert sampled.abs().max() <= 1.0
    assert not torch.allclose(sampled, mean)  # a sample, not the mean
    # with a tiny std the samples collapse onto the means
    with torch.no_grad():
        actors.log_std_head.weight.zero_()
        actors.log_std_head.bias.fill_(-15.0)
    sampled, mean = actors.propose(states)
    torch.testing.assert_close(sampled, mean, atol=1e-5, rtol=1e-5)
    # rsample keeps the graph for the actor loss
    sampled.sum().backward()
    assert actors.mean_head.weight.grad is not None


def _critic_reference(
    mlp: TaskMLP, task: int, state: torch.Tensor, action: torch.Tensor
) -> torch.Tensor:
    return _reference_forward(mlp, task, torch.cat([state, action])[None])[0, 0]


@pytest.mark.parametrize('rows', ROW_TASK_IDS)
@pytest.mark.parametrize('layer_norm', [False, True])
def test_critics_score(layer_norm, rows):
    torch.manual_seed(13)
    state_dim, action_dim, n_candidates = 4, 2, 3
    critics = TaskTwinCritics(N_TASKS, state_dim, action_dim, (8, 8), layer_norm=layer_norm)
    _randomize(critics)
    task_ids = torch.tensor(ROW_TASK_IDS[rows])
    n_rows = len(task_ids)
    states = torch.randn(n_rows, state_dim)
    candidates = torch.rand(n_candidates, n_rows, action_dim) * 2 - 1
    q1_scores = critics.score(task_ids, states, candidates, 'q1')
    min_scores = critics.score(task_ids, states, candidates, 'min')
    assert q1_scores.shape == min_scores.shape == (n_candidates, n_rows)
    n_q2_lower = 0
    for p in range(n_candidates):
        for b, task in enumerate(task_ids.tolist()):
            q1 = _critic_reference(critics.q1, task, states[b], candidates[p, b])
            q2 = _critic_reference(critics.q2, task, states[b], candidates[p, b])
            torch.testing.assert_close(q1_scores[p, b], q1, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(
                min_scores[p, b], torch.minimum(q1, q2), atol=1e-5, rtol=1e-5
            )
            n_q2_lower += int(q2 < q1)
    assert 0 < n_q2_lower < n_candidates * n_rows  # both branches of the min are exercised


def test_critics_forward_matches_score():
    torch.manual_seed(14)
    critics = TaskTwinCritics(N_TASKS, 4, 2, (8,))
    _randomize(critics)
    states = torch.randn(N_TASKS, 6, 4)
    actions = torch.randn(N_TASKS, 6, 2)
    q1, q2 = critics(states, actions)
    assert q1.shape == q2.shape == (N_TASKS, 6)
    for task in range(N_TASKS):
        for b in range(6):
            torch.testing.assert_close(
                q1[task, b],
                _critic_reference(critics.q1, task, states[task, b], actions[task, b]),
                atol=1e-5,
                rtol=1e-5,
            )
            torch.testing.assert_close(
                q2[task, b],
                _critic_reference(critics.q2, task, states[task, b], actions[task, b]),
                atol=1e-5,
                rtol=1e-5,
            )


def test_actor_objective_skips_critic_weight_gradients_but_not_the_policy_gradient():
    """Freezing the critics inside ``actor_objective`` changes no policy gradient."""
    from learning.algorithms import sac_losses
    from learning.networks import TaskTanhGaussianPolicies, TaskTwinCritics

    torch.manual_seed(7)
    policies = TaskTanhGaussianPolicies(3, 4, 2, (8, 8))
    critics = TaskTwinCritics(3, 4, 2, (8, 8))
    states = torch.randn(3, 5, 4)
    alpha = torch.full((3, 1), 0.3)

    def policy_grads(critic_fn):
        torch.manual_seed(8)
        objective, _, _ = sac_losses.actor_objective(states, policies, critic_fn, alpha)
        policies.zero_grad()
        objective.sum().backward()
        return [p.grad.clone() for p in policies.parameters()]

    unfrozen = policy_grads(lambda s, a: critics(s, a))  # a lambda is not frozen
    assert all(p.grad is not None for p in critics.parameters())
    critics.zero_grad(set_to_none=True)
    frozen = policy_grads(critics)
    assert all(p.grad is None for p in critics.parameters())
    assert all(p.requires_grad for p in critics.parameters())  # restored afterwards
    for a, b in zip(frozen, unfrozen, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize('tasks', [[True, False, True, True], [True] * 4])
def test_target_update_of_active_tasks_is_the_masked_polyak_formula(tasks):
    """Active tasks' target slices move to θ̄ + τ(θ − θ̄) (lerp may round once less: a fused
    multiply-add), inactive ones stay bit for bit."""
    from learning.algorithms.dnc_sac import DnCSAC
    from learning.networks import TaskTwinCritics

    torch.manual_seed(9)
    learner = DnCSAC.__new__(DnCSAC)
    learner.critics = TaskTwinCritics(4, 3, 2, (6,), layer_norm=True)
    learner.target_critics = TaskTwinCritics(4, 3, 2, (6,), layer_norm=True)
    learner.tau = 0.05
    tasks = np.array(tasks)
    before = [p.detach().clone() for p in learner.target_critics.parameters()]
    learner._update_targets(tasks)
    for old, new, online in zip(
        before, learner.target_critics.parameters(), learner.critics.parameters(), strict=True
    ):
        for task in range(4):
            if tasks[task]:
                expected = old[task] + 0.05 * (online[task].detach() - old[task])
                torch.testing.assert_close(new[task].detach(), expected, rtol=1e-6, atol=1e-7)
            else:
                assert torch.equal(new[task].detach(), old[task])
    moved = [p.detach().clone() for p in learner.target_critics.parameters()]
    learner._update_targets(np.zeros(4, bool))  # no task: nothing moves
    assert all(
        torch.equal(a, b) for a, b in zip(moved, learner.target_critics.parameters(), strict=True)
    )


@pytest.mark.parametrize('rows', ROW_TASK_IDS)
def test_critics_for_rows_matches_each_row_task_and_each_task_is_forward(rows):
    """``for_rows`` with task ids evaluates row b by task ``task_ids[b]``'s critics (any inner
    batch shape); with ``EACH_TASK`` it is ``forward`` (row i by task i)."""
    torch.manual_seed(15)
    critics = TaskTwinCritics(N_TASKS, IN, OUT, (8,), layer_norm=True)
    _randomize(critics)
    task_ids = torch.tensor(ROW_TASK_IDS[rows])
    n_rows = len(task_ids)
    states, actions = torch.randn(n_rows, 3, IN), torch.rand(n_rows, 3, OUT)
    q1, q2 = critics.for_rows(task_ids, states, actions)
    flat_q1, _ = critics.for_rows(task_ids, states[:, 0], actions[:, 0])
    assert q1.shape == q2.shape == (n_rows, 3) and flat_q1.shape == (n_rows,)
    for row, task in enumerate(task_ids.tolist()):
        for k in range(3):
            torch.testing.assert_close(
                q1[row, k],
                _critic_reference(critics.q1, task, states[row, k], actions[row, k]),
                atol=1e-5,
                rtol=1e-5,
            )
            torch.testing.assert_close(
                q2[row, k],
                _critic_reference(critics.q2, task, states[row, k], actions[row, k]),
                atol=1e-5,
                rtol=1e-5,
            )
        torch.testing.assert_close(flat_q1[row], q1[row, 0], atol=1e-6, rtol=1e-6)
    per_task = torch.randn(N_TASKS, 4, IN), torch.rand(N_TASKS, 4, OUT)
    for each, forward in zip(
        critics.for_rows(networks.EACH_TASK, *per_task), critics(*per_task), strict=True
    ):
        assert torch.equal(each, forward)


def test_policies_for_rows_of_each_task_is_forward():
    torch.manual_seed(16)
    actors = TaskTanhGaussianPolicies(N_TASKS, IN, OUT, HIDDEN)
    states = torch.randn(N_TASKS, 4, IN)
    assert torch.equal(actors.for_rows(networks.EACH_TASK, states).mean, actors(states).mean)
    flat = actors.for_rows(torch.tensor([1, 0]), states[0, :2])
    nested = actors.for_rows(torch.tensor([1, 0]), states[0, :2, None])
    assert flat.mean.shape == (2, OUT)
    torch.testing.assert_close(flat.mean, nested.mean[:, 0])
    torch.testing.assert_close(flat.stddev, nested.stddev[:, 0])


@pytest.mark.parametrize('layer_norm, out_features', [(False, 1), (True, 1), (False, None)])
def test_large_batch_per_task_matmuls_compute_what_the_batched_path_does(
    monkeypatch, layer_norm, out_features
):
    """From ``PER_TASK_MATMUL_MIN_ROWS`` rows per task ``TaskMLP.forward`` runs one addmm
    chain per task: same outputs and parameter gradients as the baddbmm path, to float
    rounding, and task i's output depends on task i's parameters only."""
    from learning.networks import separate

    torch.manual_seed(21)
    mlp = TaskMLP(N_TASKS, IN, HIDDEN, out_features, 'xavier_normal', layer_norm)
    if layer_norm:  # non-trivial affines, so that a mixed-up task would show
        for norm in mlp.norms:
            nn.init.normal_(norm.weight)
            nn.init.normal_(norm.bias)
    x = torch.randn(N_TASKS, 40, IN)
    results = {}
    for path, threshold in (('batched', 10**9), ('per task', 40)):
        monkeypatch.setattr(separate, 'PER_TASK_MATMUL_MIN_ROWS', threshold)
        mlp.zero_grad(set_to_none=True)
        output = mlp(x)
        (output * torch.arange(output.numel()).view_as(output).sin()).sum().backward()
        results[path] = (output.detach(), [p.grad.clone() for p in mlp.parameters()])
    torch.testing.assert_close(results['per task'][0], results['batched'][0])
    for per_task_grad, batched_grad in zip(
        results['per task'][1], results['batched'][1], strict=True
    ):
        torch.testing.assert_close(per_task_grad, batched_grad)
    monkeypatch.setattr(separate, 'PER_TASK_MATMUL_MIN_ROWS', 40)
    with torch.no_grad():
        for param in mlp.parameters():
            param[1].add_(1.0)  # task 1's parameters only
    moved = mlp(x).detach()
    assert torch.equal(moved[[0, 2]], results['per task'][0][[0, 2]])
    assert not torch.allclose(moved[1], results['per task'][0][1])


def test_large_batch_actor_heads_run_as_one_layer_with_the_same_results(monkeypatch):
    """Task by task the actors' mean and log-std heads run as one (hidden, 2A) matmul: the
    same mean and log-std to the bit, and the same parameter gradients to float rounding,
    as the two batched heads."""
    from learning.networks import separate

    torch.manual_seed(22)
    actors = TaskTanhGaussianPolicies(N_TASKS, IN, OUT, HIDDEN)
    states = torch.randn(N_TASKS, 40, IN)
    results = {}
    for path, threshold in (('batched', 10**9), ('per task', 40)):
        monkeypatch.setattr(separate, 'PER_TASK_MATMUL_MIN_ROWS', threshold)
        actors.zero_grad(set_to_none=True)
        mean, log_std = actors.gaussian_parameters(states)
        weights = torch.arange(mean.numel()).view_as(mean)
        (mean * weights.sin() + log_std * weights.cos()).sum().backward()
        results[path] = (mean.detach(), log_std.detach(), [p.grad for p in actors.parameters()])
    assert torch.equal(results['per task'][0], results['batched'][0])
    assert torch.equal(results['per task'][1], results['batched'][1])
    for per_task_grad, batched_grad in zip(
        results['per task'][2], results['batched'][2], strict=True
    ):
        torch.testing.assert_close(per_task_grad, batched_grad)
