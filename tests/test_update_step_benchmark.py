"""``benchmarks/update_step.py --quick`` runs to the end (crashes only; timings are not checked)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'update_step.py'), '--quick'],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith('jaco ') and ' new ' in line for line in lines)
    assert any(line.startswith('mt10 ') and ' loop ' in line for line in lines)
    assert any(line.startswith('MT50: ') and 'bytes/transition' in line for line in lines)
    for shape in ('jaco', 'mt10'):
        assert any(line.startswith(f'{shape}: ') and 'GFLOP/s achieved' in line for line in lines)
