"""The body of one sweep job: run one ``run.py`` command line, its output to a log file.

Kept to the standard library and pickled by value (``workflow/sweeps.py``), so a Slurm or local
submitit job can run it without this repository being importable in the job's interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys


def run_command(argv: list[str], cwd: str, log_path: str, threads: int) -> int:
    """Runs ``python ARGV`` in ``cwd`` with ``threads`` OpenMP threads; returns its exit code.

    stdout and stderr go to ``log_path`` (appended: a resumed run keeps its earlier output).
    """
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    env = dict(
        os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1'
    )
    with open(log_path, 'a') as log:
        log.write(f'$ python {" ".join(argv)}\n')
        log.flush()
        process = subprocess.run(
            [sys.executable, *argv],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return process.returncode
