"""Measure a worker's throughput on a pre-filled topic from its committed offsets."""
from __future__ import annotations

import asyncio
import time

from streams.config import Settings
from streams.kafka.lag import LagReader
from streams.devtools.supervisor import WorkerProcess


def worker_throughput(settings: Settings, n: int, timeout_s: float = 1800) -> float:
    """Events/s from the worker's first commit to the commit of the last of ``n`` messages.

    Commits follow the ClickHouse write, so this counts only stored (and checked) events, and
    start-up (group join, model load) is excluded.
    """
    worker = WorkerProcess(settings).start()
    try:
        return asyncio.run(_time_commits(settings, n, timeout_s, worker))
    finally:
        worker.stop()


async def _time_commits(settings: Settings, n: int, timeout_s: float, worker: WorkerProcess) -> float:
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout_s
    async with LagReader(settings.kafka_bootstrap) as reader:  # one pair of connections for every look
        while time.monotonic() < deadline:
            lag = await reader.lag_if_ready(settings.consumer_group, [settings.calls_topic])
            remaining = sum(lag.values()) if lag else n
            now = time.perf_counter()
            if first is None and remaining < n:
                first = (now, n - remaining)
            if remaining == 0 and first is not None:
                return (n - first[1]) / (now - first[0])
            await asyncio.sleep(0.1)
    raise TimeoutError(worker.log_text()[-3000:])
