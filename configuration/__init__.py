"""The configuration layer: what a run may be asked to do, checked before anything starts.

``methods.py`` is the one table of methods, ``flags.py`` every flag of ``run.py`` and
``validation.py`` the checks of a configuration and of a run directory to resume. The
per-environment presets and how flags combine are in ``experiment_utils.py``.
"""
