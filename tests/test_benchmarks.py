"""The speed benchmark runs end to end (for crashes only: timings are never asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO_ROOT


def _quick_mode_output(script: str, timeout: int, *flags: str) -> str:
    """The stdout of ``benchmarks/<script> [flags] --quick``, which must exit with 0."""
    result = subprocess.run(
        [sys.executable, f'benchmarks/{script}', *flags, '--quick'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.mujoco
def test_collection_speed_quick_mode_runs():
    stdout = _quick_mode_output('collection_speed.py', timeout=600)
    for line in ('MetaWorldMT10-v2   qmp_dnc', '2 workers / 1', 'evaluation on JacoReachMT5-v1'):
        assert line in stdout, line


@pytest.mark.slow
@pytest.mark.mujoco
def test_mtsac_step_quick_mode_runs():
    lines = _quick_mode_output('mtsac_step.py', timeout=600).splitlines()
    for setting in ('pointwall ', 'jaco ', 'pointwall+pcgrad '):
        assert any(line.startswith(setting) and 'baseline/new' in line for line in lines), setting


def test_row_groups_quick_mode_runs_and_both_paths_agree():
    rows = [
        line
        for line in _quick_mode_output('row_groups.py', timeout=300).splitlines()
        if ' ms ' in line
    ]
    assert len(rows) == 4
    for row in rows:
        assert float(row.split()[-1]) < 1e-5, row  # max |diff| of the two paths' outputs


def _end_to_end():
    sys.path.insert(0, str(REPO_ROOT / 'benchmarks'))
    import end_to_end  # noqa: PLC0415  (a script, not a package)

    return end_to_end


MT10 = {
    'batch_size': 5000,
    'steps_per_epoch': 10,
    'gradient_steps_per_itr': 500,
    'num_evaluation_episodes': 100,
}
WALKER = {
    'batch_size': 4000,
    'steps_per_epoch': 1,
    'gradient_steps_per_itr': 6000,
    'num_evaluation_episodes': 40,
}


def test_a_fraction_of_an_epoch_keeps_the_presets_mix_of_work():
    end_to_end = _end_to_end()
    # MT10, 0.1: one of the ten rounds (preset batch and gradient steps), one evaluation
    # episode per task instead of ten; the first round fills each buffer to its share.
    plan = end_to_end.epoch_plan(MT10, 10, 0.1)
    assert plan.flags == {
        'steps_per_epoch': 1,
        'num_evaluation_episodes': 10,
        'min_buffer_size': 500,
    }
    assert (plan.rounds_fraction, plan.eval_fraction, plan.env_steps_per_epoch) == (
        0.1,
        0.1,
        50_000,
    )
    # A whole epoch changes nothing but the warm-up.
    assert end_to_end.epoch_plan(MT10, 10, 1.0).flags == {
        'steps_per_epoch': 10,
        'num_evaluation_episodes': 100,
        'min_buffer_size': 500,
    }
    # Walker has one round per epoch: a quarter shrinks the round (4000 -> 1000 steps, 6000 ->
    # 1500 gradient steps); 10 evaluation episodes per task -> round(2.5) = 2.
    plan = end_to_end.epoch_plan(WALKER, 4, 0.25)
    assert plan.flags == {
        'steps_per_epoch': 1,
        'batch_size': 1000,
        'gradient_steps_per_itr': 1500,
        'num_evaluation_episodes': 8,
        'min_buffer_size': 250,
    }
    assert (plan.rounds_fraction, plan.eval_fraction) == (0.25, 0.2)
    with pytest.raises(ValueError, match=r'in \(0, 1\]'):
        end_to_end.epoch_plan(MT10, 10, 0.0)


@pytest.mark.slow
@pytest.mark.mujoco
def test_end_to_end_quick_mode_runs():
    stdout = _quick_mode_output('end_to_end.py', 600)
    lines = stdout.splitlines()
    assert any(
        line.startswith('JacoReachMT5-v1 (quick settings) this checkout: ') for line in lines
    ), stdout
    assert any('baseline/this checkout ' in line for line in lines), stdout


def test_a_fractional_epoch_scales_each_part_by_its_share():
    plan = _end_to_end().epoch_plan(WALKER, 4, 0.25)  # rounds 0.25, evaluation 0.2
    times = {'Time/Collect': 1.0, 'Time/Update': 2.0, 'Time/Eval': 4.0}
    # 10 s measured: collection + updates 3 s -> 12 s, evaluation 4 s -> 20 s, the other 3 s.
    assert plan.scale_to_preset(10.0, times) == pytest.approx(35.0)
    assert plan.scale_to_preset(10.0, {}) == pytest.approx(40.0)  # the baseline: no split


def test_gpu_check_runs_on_the_cpu():
    """``--device cpu`` runs the GPU check's gradient steps on the CPU (no GPU in CI)."""
    stdout = _quick_mode_output('gpu_check.py', 300, '--device', 'cpu')
    assert 'jaco: ' in stdout and 'ms per gradient step on cpu' in stdout
    assert 'mtsac+pcgrad: ' in stdout
