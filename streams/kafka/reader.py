"""Read a whole topic from the beginning (dead-letter summaries, tests)."""
from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer


async def read_topic(bootstrap: str, topic: str, expected: int | None = None, timeout_s: float = 30) -> list[Any]:
    """Every record of ``topic`` (up to ``expected`` if given, then one more short poll to catch extras)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while (expected is None or len(out) < expected) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and expected is None and out:
                break
            for records in batch.values():
                out.extend(records)
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            out.extend(records)
    finally:
        await consumer.stop()
    return out
