"""What the agents of one worker share: settings, the ClickHouse client and its thread, the
detector thread, the redactor and the metrics. Built once in :func:`streams.app.create_app`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

from streams.clickhouse import connect, migrate
from streams.codec import EventCodec, Limits
from streams.config import Settings
from streams.ingest import IngestProcessor, RawMessage
from streams.metrics import WorkerMetrics
from streams.redaction import Redactor
from streams.registry import RegistryUnavailable, registry_from_url
from streams.sink import ClickHouseSink

log = logging.getLogger(__name__)
T = TypeVar("T")


class Services:
    """Shared resources; blocking work goes to one of two single threads.

    ClickHouse calls are serialised on one thread (the embedded engine is one session per
    process, and a clickhouse-connect client runs one query at a time). Detector work runs on
    another, so ONNX inference (which releases the GIL) overlaps inserts and Kafka I/O.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redactor = Redactor.from_names(settings.redact)
        self.metrics = WorkerMetrics()
        self.processor = IngestProcessor(
            EventCodec(registry_from_url(settings.schema_registry_url), Limits(settings.max_message_bytes)),
            settings.calls_topic,
            self.redactor,
        )
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.detect_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detectors")
        self.client: Any = None
        self.started_at = time.time()
        self._ready: asyncio.Event | None = None

    # -- ClickHouse ---------------------------------------------------------------------------
    @property
    def ready(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    async def open_clickhouse(self) -> None:
        def _open() -> Any:
            client = connect(self.settings.dsn)
            applied = migrate(
                client, raw_ttl_days=self.settings.raw_ttl_days, rollup_ttl_days=self.settings.rollup_ttl_days
            )
            if applied:
                log.info("applied ClickHouse migrations: %s", ", ".join(applied))
            return client

        self.client = await asyncio.get_running_loop().run_in_executor(self.db_thread, _open)
        self.ready.set()
        log.info("llmwatch ready: %s -> %s", self.settings.calls_topic, self.settings.dsn)

    def sink(self, table: str, columns: Sequence[tuple[str, str]], replay_key: Sequence[str] = ()) -> ClickHouseSink:
        """A sink on the shared client that skips rows a crashed predecessor already wrote."""
        return ClickHouseSink(self.client, table, columns, replay_key=replay_key)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ClickHouse call on the ClickHouse thread."""
        return await asyncio.get_running_loop().run_in_executor(self.db_thread, fn, *args)

    async def write(self, sink: ClickHouseSink, rows: list[list[Any]]) -> None:
        """Insert rows and wait; if the task is cancelled mid-write, the write still completes
        before the cancellation propagates (so Faust never acks rows that were not stored)."""
        if not rows:
            return
        for row in rows:
            sink.add(row)
        started = time.perf_counter()
        write = asyncio.get_running_loop().run_in_executor(self.db_thread, sink.flush)
        try:
            written = await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            raise
        self.metrics.insert_seconds.labels(sink.table).observe(time.perf_counter() - started)
        self.metrics.rows_written.labels(sink.table).inc(written)
        if written < len(rows):  # the replay guard kept rows a crashed predecessor had stored
            self.metrics.replays_dropped.labels(sink.table).inc(len(rows) - written)

    # -- detectors ----------------------------------------------------------------------------
    async def detect(self, fn: Callable[..., T], *args: Any) -> T:
        """Run detector code on the detector thread."""
        return await asyncio.get_running_loop().run_in_executor(self.detect_thread, fn, *args)

    # -- decoding -----------------------------------------------------------------------------
    async def retry_while_registry_down(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, retried with backoff while the schema registry is unreachable: valid
        data must be neither dead-lettered nor skipped because of a registry outage."""
        delay = 0.2
        while True:
            try:
                return fn(*args)
            except RegistryUnavailable as exc:
                log.warning("schema registry unavailable, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def decode_valid(self, events: Sequence[Any]):
        """Decoded calls of a Faust batch with their positions; rejects are the ingest agent's job."""
        from streams.detection import Positioned

        out = []
        for e in events:
            m = e.message
            record = self.processor.decode_or_none(RawMessage(m.key, m.value, m.partition, m.offset))
            if record is not None:
                out.append(Positioned(record, m.partition, m.offset))
        return out
