"""The ingest agent: raw calls topic -> decode/validate -> ``llm_calls``, rejects -> dead-letter topic.

Offsets are acked (and so committed) only after the batch's rows are written and its dead
letters delivered: Faust acks the events of a ``take_events`` batch when the loop comes back
for the next one, so the loop body must finish the write and must never raise.
"""
from __future__ import annotations

import asyncio
import logging

import faust

from streams.ingest import RawMessage
from streams.rows import LLM_CALL_COLUMNS
from streams.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    calls = app.topic(s.calls_topic, value_type=bytes, key_type=bytes, partitions=s.topic_partitions)
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    state = {}

    @app.agent(calls, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for events in stream.take_events(s.batch_size, within=s.batch_within_s):
            await services.ready.wait()
            if "sink" not in state:
                state["sink"] = services.sink("llm_calls", LLM_CALL_COLUMNS, replay_key=())
            messages = [
                RawMessage(e.message.key, e.message.value, e.message.partition, e.message.offset) for e in events
            ]
            batch = await services.retry_while_registry_down(services.processor.process, messages)
            deliveries = [
                await dead_letters.send(key=d.key, value=d.value, headers=d.headers()) for d in batch.dead_letters
            ]
            await services.write(state["sink"], batch.rows)
            await asyncio.gather(*deliveries)
            services.metrics.events.labels("ingest").inc(len(messages))
            for d in batch.dead_letters:
                services.metrics.dead_letters.labels(d.reason).inc()
            if batch.dead_letters:
                log.warning("dead-lettered %d of %d messages", len(batch.dead_letters), len(messages))
