"""The application-side producer against a real broker, and against no broker at all."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer

from streams.pipeline.codec import EventCodec
from streams.devtools.generator import Generator
from streams.devtools.kafka_local import LocalKafka, create_topics_async, free_port
from streams.client.producer import InvalidEventError, LLMWatchProducer, SyncLLMWatchProducer


async def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def fresh_topic(bootstrap: str, partitions: int = 4) -> str:
    topic = f"test.producer.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics_async(bootstrap, {topic: partitions}))
    return topic


def test_round_trip_avro(kafka_bootstrap: str) -> None:
    topic = fresh_topic(kafka_bootstrap)
    events = list(Generator(seed=11).events(200))

    async def produce() -> None:
        async with LLMWatchProducer(kafka_bootstrap, topic) as producer:
            assert all(producer.send(e) for e in events)
            assert await producer.flush(30)
            stats = producer.stats()
            assert (stats.sent, stats.dropped, stats.errors, stats.invalid, stats.buffered) == (200, 0, 0, 0, 0)

    asyncio.run(produce())
    records = asyncio.run(consume(kafka_bootstrap, topic, 200))
    codec = EventCodec()
    decoded = [(r, codec.decode(r.value)) for r in records]
    assert sorted(d.record["event_id"] for _, d in decoded) == sorted(e["event_id"] for e in events)
    assert all(d.schema_id == codec.latest_id for _, d in decoded)
    assert all(r.key == d.record["service_name"].encode() for r, d in decoded)
    # Keyed by service: each app's events arrive in the order they were sent.
    sent_order = defaultdict(list)
    for e in events:
        sent_order[e["service_name"]].append(e["event_id"])
    got_order = defaultdict(list)
    for _, d in sorted(decoded, key=lambda rd: (rd[0].partition, rd[0].offset)):
        got_order[d.record["service_name"]].append(d.record["event_id"])
    assert got_order == sent_order


def test_sync_round_trip_json_fills_ids(kafka_bootstrap: str) -> None:
    topic = fresh_topic(kafka_bootstrap, partitions=1)
    before = int(time.time() * 1000)
    with SyncLLMWatchProducer(kafka_bootstrap, topic, wire_format="json") as producer:
        for i in range(50):
            assert producer.send({"service_name": "app", "request_model": "m", "output_text": f"answer {i}"})
        assert producer.flush(30)
        assert producer.stats().sent == 50
    records = asyncio.run(consume(kafka_bootstrap, topic, 50))
    decoded = [EventCodec().decode(r.value) for r in records]
    assert [d.record["output_text"] for d in decoded] == [f"answer {i}" for i in range(50)]
    assert all(d.schema_id == 0 for d in decoded)  # JSON
    assert len({d.record["event_id"] for d in decoded}) == 50
    assert all(uuid.UUID(d.record["event_id"]).version == 4 for d in decoded)
    assert all(before <= d.record["timestamp_ms"] <= time.time() * 1000 for d in decoded)


def test_broker_down_never_blocks_or_raises() -> None:
    """Kafka unreachable: every send returns fast, the buffer stays bounded, close() is quick."""
    port = free_port()  # nothing listens here
    events = list(Generator(seed=3).events(2000))
    producer = SyncLLMWatchProducer(f"127.0.0.1:{port}", "llm.calls", max_buffered=500, log_interval_s=3600)
    durations = []
    for event in events:
        t0 = time.perf_counter()
        producer.send(event)
        durations.append(time.perf_counter() - t0)
    stats = producer.stats()
    assert max(durations) < 0.050, f"slowest send took {max(durations) * 1000:.1f} ms"
    assert stats.sent == 0 and stats.invalid == 0
    assert stats.buffered <= 500
    assert stats.dropped >= len(events) - 500
    t0 = time.perf_counter()
    producer.close(timeout=5)
    assert time.perf_counter() - t0 < 6.0
    final = producer.stats()
    assert final.buffered == 0 and final.dropped == len(events)
    assert producer.send(events[0]) is False  # closed: refused, not raised


def test_broker_down_async_send_is_bounded() -> None:
    port = free_port()

    async def main() -> tuple[float, int]:
        producer = LLMWatchProducer(f"127.0.0.1:{port}", max_buffered=100, log_interval_s=3600)
        await producer.start()
        worst = 0.0
        for event in Generator(seed=4).events(500):
            t0 = time.perf_counter()
            producer.send(event)
            worst = max(worst, time.perf_counter() - t0)
            await asyncio.sleep(0)
        t0 = time.perf_counter()
        await producer.close(timeout=5)
        assert time.perf_counter() - t0 < 5.5
        return worst, producer.stats().dropped

    worst, dropped = asyncio.run(main())
    assert worst < 0.050
    assert dropped == 500


def test_invalid_events_are_counted_not_raised() -> None:
    producer = LLMWatchProducer("127.0.0.1:1")
    assert producer.send({"service_name": "a"}) is False  # no request_model
    assert producer.send({"service_name": "a", "request_model": "m", "input_tokens": "many"}) is False
    assert producer.send({"service_name": " ", "request_model": "m"}) is False  # worker would reject it
    assert producer.stats().invalid == 3
    strict = LLMWatchProducer("127.0.0.1:1", strict=True, wire_format="json")
    with pytest.raises(InvalidEventError):
        strict.send({"service_name": "a", "request_model": "m", "latency_ms": "slow"})


def test_resumes_when_the_broker_comes_up(tmp_path) -> None:
    """Events sent while Kafka is down are delivered once it starts (within the buffer bound)."""
    port = free_port()
    producer = SyncLLMWatchProducer(f"127.0.0.1:{port}", "llm.calls", log_interval_s=3600)
    try:
        events = list(Generator(seed=5).events(100))
        assert all(producer.send(e) for e in events)
        time.sleep(0.5)
        assert producer.stats().sent == 0
        with LocalKafka(tmp_path / "kafka", port=port):
            assert producer.flush(60), producer.stats()
            assert producer.stats().sent == 100
            records = asyncio.run(consume(f"127.0.0.1:{port}", "llm.calls", 100))
            assert sorted(EventCodec().decode(r.value).record["event_id"] for r in records) == sorted(
                e["event_id"] for e in events
            )
    finally:
        producer.close(timeout=2)
