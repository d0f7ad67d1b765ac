"""The machine a benchmark ran on, for the first line of its output.

Figures from different days of a shared VM differ by factors of two and more (the host's CPU
can change between boots), so every benchmark names the CPU model along with the core count.
"""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` reports."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """``'<CPU model>, <n> CPUs'``."""
    return f'{cpu_model()}, {os.cpu_count()} CPUs'
