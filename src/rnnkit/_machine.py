"""What machine a benchmark ran on, for its report (``benchmarks/``): the same code can give other numbers on
another CPU.

The classical fits behind the application tables choose between near-equal models, and a network's training
is float arithmetic whose rounding follows the kernels torch picks for the CPU (AVX-512, AVX2 or default,
``ATEN_CPU_CAPABILITY``): an M3 series' ETS chose a damped trend on an AVX2 machine and an undamped one on
an AVX-512 machine (docs/applications.md). So the benchmarks that write a table name the machine.
"""

from __future__ import annotations

import os
import platform


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """The CPU, its usable cores, torch's version, threads and CPU capability (the kernels it dispatches to)."""
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count()
    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": cores,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def machine_line() -> str:
    """One line for a report: ``machine: <CPU>, <n> cores, torch <v> (<capability>, <k> threads)``."""
    m = machine_info()
    return (
        f"machine: {m['processor']}, {m['cpu_count']} cores, torch {m['torch']} "
        f"({m['cpu_capability']}, {m['torch_threads']} threads)"
    )
