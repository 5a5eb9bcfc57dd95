"""The ingest agent: raw calls topic -> decode/validate -> ClickHouse, rejects -> dead-letter topic.

Offsets are acked (and so committed) only after the batch's rows are written and its dead
letters delivered: Faust acks the events of a ``take_events`` batch when the loop comes back
for the next one, so the loop body must finish the write and must never raise.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import faust

from streams.clickhouse import connect, migrate
from streams.codec import EventCodec, Limits
from streams.config import Settings
from streams.ingest import IngestProcessor, RawMessage
from streams.registry import RegistryUnavailable, registry_from_url
from streams.rows import LLM_CALL_COLUMNS
from streams.sink import ClickHouseSink

log = logging.getLogger(__name__)


def register(app: faust.App, settings: Settings) -> None:
    calls = app.topic(settings.calls_topic, value_type=bytes, key_type=bytes, partitions=settings.topic_partitions)
    dead_letters = app.topic(settings.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    processor = IngestProcessor(
        EventCodec(registry_from_url(settings.schema_registry_url), Limits(settings.max_message_bytes)),
        settings.calls_topic,
    )
    # chDB and clickhouse-connect calls block: one worker thread keeps them off the event loop
    # and serialised (the embedded engine is one session per process).
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
    state: dict[str, ClickHouseSink] = {}

    @app.task
    async def open_clickhouse() -> None:
        loop = asyncio.get_running_loop()

        def _open() -> ClickHouseSink:
            client = connect(settings.dsn)
            applied = migrate(client, raw_ttl_days=settings.raw_ttl_days, rollup_ttl_days=settings.rollup_ttl_days)
            if applied:
                log.info("applied ClickHouse migrations: %s", ", ".join(applied))
            return ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS, replay_key=())

        try:
            state["sink"] = await loop.run_in_executor(executor, _open)
        except Exception as exc:  # no database, no worker: stop loudly instead of stalling
            log.critical("cannot open ClickHouse at %s: %s", settings.dsn, exc)
            await app.crash(exc)
            return
        log.info("llmwatch ingest ready: %s -> %s", settings.calls_topic, settings.dsn)

    @app.agent(calls)
    async def ingest(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            while "sink" not in state:  # first batch can beat the ClickHouse start-up task
                await asyncio.sleep(0.05)
            sink = state["sink"]
            messages = [
                RawMessage(e.message.key, e.message.value, e.message.partition, e.message.offset) for e in events
            ]
            batch = await _process_with_retry(processor, messages)
            deliveries = [
                await dead_letters.send(key=d.key, value=d.value, headers=d.headers()) for d in batch.dead_letters
            ]
            for row in batch.rows:
                sink.add(row)
            write = loop.run_in_executor(executor, sink.flush)
            try:
                await asyncio.shield(write)
                await asyncio.gather(*deliveries)
            except asyncio.CancelledError:
                # Stopping mid-write: let the write finish before Faust acks these events.
                await asyncio.wait([write])
                raise
            if batch.dead_letters:
                log.warning("dead-lettered %d of %d messages", len(batch.dead_letters), len(messages))


async def _process_with_retry(processor: IngestProcessor, messages: list[RawMessage]):
    delay = 0.2
    while True:
        try:
            return processor.process(messages)
        except RegistryUnavailable as exc:  # retry: valid data must not be dead-lettered
            log.warning("schema registry unavailable, retrying in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
