"""What the agents of one worker share: settings, the ClickHouse client and its thread, the
detector thread, the redactor and the metrics. Built once in :func:`streams.app.create_app`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from streams.storage.clickhouse import connect, migrate
from streams.pipeline.codec import EventCodec, Limits
from streams.config import Settings
from streams.worker.health import Health
from streams.pipeline.ingest import IngestProcessor, raw_message
from streams.worker.metrics import WorkerMetrics
from streams.pipeline.redaction import Redactor
from streams.pipeline.registry import RegistryUnavailable, registry_from_url
from streams.storage.sink import ClickHouseSink

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _GroupCommit:
    """Rows waiting for a sink's next insert, and the agents waiting for that insert."""

    rows: list[list[Any]] = field(default_factory=list)
    waiters: list[tuple[asyncio.Future, list[list[Any]]]] = field(default_factory=list)
    running: bool = False


class Services:
    """Shared resources; blocking work goes to one of two single threads.

    ClickHouse calls are serialised on one thread (the embedded engine is one session per
    process, and a clickhouse-connect client runs one query at a time). Detector work runs on
    another, so ONNX inference (which releases the GIL) overlaps inserts and Kafka I/O.

    Writes are group-committed per table: rows that agents hand over while an insert into that
    table is running go into the next insert together. An idle table inserts at once; a busy one
    makes fewer, larger inserts (each insert costs ~25-50 ms of CPU in the embedded engine
    whatever its size, so three detector agents writing small batches would otherwise pay it
    three times per batch window).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redactor = Redactor.from_names(settings.redact)
        self.metrics = WorkerMetrics()
        self.processor = IngestProcessor(
            EventCodec(registry_from_url(settings.schema_registry_url), Limits(settings.max_message_bytes)),
            settings.calls_topic,
            self.redactor,
            settings.dead_letter_payload,
        )
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.detect_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detectors")
        # Decoding, validation and redaction of whole batches (and schema-registry lookups) run
        # here, not on the event loop: a 256 KB message must not stall heartbeats and commits.
        self.decode_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self.client: Any = None
        self.started_at = time.time()
        self._ready: asyncio.Event | None = None
        self.loading: set[str] = set()  # agents whose detectors are still being loaded
        self._sinks: dict[tuple, ClickHouseSink] = {}
        self.health = Health(settings.health_insert_failing_s, settings.health_lag_stalled_s)
        self._commits: dict[str, _GroupCommit] = {}

    # -- ClickHouse ---------------------------------------------------------------------------
    @property
    def ready(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    async def open_clickhouse(self) -> None:
        def _open() -> Any:
            # On a cluster an insert must return only once the shards hold its rows: the offsets
            # are committed after it, and the replay guard looks for those rows.
            cluster = {"settings": {"distributed_foreground_insert": 1}} if self.settings.clickhouse_cluster else {}
            client = connect(self.settings.dsn, **cluster)
            applied = migrate(
                client, raw_ttl_days=self.settings.raw_ttl_days, rollup_ttl_days=self.settings.rollup_ttl_days,
                cluster=self.settings.clickhouse_cluster,
            )
            if applied:
                log.info("applied ClickHouse migrations: %s", ", ".join(applied))
            return client

        self.client = await asyncio.get_running_loop().run_in_executor(self.db_thread, _open)
        self.ready.set()
        log.info("llmwatch ready: %s -> %s", self.settings.calls_topic, self.settings.dsn)

    def sink(
        self, table: str, columns: Sequence[tuple[str, str]], replay_key: Sequence[str] | None = ()
    ) -> ClickHouseSink:
        """The table's sink on the shared client (one per table, shared by the agents writing to
        it); with ``replay_key`` set it skips rows a crashed predecessor already wrote, and rows
        of an event (``event_id`` plus the replay key's columns) that is already stored."""
        key = (table, tuple(columns), None if replay_key is None else tuple(replay_key))
        if key not in self._sinks:
            if any(k[0] == table for k in self._sinks):
                raise ValueError(f"table {table} already has a sink with other columns or replay key")
            self._sinks[key] = ClickHouseSink(self.client, table, columns, replay_key=replay_key, dedup_key=replay_key)
        return self._sinks[key]

    def degraded_reasons(self) -> list[str]:
        """Why the worker is degraded now (empty when healthy); updates the gauges too."""
        now = time.monotonic()
        failing = [(sink.table, sink.failing_since) for sink in self._sinks.values() if sink.failing_since is not None]
        for sink in self._sinks.values():
            since = sink.failing_since
            self.metrics.insert_failing_seconds.labels(sink.table).set(0 if since is None else now - since)
        reasons = self.health.reasons(failing, now)
        self.metrics.degraded.set(1 if reasons else 0)
        return reasons

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ClickHouse call on the ClickHouse thread."""
        return await asyncio.get_running_loop().run_in_executor(self.db_thread, fn, *args)

    async def write(self, sink: ClickHouseSink, rows: list[list[Any]]) -> list[tuple[list[Any], str]]:
        """Insert rows (group-committed with other agents' rows for the table) and wait until
        they are stored; returns those of ``rows`` the engine refused for their data, with its
        message (see :mod:`streams.storage.sink`). Cancelling the wait (a SIGTERM) leaves the insert
        running on the ClickHouse thread; the batch is not acked, so it is replayed and the
        replay guard drops whatever did get stored."""
        if not rows:
            return []
        group = self._commits.setdefault(sink.table, _GroupCommit())
        done = asyncio.get_running_loop().create_future()
        group.rows.extend(rows)
        group.waiters.append((done, rows))
        if not group.running:
            group.running = True
            asyncio.ensure_future(self._commit_loop(sink, group))
        return await asyncio.shield(done)

    async def _commit_loop(self, sink: ClickHouseSink, group: _GroupCommit) -> None:
        """Insert whatever is waiting, one insert at a time, until nothing is."""
        try:
            while group.rows:
                rows, waiters = group.rows, group.waiters
                group.rows, group.waiters = [], []
                for row in rows:
                    sink.add(row)
                started = time.perf_counter()
                try:
                    written = await asyncio.get_running_loop().run_in_executor(self.db_thread, sink.flush)
                except Exception as exc:  # the sink retries forever by default; this is a bug or a bound
                    for w, _ in waiters:
                        if not w.done():
                            w.set_exception(exc)
                    continue
                self.metrics.insert_seconds.labels(sink.table).observe(time.perf_counter() - started)
                self.metrics.rows_written.labels(sink.table).inc(written)
                self.metrics.rows_rejected.labels(sink.table).inc(len(sink.rejected))
                refused = {id(row): (row, message) for row, message in sink.rejected}
                self.metrics.duplicates_dropped.labels(sink.table).inc(sink.duplicates_dropped)
                replayed = len(rows) - written - len(refused) - sink.duplicates_dropped
                if replayed > 0:  # the replay guard kept rows a crashed predecessor had stored
                    self.metrics.replays_dropped.labels(sink.table).inc(replayed)
                for w, own in waiters:
                    if not w.done():
                        w.set_result([refused[id(row)] for row in own if id(row) in refused])
        finally:
            group.running = False

    # -- detectors ----------------------------------------------------------------------------
    async def detect(self, fn: Callable[..., T], *args: Any) -> T:
        """Run detector code on the detector thread."""
        return await asyncio.get_running_loop().run_in_executor(self.detect_thread, fn, *args)

    # -- decoding -----------------------------------------------------------------------------
    async def retry_while_registry_down(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the decode thread, retried with backoff while the schema registry is
        unreachable: valid data must be neither dead-lettered nor skipped because of an outage."""
        delay = 0.2
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await loop.run_in_executor(self.decode_thread, fn, *args)
            except RegistryUnavailable as exc:
                log.warning("schema registry unavailable, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def decode_valid(self, events: Sequence[Any]):
        """Decoded calls of a Faust batch with their positions; rejects are the ingest agent's job."""
        from streams.pipeline.detection import Positioned

        out = []
        for e in events:
            m = e.message
            record = self.processor.decode_or_none(raw_message(m))
            if record is not None:
                out.append(Positioned(record, m.partition, m.offset))
        return out
