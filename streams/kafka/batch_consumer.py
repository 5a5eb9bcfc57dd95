"""A Kafka consumer that hands out whole batches and commits only what the caller says is done.

Faust's streams wrap every message in an event object and ack it one at a time; at ingest rates
that bookkeeping costs more than decoding. This reads ``getmany`` batches straight from aiokafka
and commits, per partition, the offset after the last message of a batch once its rows are
stored. A rebalance waits for the batches already handed out to be committed before the
partitions go, so the next owner starts exactly where this one stopped.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

log = logging.getLogger(__name__)


class _DrainOnRevoke(ConsumerRebalanceListener):
    def __init__(self, owner: "BatchConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.owner.drain()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("batch consumer %s: assigned %s", self.owner.group, sorted(tp.partition for tp in assigned))


class BatchConsumer:
    """``getmany`` batches of ``topic`` in consumer group ``group``; ``commit(batch)`` after storing it.

    Batches must be committed in the order they were taken (a pipeline that stores in order does).
    ``topic`` may be a list: with ``co_partitioned``, partition *i* of every topic goes to the same
    member of the group (range assignment), so a join of topics keyed alike stays in one process.
    """

    def __init__(self, bootstrap: str, topic: str | Sequence[str], group: str, max_records: int,
                 co_partitioned: bool = False, **options: Any) -> None:
        self.group = group
        self.topics = [topic] if isinstance(topic, str) else list(topic)
        self.topic = self.topics[0]
        if co_partitioned:
            options["partition_assignment_strategy"] = (RangePartitionAssignor,)
        self.max_records = max_records
        self._in_flight = 0
        self._stopping = False
        self._settled = asyncio.Condition()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            # Big fetches: the per-request cost, not the bytes, bounds a small machine.
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **options,
        )

    async def start(self) -> None:
        self.consumer.subscribe(self.topics, listener=_DrainOnRevoke(self))
        await self.consumer.start()

    async def stop(self) -> None:
        """Leave the group. Batches still in flight are not waited for: uncommitted, they are
        read again by the next owner."""
        async with self._settled:
            self._stopping = True
            self._settled.notify_all()
        await self.consumer.stop()

    async def take(self, timeout_s: float) -> list[Any]:
        """The next batch (possibly empty after ``timeout_s``), in partition order; it counts as
        in flight until :meth:`commit` or :meth:`abandon`."""
        fetched = await self.consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=self.max_records)
        records = [r for tp in sorted(fetched, key=lambda tp: tp.partition) for r in fetched[tp]]
        if records:
            self._in_flight += 1
        return records

    async def commit(self, records: Sequence[Any]) -> None:
        """Commit the offset after the last record of each partition in ``records``."""
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            offsets[TopicPartition(r.topic, r.partition)] = r.offset + 1
        try:
            if offsets:
                await self.consumer.commit(offsets)
        finally:
            await self._settle()

    async def abandon(self) -> None:
        """A batch that will not be committed (the worker is stopping): it is read again later."""
        await self._settle()

    async def _settle(self) -> None:
        async with self._settled:
            self._in_flight -= 1
            self._settled.notify_all()

    async def drain(self) -> None:
        """Wait until every batch handed out is committed or abandoned."""
        async with self._settled:
            await self._settled.wait_for(lambda: self._in_flight <= 0 or self._stopping)
