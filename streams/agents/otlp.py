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
import logging
from typing import Any

import faust

from streams.kafka.batch_consumer import BatchConsumer
from streams.kafka.send_retry import send_all
from streams.pipeline.dead_letter import deliver
from streams.pipeline.ingest import RawMessage, raw_message
from streams.pipeline.otlp import OtlpProcessor, OtlpRows
from streams.worker.services import Services

log = logging.getLogger(__name__)

#: Decoded batches waiting for their insert: one decodes while one is stored.
PIPELINE_DEPTH = 1
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
    """The OTLP ingest service, when ``LLMWATCH_OTLP_TOPICS`` names topics (else nothing)."""
    s = services.settings
    if not s.otlp_topics.strip():
        return
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    calls = app.topic(s.calls_topic, value_type=bytes, key_type=bytes)
    send_event = lambda kv: calls.send(key=kv[0], value=kv[1])  # noqa: E731
    send_dead = lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers())  # noqa: E731
    group = f"{s.consumer_group}-otlp"

    class OtlpIngest(faust.Service):
        """Owns one batch consumer per OTLP topic: started and stopped with the app."""

        consumers: list[BatchConsumer]

        async def on_start(self) -> None:
            per_batch = max(1, s.batch_size // SPANS_PER_MESSAGE)
            self.consumers = [BatchConsumer(s.kafka_bootstrap, t, group, per_batch) for t in otlp_topics(s.otlp_topics)]
            for consumer in self.consumers:
                await consumer.start()

        async def on_stop(self) -> None:
            for consumer in self.consumers:
                await consumer.stop()

        @faust.Service.task
        async def _run(self) -> None:
            await services.ready.wait()
            await asyncio.gather(*(run_pipeline(c, services, send_event, send_dead) for c in self.consumers))

    app.service(OtlpIngest)


async def run_pipeline(consumer: BatchConsumer, services: Services, send_event: Any, send_dead: Any) -> None:
    """Decode batch N+1 while batch N is republished; publish and commit strictly in order."""
    s = services.settings
    processor = OtlpProcessor(consumer.topic, services.redactor, s.dead_letter_payload)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[list[Any], list[RawMessage], OtlpRows]] = asyncio.Queue(PIPELINE_DEPTH)
    store = asyncio.ensure_future(_publish_loop(queue, consumer, services, send_event, send_dead))
    try:
        while True:
            records = await consumer.take(s.batch_within_s)
            if not records:
                if store.done():
                    return store.result()
                continue
            messages = [raw_message(r) for r in records]
            try:
                batch = await loop.run_in_executor(services.decode_thread, processor.process, messages, True)
                await queue.put((records, messages, batch))
            except BaseException:
                await consumer.abandon()
                raise
    finally:
        store.cancel()
        await asyncio.gather(store, return_exceptions=True)
        while not queue.empty():  # decoded, never stored: read again by whoever owns them next
            queue.get_nowait()
            await consumer.abandon()


async def _publish_loop(queue: asyncio.Queue, consumer: BatchConsumer, services: Services,
                        send_event: Any, send_dead: Any) -> None:
    metrics = services.metrics
    while True:
        records, messages, batch = await queue.get()
        rejected = batch.dead_letters
        try:
            await send_all(send_event, batch.events, what="bridged span")
            await deliver(send_dead, rejected)
        except BaseException:
            await consumer.abandon()
            raise
        await consumer.commit(records)
        metrics.events.labels("otlp").inc(batch.spans)
        metrics.events.labels("otlp_skipped").inc(batch.skipped)
        for d in rejected:
            metrics.dead_letters.labels(d.reason).inc()
        if rejected:
            log.warning("dead-lettered %d of %d OTLP messages from %s", len(rejected), len(messages), consumer.topic)
