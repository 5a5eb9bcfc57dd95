"""Consumer-group progress read from Kafka: committed offsets against end offsets.

Committed offsets move only after ClickHouse accepted a batch, so a lag of zero means every
message up to the end of the topic is stored or dead-lettered.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

#: One consumer group, or several that all read the same topics (lag: the slowest one's).
Groups = str | Sequence[str]


class LagReader:
    """One consumer and one admin client for repeated lag reads (a poll loop would otherwise
    open and close two connections per look, which costs the broker more than the look).

    Use as ``async with LagReader(bootstrap) as reader: await reader.lag(group, topics)``.
    """

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> "LagReader":
        try:
            await self.consumer.start()
            await self.admin.start()
        except BaseException:
            # a failed start leaves connections open: close both (closing an unstarted client is a no-op)
            await self.consumer.stop()
            await self.admin.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.admin.close()

    async def lag(self, group: Groups, topics: Iterable[str]) -> dict[TopicPartition, int]:
        """Messages not yet committed by ``group`` (by the slowest of several groups), per
        partition of ``topics``."""
        partitions = await _partitions(self.admin, topics)
        if not partitions:
            return {}
        ends = await self.consumer.end_offsets(partitions)
        lag = {tp: 0 for tp in partitions}
        for name in (group,) if isinstance(group, str) else group:
            committed = await self.admin.list_consumer_group_offsets(name, partitions=partitions)
            for tp in partitions:
                done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                lag[tp] = max(lag[tp], ends[tp] - done)
        return lag

    async def lag_if_ready(self, group: Groups, topics: Iterable[str]) -> dict[TopicPartition, int] | None:
        """:meth:`lag`, or None while the broker answers with a retriable error (on a fresh
        broker the group coordinator is still loading); other errors are raised."""
        try:
            return await self.lag(group, topics)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return None


async def consumer_lag(bootstrap: str, group: Groups, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Messages not yet committed by ``group``, per partition of ``topics``."""
    async with LagReader(bootstrap) as reader:
        return await reader.lag(group, topics)


async def _partitions(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the topics that exist (missing topics have none)."""
    out = []
    for desc in await admin.describe_topics(list(topics)):
        if desc.get("error_code", 0) == 0:
            out.extend(TopicPartition(desc["topic"], p["partition"]) for p in desc["partitions"])
    return sorted(out)


async def wait_caught_up(
    bootstrap: str,
    group: Groups,
    topics: Iterable[str],
    timeout_s: float,
    poll_s: float = 0.5,
    keep_waiting: Callable[[], bool] = lambda: True,
) -> bool:
    """Wait until ``group`` has committed every message of ``topics``; False on timeout, or as
    soon as ``keep_waiting()`` says no (the consumer died, say)."""
    topics = list(topics)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with LagReader(bootstrap) as reader:
        while loop.time() < deadline and keep_waiting():
            lag = await reader.lag_if_ready(group, topics)
            if lag and sum(lag.values()) == 0:
                return True
            await asyncio.sleep(poll_s)
    return False
