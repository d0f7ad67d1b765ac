"""Tests of ``learning/optim.py``: ``TaskAdam`` equals one ``torch.optim.Adam`` per task."""

import pytest
import torch

from learning.networks import TaskMLP
from learning.optim import TaskAdam

torch.set_num_threads(1)

N_TASKS = 4
LR = 3e-3


def _make_params(seed: int) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(N_TASKS, 3, 5, generator=generator)),
        torch.nn.Parameter(torch.randn(N_TASKS, generator=generator)),
    ]


@pytest.mark.parametrize('betas, eps', [((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-3)])
def test_task_adam_matches_separate_adams(betas, eps):
    torch.manual_seed(0)
    params = _make_params(1)
    optimizer = TaskAdam(params, N_TASKS, lr=LR, betas=betas, eps=eps)
    # One independent Adam per (task, parameter) over a copy of the task's slice.
    references = [
        [torch.nn.Parameter(p.detach()[task].clone()) for p in params] for task in range(N_TASKS)
    ]
    reference_optimizers = [
        torch.optim.Adam(ref, lr=LR, betas=betas, eps=eps) for ref in references
    ]
    n_active_steps = torch.zeros(N_TASKS, dtype=torch.int64)
    generator = torch.Generator().manual_seed(2)
    for step in range(20):
        active = torch.rand(N_TASKS, generator=generator) < 0.6
        if step == 0:
            active = torch.tensor([True, False, True, True])  # task 1 starts late
        # gradients of various scales; inactive tasks get (ignored) gradients too
        grads = [
            torch.randn(p.shape, generator=generator)
            * 10.0 ** torch.randint(-3, 2, (1,), generator=generator).item()
            for p in params
        ]
        optimizer.zero_grad()
        assert all(p.grad is None for p in params)
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.clone()
        before = [p.detach().clone() for p in params]
        moments_before = [
            (m.clone(), v.clone())
            for m, v in zip(optimizer.exp_avg, optimizer.exp_avg_sq, strict=True)
        ]
        optimizer.step(active)
        for task in range(N_TASKS):
            if active[task]:
                n_active_steps[task] += 1
                for ref, grad in zip(references[task], grads, strict=True):
                    ref.grad = grad[task].clone()
                reference_optimizers[task].step()
                reference_optimizers[task].zero_grad()
            else:
                for index, param in enumerate(params):
                    assert torch.equal(param.detach()[task], before[index][task])
                    assert torch.equal(
                        optimizer.exp_avg[index][task], moments_before[index][0][task]
                    )
                    assert torch.equal(
                        optimizer.exp_avg_sq[index][task], moments_before[index][1][task]
                    )
            for index, param in enumerate(params):
                torch.testing.assert_close(
                    param.detach()[task], references[task][index].detach(), atol=1e-6, rtol=1e-6
                )
                if n_active_steps[task] > 0:
                    state = reference_optimizers[task].state[references[task][index]]
                    torch.testing.assert_close(
                        optimizer.exp_avg[index][task], state['exp_avg'], atol=1e-6, rtol=1e-6
                    )
                    torch.testing.assert_close(
                        optimizer.exp_avg_sq[index][task], state['exp_avg_sq'], atol=1e-6, rtol=1e-6
                    )
        for steps in optimizer.steps:
            assert torch.equal(steps, n_active_steps.double())
    # the test exercised both active and inactive steps for every task, and parameters moved
    assert (n_active_steps > 0).all() and (n_active_steps < 20).all()
    assert not torch.allclose(params[0], _make_params(1)[0])


def test_inactive_task_is_bit_identical_even_with_nan_gradients():
    params = _make_params(3)
    optimizer = TaskAdam(params, N_TASKS, lr=LR)
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer.step(torch.ones(N_TASKS, dtype=torch.bool))
    state_before = [p.detach().clone() for p in params]
    moments_before = [
        (m.clone(), v.clone()) for m, v in zip(optimizer.exp_avg, optimizer.exp_avg_sq, strict=True)
    ]
    for param in params:
        grad = torch.randn_like(param)
        grad[2] = float('nan')
        param.grad = grad
    active = torch.tensor([True, True, False, True])
    optimizer.step(active)
    for index, param in enumerate(params):
        assert torch.equal(param.detach()[2], state_before[index][2])
        assert torch.equal(optimizer.exp_avg[index][2], moments_before[index][0][2])
        assert torch.equal(optimizer.exp_avg_sq[index][2], moments_before[index][1][2])
        assert torch.isfinite(param).all()
        assert not torch.equal(param.detach()[0], state_before[index][0])
    assert all(steps.tolist() == [2.0, 2.0, 1.0, 2.0] for steps in optimizer.steps)


def test_first_step_moves_each_active_weight_by_lr():
    """Adam's first step is lr * g / (|g| + eps'), i.e. ~lr * sign(g), for every task."""
    param = torch.nn.Parameter(torch.zeros(N_TASKS, 2, 2))
    optimizer = TaskAdam([param], N_TASKS, lr=0.01)
    grad = torch.tensor([[1.0, -2.0], [0.5, -0.1]]).expand(N_TASKS, 2, 2).clone()
    param.grad = grad
    optimizer.step(torch.tensor([True, False, True, False]))
    expected = -0.01 * torch.sign(grad)
    torch.testing.assert_close(param.detach()[[0, 2]], expected[[0, 2]], atol=1e-6, rtol=0)
    assert torch.equal(param.detach()[[1, 3]], torch.zeros(2, 2, 2))


def test_task_adam_on_a_task_network_loss():
    """Through a real backward pass: only active tasks' slices of every layer change, each as
    a separate Adam over that task's network would move it."""
    torch.manual_seed(4)
    mlp = TaskMLP(N_TASKS, 3, (8,), 1, 'xavier_uniform', layer_norm=True)
    reference = TaskMLP(N_TASKS, 3, (8,), 1, 'xavier_uniform', layer_norm=True)
    reference.load_state_dict(mlp.state_dict())
    optimizer = TaskAdam(mlp.parameters(), N_TASKS, lr=1e-2)
    per_task_refs = [
        [torch.nn.Parameter(p.detach()[t].clone()) for p in reference.parameters()]
        for t in range(N_TASKS)
    ]
    ref_optimizers = [torch.optim.Adam(r, lr=1e-2) for r in per_task_refs]
    active = torch.tensor([True, False, False, True])
    for _ in range(5):
        x = torch.randn(N_TASKS, 16, 3)
        optimizer.zero_grad()
        mlp(x).pow(2).mean().backward()
        grads = [p.grad.clone() for p in mlp.parameters()]
        optimizer.step(active)
        for task in range(N_TASKS):
            if active[task]:
                for ref, grad in zip(per_task_refs[task], grads, strict=True):
                    ref.grad = grad[task].clone()
                ref_optimizers[task].step()
    for task in range(N_TASKS):
        for param, ref in zip(mlp.parameters(), per_task_refs[task], strict=True):
            torch.testing.assert_close(param.detach()[task], ref.detach(), atol=1e-6, rtol=1e-6)
    for param, original in zip(mlp.parameters(), reference.parameters(), strict=True):
        assert torch.equal(param.detach()[[1, 2]], original.detach()[[1, 2]])
        assert not torch.equal(param.detach()[[0, 3]], original.detach()[[0, 3]])


@pytest.mark.parametrize('shape', [(3, 5), (N_TASKS + 1,), (1, N_TASKS)])
def test_parameter_without_task_axis_raises(shape):
    good = torch.nn.Parameter(torch.zeros(N_TASKS, 2))
    bad = torch.nn.Parameter(torch.zeros(*shape))
    with pytest.raises(ValueError, match='leading task axis'):
        TaskAdam([good, bad], N_TASKS, lr=LR)


def test_parameter_without_gradient_does_not_advance_its_step_count():
    first = torch.nn.Parameter(torch.zeros(1, 3))
    second = torch.nn.Parameter(torch.zeros(1, 3))
    optimizer = TaskAdam([first, second], 1, lr=0.1)
    ref_first = torch.nn.Parameter(torch.zeros(3))
    ref_second = torch.nn.Parameter(torch.zeros(3))
    reference = torch.optim.Adam([ref_first, ref_second], lr=0.1)
    # step 1: only the first parameter has a gradient
    first.grad, ref_first.grad = torch.ones(1, 3), torch.ones(3)
    optimizer.step(torch.tensor([True]))
    reference.step()
    # step 2: both have one; the second parameter's first Adam step is lr * sign(g)
    grad = torch.tensor([0.5, -1.0, 2.0])
    for param, ref in ((first, ref_first), (second, ref_second)):
        param.grad, ref.grad = grad[None].clone(), grad.clone()
    optimizer.step(torch.tensor([True]))
    reference.step()
    torch.testing.assert_close(ref_second.detach(), -0.1 * torch.sign(grad))
    torch.testing.assert_close(second.detach()[0], ref_second.detach(), atol=1e-6, rtol=1e-6)


def test_task_adam_is_bit_identical_to_fused_separate_adams():
    """The fused path runs torch's fused Adam kernel on the active slices only, so each task
    ends exactly where its own ``torch.optim.Adam(fused=True)`` ends; a transposed
    (non-contiguous) gradient is handled too."""
    params = _make_params(5)
    optimizer = TaskAdam(params, N_TASKS, lr=LR)
    references = [
        [torch.nn.Parameter(p.detach()[task].clone()) for p in params] for task in range(N_TASKS)
    ]
    reference_optimizers = [torch.optim.Adam(ref, lr=LR, fused=True) for ref in references]
    generator = torch.Generator().manual_seed(6)
    schedule = [[True, True, True, True], [True, False, True, False], [False, True, True, True]]
    for step in range(9):
        active = torch.tensor(schedule[step % 3])
        grads = [
            torch.randn(N_TASKS, 5, 3, generator=generator).transpose(1, 2),
            torch.randn(N_TASKS, generator=generator),
        ]
        assert not grads[0].is_contiguous()
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        optimizer.step(active)
        for task in active.nonzero().flatten().tolist():
            for ref, grad in zip(references[task], grads, strict=True):
                ref.grad = grad[task].contiguous()
            reference_optimizers[task].step()
    for task in range(N_TASKS):
        for param, ref in zip(params, references[task], strict=True):
            assert torch.equal(param.detach()[task], ref.detach())


def test_unpickled_optimizer_steps_its_own_tensors_as_the_original_does():
    """The cached per-task views are not pickled: a copy steps its own parameters and moments
    (not the original's), to the same values as the original."""
    import pickle

    params = _make_params(5)
    optimizer = TaskAdam(params, N_TASKS, lr=LR)
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer.step(torch.tensor([True, False, True, True]))  # builds the views
    copy = pickle.loads(pickle.dumps(optimizer))
    assert copy._views is None
    original_values = [p.detach().clone() for p in params]
    grads = [torch.randn(p.shape, generator=torch.Generator().manual_seed(6)) for p in params]
    for optim in (optimizer, copy):
        for param, grad in zip(optim.params, grads, strict=True):
            param.grad = grad.clone()
        optim.step(torch.ones(N_TASKS, dtype=torch.bool))
    for index, (param, copied) in enumerate(zip(params, copy.params, strict=True)):
        assert not torch.equal(param.detach(), original_values[index])
        assert torch.equal(param.detach(), copied.detach())
        assert torch.equal(optimizer.exp_avg[index], copy.exp_avg[index])
        assert copy.exp_avg[index].data_ptr() != optimizer.exp_avg[index].data_ptr()
    assert all(steps.tolist() == [2.0, 1.0, 2.0, 2.0] for steps in copy.steps)


def test_step_counts_are_float32_next_to_the_parameters_and_move_with_them():
    """The fused kernel reads the counts as floats on the parameters' device (a GPU would
    otherwise get a host copy every step), so they are created there and move with ``to``."""
    params = _make_params(5)
    optimizer = TaskAdam(params, N_TASKS, lr=LR)
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer.step(torch.tensor([True, False, True, True]))
    for steps, param in zip(optimizer.steps, params, strict=True):
        assert steps.dtype == torch.float32 and steps.device == param.device
        assert steps.tolist() == [1.0, 0.0, 1.0, 1.0]
    optimizer.to('meta')
    assert optimizer._views is None
    for tensors in (optimizer.steps, optimizer.exp_avg, optimizer.exp_avg_sq):
        assert all(tensor.device.type == 'meta' for tensor in tensors)


def test_counts_unpickled_from_float64_become_float32_and_step_identically():
    """Snapshots written before the counts moved hold float64 counts on the host; unpickled,
    they are float32 next to the parameters, and the next steps equal the original's."""
    import pickle

    params = _make_params(5)
    optimizer = TaskAdam(params, N_TASKS, lr=LR)
    generator = torch.Generator().manual_seed(7)
    for _ in range(3):
        for param in params:
            param.grad = torch.randn(param.shape, generator=generator)
        optimizer.step(torch.tensor([True, True, False, True]))
    old_format = pickle.loads(pickle.dumps(optimizer))
    old_format.steps = [steps.double() for steps in old_format.steps]
    copy = pickle.loads(pickle.dumps(old_format))
    assert all(steps.dtype == torch.float32 for steps in copy.steps)
    assert all(steps.tolist() == [3.0, 3.0, 0.0, 3.0] for steps in copy.steps)
    grads = [torch.randn(p.shape, generator=generator) for p in params]
    for optim in (optimizer, copy):
        for param, grad in zip(optim.params, grads, strict=True):
            param.grad = grad.clone()
        optim.step(torch.ones(N_TASKS, dtype=torch.bool))
    for param, copied in zip(optimizer.params, copy.params, strict=True):
        assert torch.equal(param.detach(), copied.detach())


@pytest.mark.parametrize('fused', [True, False])
def test_move_optimizer_state_moves_step_counts_only_where_adam_reads_them(fused):
    """Fused (and capturable) Adam reads its step counts on the parameters' device, the plain
    one on the host: a resumed ``--gpu`` run must get each where its Adam expects it."""
    from learning.optim import move_optimizer_state

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([param], lr=LR, fused=fused)
    param.grad = torch.ones(3)
    optimizer.step()
    move_optimizer_state(optimizer, 'meta')
    state = optimizer.state[param]
    assert state['exp_avg'].device.type == 'meta' and state['exp_avg_sq'].device.type == 'meta'
    assert state['step'].device.type == ('meta' if fused else 'cpu')


def test_step_without_any_gradient_changes_nothing():
    params = _make_params(5)
    optimizer = TaskAdam(params, N_TASKS, lr=LR)
    before = [p.detach().clone() for p in params]
    optimizer.step(torch.ones(N_TASKS, dtype=torch.bool))
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True))
    assert all(steps.tolist() == [0.0] * N_TASKS for steps in optimizer.steps)
