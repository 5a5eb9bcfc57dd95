"""The ingest agent: raw calls topic -> decode/validate -> ``llm_calls``, rejects -> dead-letter topic.

Offsets are acked (and so committed) only after the batch's rows are written and its dead
letters delivered: the batches come from ``noack_take`` and are acked by hand at the end of
the loop body. (``take_events`` acks a batch in a ``finally``, so a SIGTERM or an error while
an insert hangs committed rows that were never stored.)
"""
from __future__ import annotations

import logging

import faust

from streams.agents.acks import ack_all
from streams.pipeline.dead_letter import deliver
from streams.pipeline.ingest import raw_message
from streams.storage.rows import LLM_CALL_COLUMNS
from streams.worker.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    calls = app.topic(s.calls_topic, value_type=bytes, key_type=bytes, partitions=s.topic_partitions)
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    state = {}

    @app.agent(calls, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(s.batch_size, within=s.batch_within_s):
            await services.ready.wait()
            if "sink" not in state:
                state["sink"] = services.sink("llm_calls", LLM_CALL_COLUMNS, replay_key=())
            messages = [raw_message(e.message) for e in events]
            batch = await services.retry_while_registry_down(services.processor.process, messages)
            refused = await services.write(state["sink"], batch.rows)
            rejected = batch.dead_letters + services.processor.storage_rejected(messages, refused)
            await deliver(lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers()), rejected)
            await ack_all(stream, events)
            services.metrics.events.labels("ingest").inc(len(messages))
            services.metrics.repaired_strings.inc(batch.repaired_strings)
            for d in rejected:
                services.metrics.dead_letters.labels(d.reason).inc()
            if rejected:
                log.warning("dead-lettered %d of %d messages", len(rejected), len(messages))
