"""Describe the machine a benchmark ran on (for BENCHMARKS.md)."""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except FileNotFoundError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"load average {load_average()} (1/5/15 min, when the results were written)"
    )


def load_average() -> str:
    """``os.getloadavg()`` as ``0.80 / 1.02 / 0.95``: how busy the shared machine was."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())
