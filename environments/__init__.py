"""Multi-task environments: the shared contract (``multitask``), the registry of ids, and the
environment families. The garage compatibility layer is applied before any garage import."""

import infrastructure.garage_compat  # noqa: F401  (must precede any garage import)
