"""The OTLP bridge: the Collector's kafkaexporter topics -> GenAI spans -> native events on the calls topic.

For apps instrumented with OpenTelemetry rather than llmwatch's SDK: a Collector with the
kafkaexporter writes ``ExportTraceServiceRequest`` messages (``otlp_proto`` or ``otlp_json``) to
the topics named in ``LLMWATCH_OTLP_TOPICS``. The shape is the ingest agent's
(:mod:`streams.agents.ingest`): one :class:`~streams.kafka.batch_consumer.BatchConsumer` per
topic in a consumer group of its own (``<consumer group>-otlp``), decoding on the decode thread
(:class:`~streams.pipeline.otlp.OtlpProcessor`). Each GenAI span is republished to the calls topic
as a native JSON event keyed by its app, so it takes exactly the path of an event sent with
llmwatch's SDK: ingest into ``llm_calls``, every detector, drift keyed by app, alerts. Offsets are
committed only after the broker acknowledged every republished event and the dead letters; a
replay after a crash republishes events with the same ``event_id`` (``otlp-<trace id>-<span id>``),
which ingest and the detection sink drop as producer-side duplicates.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from typing import Any

import faust

from streams.agents.batching import register_consumers, run_pipelined
from streams.kafka.batch_consumer import BatchConsumer
from streams.kafka.send_retry import send_all
from streams.pipeline.dead_letter import DeadLetter, deliver
from streams.pipeline.ingest import RawMessage, raw_message
from streams.pipeline.otlp import OtlpProcessor, OtlpRows
from streams.pipeline.otlp_join import OtlpJoin, Released
from streams.worker.services import Services

log = logging.getLogger(__name__)

#: ``LLMWATCH_BATCH_SIZE`` counts rows; an OTLP message holds many spans (the Collector's batch
#: processor sends up to 8,192), so a batch takes this many times fewer messages.
SPANS_PER_MESSAGE = 100


def otlp_topics(topics: str) -> list[str]:
    """``LLMWATCH_OTLP_TOPICS`` as a list.

    >>> otlp_topics(" otlp_spans, otlp_json ,")
    ['otlp_spans', 'otlp_json']
    """
    return [t.strip() for t in topics.split(",") if t.strip()]


def register(app: faust.App, services: Services) -> None:
    """The OTLP bridge, when ``LLMWATCH_OTLP_TOPICS`` names topics (else nothing)."""
    s = services.settings
    if not s.otlp_topics.strip():
        if s.otlp_logs_topic:
            raise ValueError("LLMWATCH_OTLP_LOGS_TOPIC is set but LLMWATCH_OTLP_TOPICS is empty; fix: name the spans topic(s) too")
        return
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    calls = app.topic(s.calls_topic, value_type=bytes, key_type=bytes)
    send_event = lambda kv: calls.send(key=kv[0], value=kv[1])  # noqa: E731
    send_dead = lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers())  # noqa: E731
    group = f"{s.consumer_group}-otlp"
    per_batch = max(1, s.batch_size // SPANS_PER_MESSAGE)
    topics = otlp_topics(s.otlp_topics)
    if s.otlp_logs_topic:  # one consumer over spans and logs, co-partitioned so a trace's both halves meet here
        register_consumers(
            app, services,
            lambda: [BatchConsumer(s.kafka_bootstrap, [*topics, s.otlp_logs_topic], group, per_batch, co_partitioned=True)],
            lambda consumer: run_joined(consumer, services, send_event, send_dead),
        )
        return
    register_consumers(
        app, services,
        lambda: [BatchConsumer(s.kafka_bootstrap, t, group, per_batch) for t in topics],
        lambda consumer: run_pipeline(consumer, services, send_event, send_dead),
    )


async def run_pipeline(consumer: BatchConsumer, services: Services, send_event: Any, send_dead: Any) -> None:
    """Decode batch N+1 while batch N is republished; publish and commit strictly in order."""
    s = services.settings
    processor = OtlpProcessor(consumer.topic, services.redactor, s.dead_letter_payload)
    loop = asyncio.get_running_loop()
    metrics = services.metrics

    async def decode(messages: list[RawMessage]) -> OtlpRows:
        return await loop.run_in_executor(services.decode_thread, processor.process, messages, True)

    async def publish(messages: list[RawMessage], batch: OtlpRows) -> None:
        await send_all(send_event, batch.events, what="bridged span")
        await deliver(send_dead, batch.dead_letters)

    def count(messages: list[RawMessage], batch: OtlpRows, _: None) -> None:
        _count(metrics, batch.spans, batch.skipped, batch.dead_letters)
        if batch.dead_letters:
            log.warning("dead-lettered %d of %d OTLP messages from %s", len(batch.dead_letters), len(messages), consumer.topic)

    await run_pipelined(consumer, s.batch_within_s, decode, publish, count)


async def run_joined(consumer: BatchConsumer, services: Services, send_event: Any, send_dead: Any) -> None:
    """Spans and their content logs (``LLMWATCH_OTLP_LOGS_TOPIC``) through :class:`OtlpJoin`.

    A batch is committed once nothing of it waits in the join and everything it released is
    published, in the order batches were taken; a batch still open when the worker stops is
    abandoned and read again by the next owner.
    """
    s = services.settings
    processors = {t: OtlpProcessor(t, services.redactor, s.dead_letter_payload) for t in otlp_topics(s.otlp_topics)}
    join = OtlpJoin(processors, s.otlp_logs_topic, s.otlp_join_wait_s)
    loop = asyncio.get_running_loop()
    taken: deque[tuple[int, list[Any]]] = deque()
    try:
        for number in itertools.count():
            deadline = join.next_deadline()
            wait = s.batch_within_s if deadline is None else min(s.batch_within_s, max(0.0, deadline - time.monotonic()))
            records = await consumer.take(wait)
            if records:
                taken.append((number, records))
            released = await loop.run_in_executor(services.decode_thread, _join_step, join, number, records)
            await send_all(send_event, released.events, what="bridged span")
            await deliver(send_dead, released.dead_letters)
            _count_joined(services, released)
            while taken and not join.is_open(taken[0][0]):
                await consumer.commit(taken.popleft()[1])
    finally:
        for _ in taken:  # waiting in the join, or released but not yet published: read again later
            await consumer.abandon()


def _join_step(join: OtlpJoin, number: int, records: list[Any]) -> Released:
    """Add a batch (grouped by topic) to the join and release what is ready; on the decode thread."""
    now = time.monotonic()
    for topic, group in itertools.groupby(sorted(records, key=lambda r: r.topic), key=lambda r: r.topic):
        join.add(number, topic, [raw_message(r) for r in group], now)
    return join.release(now)


def _count_joined(services: Services, released: Released) -> None:
    metrics = services.metrics
    _count(metrics, released.spans, released.skipped, released.dead_letters)
    metrics.events.labels("otlp_joined").inc(released.joined)
    metrics.events.labels("otlp_unjoined").inc(released.unjoined)
    metrics.events.labels("otlp_orphan_logs").inc(released.orphan_logs)


def _count(metrics: Any, spans: int, skipped: int, dead_letters: list[DeadLetter]) -> None:
    """What both OTLP loops count: GenAI spans bridged, other spans skipped, dead letters by reason."""
    metrics.events.labels("otlp").inc(spans)
    metrics.events.labels("otlp_skipped").inc(skipped)
    for d in dead_letters:
        metrics.dead_letters.labels(d.reason).inc()
