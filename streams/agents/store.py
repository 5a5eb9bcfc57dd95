"""The store role's second half: verdicts and drift reports from Kafka -> ClickHouse.

Detect workers publish what they find; this writes it, exactly once: verdict rows keep the
position of the call they judge, so the replay guard (keyed by that position and the detector)
drops a verdict a detect worker republished after a crash. Drift reports carry a deterministic
``report_id`` in a ReplacingMergeTree. Offsets are committed after the insert, as in ingest.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import faust

from streams.agents.batching import register_consumers, run_pipelined
from streams.kafka.batch_consumer import BatchConsumer
from streams.pipeline.dead_letter import deliver
from streams.pipeline.detection import DETECTION_COLUMNS
from streams.pipeline.drift_reports import DRIFT_REPORT_COLUMNS
from streams.pipeline.ingest import RawMessage
from streams.pipeline.verdicts import StoredBatch, VerdictDecoder, drift_report_rows
from streams.worker.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    send_dead = lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers())  # noqa: E731
    decoder = VerdictDecoder(topic=s.results_topic)
    flows = {  # topic -> table, columns, replay key, decoder
        s.results_topic: ("detections", DETECTION_COLUMNS, ("detector",), decoder.rows),
        s.drift_reports_topic: ("drift_reports", DRIFT_REPORT_COLUMNS, None, lambda m: drift_report_rows(m, s.drift_reports_topic)),
    }
    register_consumers(
        app, services,
        lambda: [BatchConsumer(s.kafka_bootstrap, topic, s.group_id, s.batch_size) for topic in flows],
        lambda consumer: store_loop(consumer, services, send_dead, *flows[consumer.topic]),
    )


async def store_loop(
    consumer: BatchConsumer,
    services: Services,
    send_dead: Any,
    table: str,
    columns: Sequence[tuple[str, str]],
    replay_key: Sequence[str] | None,
    decode: Callable[[Sequence[RawMessage]], StoredBatch],
) -> None:
    """Decode a batch (decode thread) while the one before is inserted and its rejects
    dead-lettered; commit in order (:func:`~streams.agents.batching.run_pipelined`)."""
    sink = services.sink(table, columns, replay_key=replay_key)
    metrics = services.metrics

    async def decoded(messages: list[RawMessage]) -> StoredBatch:
        return await services.retry_while_registry_down(decode, messages)

    async def write(messages: list[RawMessage], batch: StoredBatch) -> None:
        await services.write(sink, batch.rows)
        await deliver(send_dead, batch.dead_letters)

    def count(messages: list[RawMessage], batch: StoredBatch, _: None) -> None:
        metrics.events.labels(f"store_{table}").inc(len(messages))
        for d in batch.dead_letters:
            metrics.dead_letters.labels(d.reason).inc()

    await run_pipelined(consumer, services.settings.batch_within_s, decoded, write, count)
