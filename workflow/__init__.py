"""The researcher's workflow around ``run.py``: sweeps, paper-style figures, policy replay.

The command lines are the top-level ``sweep.py``, ``plot.py`` and ``run_policy.py``; this
package holds their logic so that it can be tested without a subprocess.
"""
