"""The speed benchmark runs end to end (for crashes only: timings are never asserted)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
@pytest.mark.mujoco
def test_collection_speed_quick_mode_runs():
    result = subprocess.run([sys.executable, 'benchmarks/collection_speed.py', '--quick'],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ('MetaWorldMT10-v2   qmp_dnc', '2 workers / 1', 'evaluation on JacoReachMT5-v1'):
        assert line in result.stdout, line
