"""Consumer-group lag read from a real broker: the numbers the benchmarks, the demo and the
``llmwatch_consumer_lag`` gauge rely on."""
from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.devtools.kafka_local import create_topics
from streams.kafka.lag import LagReader, consumer_lag, wait_caught_up


async def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, f"m{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _first_lag(reader: LagReader, group: str, topic: str) -> dict[TopicPartition, int]:
    """The first read on a fresh broker may find the group coordinator still loading."""
    for _ in range(60):
        lag = await reader.lag_if_ready(group, [topic])
        if lag is not None:
            return lag
        await asyncio.sleep(0.5)
    raise TimeoutError("group coordinator never became available")


async def _commit(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


def test_one_reader_follows_commits(kafka_bootstrap: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, {topic: 2})
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    async def scenario() -> list[dict[TopicPartition, int]]:
        await _produce(kafka_bootstrap, topic, 5)
        seen = []
        async with LagReader(kafka_bootstrap) as reader:
            seen.append(await _first_lag(reader, group, topic))  # nothing committed yet
            await _commit(kafka_bootstrap, group, tp0, 3)
            seen.append(await reader.lag(group, [topic]))
            await _commit(kafka_bootstrap, group, tp0, 5)
            seen.append(await reader.lag(group, [topic]))
        return seen

    before, partly, done = asyncio.run(scenario())
    assert before == {tp0: 5, tp1: 0}
    assert partly == {tp0: 2, tp1: 0}
    assert done == {tp0: 0, tp1: 0}
    assert asyncio.run(consumer_lag(kafka_bootstrap, group, [topic])) == {tp0: 0, tp1: 0}


def test_wait_caught_up_sees_a_later_commit(kafka_bootstrap: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, {topic: 1})
    tp = TopicPartition(topic, 0)

    async def scenario() -> tuple[bool, bool]:
        await _produce(kafka_bootstrap, topic, 3)
        not_yet = await wait_caught_up(kafka_bootstrap, group, [topic], timeout_s=1.0, poll_s=0.1)
        waiting = asyncio.ensure_future(wait_caught_up(kafka_bootstrap, group, [topic], timeout_s=30.0, poll_s=0.1))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await _commit(kafka_bootstrap, group, tp, 3)
        return not_yet, await waiting

    not_yet, caught_up = asyncio.run(scenario())
    assert not_yet is False
    assert caught_up is True
