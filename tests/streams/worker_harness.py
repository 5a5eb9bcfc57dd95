"""Run the real llmwatch worker as a subprocess for integration tests, and read what it stored."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterable

from aiokafka import AIOKafkaProducer

from streams.storage.clickhouse import connect
from streams.config import Settings
from streams.devtools.supervisor import WorkerProcess
from streams.kafka.reader import read_topic

__all__ = ["WorkerProcess", "unique_settings", "produce", "consume_all", "query"]


def unique_settings(bootstrap: str, home: Path, **overrides: Any) -> Settings:
    """Settings with topics and group of their own, so tests sharing a broker don't meet."""
    tag = uuid.uuid4().hex[:8]
    values = dict(
        home=str(home),
        kafka_bootstrap=bootstrap,
        calls_topic=f"calls-{tag}",
        dead_letter_topic=f"calls-{tag}.dlq",
        consumer_group=f"llmwatch-{tag}",
        batch_within_s=0.2,
        # The quality detector costs ~3.6x the injection detector's CPU per event: tests that are
        # about it opt in (test_detection_worker runs all four, as the default worker does).
        detectors="injection,grounding,drift",
    )
    values.update(overrides)
    return Settings(**values)


async def produce(bootstrap: str, topic: str, messages: Iterable[tuple[Any, ...]]) -> int:
    """Send ``(key, value)`` or ``(key, value, headers)`` tuples and wait for every delivery."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024)
    await producer.start()
    count = 0
    try:
        futures = [await producer.send(topic, value=m[1], key=m[0], headers=list(m[2]) if len(m) > 2 else None)
                   for m in messages]
        for fut in futures:
            await fut
            count += 1
    finally:
        await producer.stop()
    return count


async def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list[Any]:
    """Read a topic from the start until ``expected`` messages arrived (plus any extras)."""
    return await read_topic(bootstrap, topic, expected, timeout_s)


def query(settings: Settings, sql: str) -> list[tuple]:
    """Run a query on the worker's ClickHouse (the worker must be stopped for the embedded engine)."""
    client = connect(settings.dsn)
    try:
        return client.query(sql).result_rows
    finally:
        client.close()
