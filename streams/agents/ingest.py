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

import logging
from typing import Any

import faust

from streams.agents.batching import register_consumers, run_pipelined
from streams.kafka.batch_consumer import BatchConsumer
from streams.pipeline.dead_letter import DeadLetter, deliver
from streams.pipeline.ingest import IngestBatch, RawMessage
from streams.storage.rows import LLM_CALL_COLUMNS
from streams.worker.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    send_dead = lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers())  # noqa: E731
    register_consumers(
        app, services,
        lambda: [BatchConsumer(s.kafka_bootstrap, s.calls_topic, s.ingest_group, s.batch_size)],
        lambda consumer: run_pipeline(consumer, services, send_dead),
    )


async def run_pipeline(consumer: BatchConsumer, services: Services, send_dead: Any) -> None:
    """Decode batch N+1 while batch N is stored; store and commit strictly in order."""
    sink = services.sink("llm_calls", LLM_CALL_COLUMNS, replay_key=())
    metrics = services.metrics

    async def decode(messages: list[RawMessage]) -> IngestBatch:
        return await services.retry_while_registry_down(services.processor.process, messages)

    async def store(messages: list[RawMessage], batch: IngestBatch) -> list[DeadLetter]:
        refused = await services.write(sink, batch.rows)
        rejected = batch.dead_letters + services.processor.storage_rejected(messages, refused)
        await deliver(send_dead, rejected)
        return rejected

    def count(messages: list[RawMessage], batch: IngestBatch, rejected: list[DeadLetter]) -> None:
        metrics.events.labels("ingest").inc(len(messages))
        metrics.repaired_strings.inc(batch.repaired_strings)
        for d in rejected:
            metrics.dead_letters.labels(d.reason).inc()
        if rejected:
            log.warning("dead-lettered %d of %d messages", len(rejected), len(messages))

    await run_pipelined(consumer, services.settings.batch_within_s, decode, store, count)
