"""The ingest path: calls topic -> decode/validate -> ``llm_calls``, rejects -> dead-letter topic.

It reads whole batches with a :class:`~streams.kafka.batch_consumer.BatchConsumer` in a consumer
group of its own (``Settings.ingest_group``), not through a Faust stream: per-message event
objects and acks cost more than decoding (measured in ``bench/bench_ingest.py``). Two stages
overlap: while one batch is inserted on the ClickHouse thread, the next is decoded on the decode
thread. A batch's offsets are committed only after its rows are written and its dead letters
delivered; a crash or a SIGTERM before that replays it, and the replay guard drops rows that
were already stored.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from streams.kafka.batch_consumer import BatchConsumer
from streams.pipeline.dead_letter import deliver
from streams.pipeline.ingest import IngestBatch, RawMessage, raw_message
from streams.storage.rows import LLM_CALL_COLUMNS
from streams.worker.services import Services

log = logging.getLogger(__name__)

#: Decoded batches waiting for their insert: one decodes while one is stored.
PIPELINE_DEPTH = 1


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    send_dead = lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers())  # noqa: E731

    class BatchIngest(faust.Service):
        """Owns the ingest consumer: started and stopped with the app."""

        consumer: BatchConsumer

        async def on_start(self) -> None:
            self.consumer = BatchConsumer(s.kafka_bootstrap, s.calls_topic, s.ingest_group, s.batch_size)
            await self.consumer.start()

        async def on_stop(self) -> None:
            await self.consumer.stop()

        @faust.Service.task
        async def _run(self) -> None:
            await services.ready.wait()
            await run_pipeline(self.consumer, services, send_dead)

    app.service(BatchIngest)


async def run_pipeline(consumer: BatchConsumer, services: Services, send_dead: Any) -> None:
    """Decode batch N+1 while batch N is stored; store and commit strictly in order."""
    queue: asyncio.Queue[tuple[list[Any], list[RawMessage], IngestBatch]] = asyncio.Queue(PIPELINE_DEPTH)
    store = asyncio.ensure_future(_store_loop(queue, consumer, services, send_dead))
    try:
        while True:
            records = await consumer.take(services.settings.batch_within_s)
            if not records:
                if store.done():
                    return store.result()
                continue
            messages = [raw_message(r) for r in records]
            try:
                batch = await services.retry_while_registry_down(services.processor.process, messages)
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


async def _store_loop(queue: asyncio.Queue, consumer: BatchConsumer, services: Services, send_dead: Any) -> None:
    sink = services.sink("llm_calls", LLM_CALL_COLUMNS, replay_key=())
    metrics = services.metrics
    while True:
        records, messages, batch = await queue.get()
        try:
            refused = await services.write(sink, batch.rows)
            rejected = batch.dead_letters + services.processor.storage_rejected(messages, refused)
            await deliver(send_dead, rejected)
        except BaseException:
            await consumer.abandon()
            raise
        await consumer.commit(records)
        metrics.events.labels("ingest").inc(len(messages))
        metrics.repaired_strings.inc(batch.repaired_strings)
        for d in rejected:
            metrics.dead_letters.labels(d.reason).inc()
        if rejected:
            log.warning("dead-lettered %d of %d messages", len(rejected), len(messages))
