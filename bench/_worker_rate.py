"""Measure a worker's throughput on a pre-filled topic from its committed offsets."""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from streams.config import Settings
from streams.devtools.supervisor import WorkerProcess
from streams.kafka.lag import LagReader


@dataclass(frozen=True)
class Rate:
    """Events/s between the first and the last commit, and the worker's CPU seconds meanwhile."""

    events_per_s: float
    events: int
    cpu_s: float

    @property
    def cpu_ms_per_1000(self) -> float:
        """CPU milliseconds the worker process spent per 1,000 events (all its threads)."""
        return 1e6 * self.cpu_s / max(1, self.events)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_throughput(settings: Settings, n: int, timeout_s: float = 1800) -> float:
    """Events/s from the worker's first commit to the commit of the last of ``n`` messages.

    Commits follow the ClickHouse write, so this counts only stored (and checked) events, and
    start-up (group join, model load) is excluded.
    """
    return worker_rate(settings, n, timeout_s).events_per_s


def worker_rate(settings: Settings, n: int, timeout_s: float = 1800) -> Rate:
    """:func:`worker_throughput` with the worker's CPU time over the same interval."""
    worker = WorkerProcess(settings).start()
    try:
        return asyncio.run(_time_commits(settings, n, timeout_s, worker))
    finally:
        worker.stop()


async def _time_commits(settings: Settings, n: int, timeout_s: float, worker: WorkerProcess) -> Rate:
    first: tuple[float, int, float] | None = None
    deadline = time.monotonic() + timeout_s
    pid = worker.proc.pid
    async with LagReader(settings.kafka_bootstrap) as reader:  # one pair of connections for every look
        while time.monotonic() < deadline:
            lag = await reader.lag_if_ready(settings.calls_groups, [settings.calls_topic])
            remaining = sum(lag.values()) if lag else n
            now = time.perf_counter()
            if first is None and remaining < n:
                first = (now, n - remaining, process_cpu_s(pid))
            if remaining == 0 and first is not None:
                events = n - first[1]
                return Rate(events / (now - first[0]), events, process_cpu_s(pid) - first[2])
            await asyncio.sleep(0.05)
    raise TimeoutError(worker.log_text()[-3000:])
