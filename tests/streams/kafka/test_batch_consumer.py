"""The batch consumer on a real broker: co-partitioned subscriptions for the OTLP spans/logs join."""
from __future__ import annotations

import asyncio
import uuid

from streams.devtools.kafka_local import create_topics
from streams.kafka.batch_consumer import BatchConsumer


async def _assignments(bootstrap: str, topics: list[str], co_partitioned: bool) -> list[set[tuple[str, int]]]:
    """What each of two members of one group gets once the group settles."""
    group = f"copart-{uuid.uuid4().hex[:8]}"
    members = [BatchConsumer(bootstrap, topics, group, 10, co_partitioned=co_partitioned) for _ in range(2)]
    for m in members:
        await m.start()
    try:
        for _ in range(60):
            await asyncio.gather(*(m.take(0.2) for m in members))
            got = [{(tp.topic, tp.partition) for tp in m.consumer.assignment()} for m in members]
            if all(got) and sum(map(len, got)) == 3 * len(topics):
                return got
        raise TimeoutError(f"group never settled: {got}")
    finally:
        for m in members:
            await m.stop()


def test_co_partitioned_members_own_the_same_partition_numbers_of_every_topic(kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = [f"spans-{tag}", f"logs-{tag}"]
    create_topics(kafka_bootstrap, {t: 3 for t in topics})  # odd: round robin would split them
    for owned in asyncio.run(_assignments(kafka_bootstrap, topics, co_partitioned=True)):
        by_topic = [{p for t, p in owned if t == topic} for topic in topics]
        assert by_topic[0] == by_topic[1] and by_topic[0], owned  # a trace's spans and logs meet
