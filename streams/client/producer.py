"""The client applications import to publish one event per LLM call, without ever being hurt by it.

``send`` encodes the event (Confluent Avro by default, JSON on request), puts it into a bounded
in-memory buffer and returns; a background task drains the buffer into an aiokafka producer that
batches and compresses. When Kafka is down nothing raises into the application: the buffer fills
up to ``max_buffered`` events, later events are dropped and counted, one rate-limited log line says
so, and the producer keeps trying to connect, so delivery resumes when the broker is back.
The key is ``service_name``: one app's events stay ordered within a partition.

Synchronous applications (web handlers, scripts) use :class:`SyncLLMWatchProducer`, which runs
the async producer on its own thread and event loop::

    from streams.client.producer import SyncLLMWatchProducer

    with SyncLLMWatchProducer("kafka:9092") as producer:
        producer.send({"service_name": "support-bot", "request_model": "gpt-4o-mini",
                       "input_messages": [{"role": "user", "content": "hi"}],
                       "output_text": "Hello!", "latency_ms": 412.0})
        print(producer.stats())

Events are checked on the caller's path exactly as the worker would check them, so an invalid
event is counted (``stats().invalid``) and logged there, not dead-lettered later; ``strict=True``
raises :class:`InvalidEventError` instead.

>>> producer = LLMWatchProducer("127.0.0.1:1", max_buffered=2)   # never started: nothing connects
>>> [producer.send({"service_name": "a", "request_model": "m"}) for _ in range(3)]
[True, True, False]
>>> producer.send({"service_name": "a"})   # no request_model: refused, not raised
False
>>> s = producer.stats(); (s.buffered, s.dropped, s.invalid)
(2, 1, 1)
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.codec import has_lz4

from schemas import latest_schema
from streams.pipeline.codec import EventCodec, check_semantics

log = logging.getLogger("llmwatch.producer")

WireFormat = Literal["avro", "json"]
_DRAIN_CHUNK = 500  # events moved from the buffer to aiokafka per wake-up


class InvalidEventError(ValueError):
    """Raised by ``send`` in strict mode when an event does not satisfy the contract."""


@dataclass(frozen=True)
class ProducerStats:
    """Counters since the producer was built."""

    sent: int  # acknowledged by Kafka
    dropped: int  # refused because the buffer was full, or still unsent at close()
    errors: int  # Kafka refused them or delivery timed out
    invalid: int  # failed the contract (never buffered)
    buffered: int  # waiting in the buffer or in flight to Kafka


class _RateLimitedLog:
    """At most one warning per ``interval_s``; the next one says how many were folded into it."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = float("-inf")
        self._suppressed = 0

    def warning(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} similar messages suppressed)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        log.warning(msg + suffix, *args)


class _QuietBootstrapFilter(logging.Filter):
    """Drops aiokafka's per-attempt "Unable connect" errors while *our* drain task retries.

    Our own rate-limited warning replaces them; other aiokafka users keep their logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not str(record.msg).startswith("Unable connect"):
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return True
        return task is None or task.get_name() != _DRAIN_TASK


_DRAIN_TASK = "llmwatch-producer-drain"
logging.getLogger("aiokafka.client").addFilter(_QuietBootstrapFilter())


def _field_defaults() -> dict[str, Any]:
    return {f["name"]: f["default"] for f in latest_schema("llm_call")["fields"] if "default" in f}


class LLMWatchProducer:
    """Asyncio producer; ``send`` is a plain, non-blocking method and is safe from any thread.

    Use it as ``async with LLMWatchProducer(...) as p: p.send(event)``, or call
    :meth:`start` / :meth:`close` yourself.
    """

    def __init__(
        self,
        bootstrap_servers: str = "127.0.0.1:9092",
        topic: str = "llm.calls",
        *,
        wire_format: WireFormat = "avro",
        schema_id: int | None = None,
        codec: EventCodec | None = None,
        max_buffered: int = 10_000,
        max_block_ms: float = 5.0,
        linger_ms: int = 20,
        max_batch_size: int = 256 * 1024,
        compression: str | None = "auto",
        acks: int | str = 1,
        request_timeout_ms: int = 15_000,
        strict: bool = False,
        log_interval_s: float = 30.0,
        client_id: str = "llmwatch-producer",
        **kafka_options: Any,
    ) -> None:
        if wire_format not in ("avro", "json"):
            raise ValueError(f"wire_format must be 'avro' or 'json', got {wire_format!r}")
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be >= 1, got {max_buffered!r}")
        if max_block_ms < 0:
            raise ValueError(f"max_block_ms must be >= 0, got {max_block_ms!r}")
        if compression == "auto":
            compression = "lz4" if has_lz4() else "gzip"
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.wire_format = wire_format
        self.codec = codec or EventCodec()
        self.schema_id = self.codec.latest_id if schema_id is None else schema_id
        self.max_buffered = max_buffered
        self.max_block_ms = max_block_ms
        self.strict = strict
        self._kafka_config = dict(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks=acks,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
            compression_type=compression,
            request_timeout_ms=request_timeout_ms,
            **kafka_options,
        )
        self._defaults = _field_defaults()
        self._rate_log = _RateLimitedLog(log_interval_s)
        self._lock = threading.Lock()
        self._buffer: deque[tuple[bytes, bytes]] = deque()
        self._in_flight = 0
        self._sent = self._dropped = self._errors = self._invalid = 0
        self._closed = False  # no new events accepted
        self._closing = False  # drain task should finish
        self._final = False  # counters frozen by close()
        self._idle = False  # drain task is waiting for a wake-up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._closing_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._kafka: AIOKafkaProducer | None = None

    # -- the caller's path ------------------------------------------------------------------
    def send(self, event: Mapping[str, Any]) -> bool:
        """Queue one event; ``True`` if it was buffered. Never blocks past ``max_block_ms``.

        Fills ``event_id`` (uuid4) and ``timestamp_ms`` (now) when missing. Never raises,
        except :class:`InvalidEventError` in strict mode.
        """
        try:
            item = self._encode(event)
        except InvalidEventError:
            if self.strict:
                raise
            return False
        except Exception:  # noqa: BLE001 - the application must never see our bugs
            log.exception("llmwatch producer: unexpected error while encoding an event")
            return False
        return self._enqueue(item)

    def _encode(self, event: Mapping[str, Any]) -> tuple[bytes, bytes]:
        record = {**self._defaults, **event}
        if not record.get("event_id"):
            record["event_id"] = str(uuid.uuid4())
        if not record.get("timestamp_ms"):
            record["timestamp_ms"] = int(time.time() * 1000)
        try:
            if self.wire_format == "json":
                value = self.codec.encode_json(record)
                self.codec.decode(value)  # the worker's own validation
            else:
                value = self.codec.encode_confluent(record, self.schema_id)
                check_semantics(record)
            if len(value) > self.codec.limits.max_bytes:
                raise ValueError(f"{len(value)} bytes exceeds the {self.codec.limits.max_bytes}-byte limit")
        except Exception as exc:  # noqa: BLE001 - fastavro raises assorted types on bad records
            with self._lock:
                self._invalid += 1
            self._rate_log.warning("llmwatch producer: invalid event not sent (%s)", exc)
            raise InvalidEventError(str(exc)) from exc
        return str(record.get("service_name", "")).encode("utf-8"), value

    def _enqueue(self, item: tuple[bytes, bytes]) -> bool:
        if not self._lock.acquire(timeout=self.max_block_ms / 1000):
            self._count_drop()
            return False
        try:
            if self._closed or len(self._buffer) + self._in_flight >= self.max_buffered:
                self._dropped += 1
                dropped, accepted, wake = self._dropped, False, False
            else:
                self._buffer.append(item)
                accepted, wake, self._idle = True, self._idle, False
        finally:
            self._lock.release()
        if not accepted:
            self._rate_log.warning(
                "llmwatch producer: buffer full (%d events) or closed; %d events dropped so far",
                self.max_buffered, dropped,
            )
        elif wake:
            self._wake_drain()
        return accepted

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped += 1

    def _wake_drain(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop already closed
                pass

    def stats(self) -> ProducerStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return ProducerStats(
                sent=self._sent,
                dropped=self._dropped,
                errors=self._errors,
                invalid=self._invalid,
                buffered=len(self._buffer) + self._in_flight,
            )

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background drain task; returns at once, whether Kafka is up or not."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._closing_event = asyncio.Event()
        self._task = self._loop.create_task(self._drain(), name=_DRAIN_TASK)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every buffered event is acknowledged or failed; ``True`` if none is left."""
        deadline = time.monotonic() + timeout
        while self.stats().buffered and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return self.stats().buffered == 0

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, then stop.

        Events still unsent at the end are counted as dropped. With Kafka unreachable it
        returns at once: nothing could be delivered anyway.
        """
        if self._final:
            return
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
        if self._kafka is not None:
            await self.flush(timeout)
        with self._lock:
            self._closing = True
        if self._closing_event is not None:
            self._closing_event.set()
        self._wake_drain()
        if self._task is not None:
            await self._bounded(self._task, deadline)
        if self._kafka is not None:
            await self._bounded(asyncio.ensure_future(self._kafka.stop()), deadline)
        with self._lock:
            self._dropped += len(self._buffer) + self._in_flight
            self._buffer.clear()
            self._in_flight = 0
            self._final = True

    @staticmethod
    async def _bounded(task: asyncio.Future[Any], deadline: float) -> None:
        try:
            await asyncio.wait_for(task, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass  # wait_for cancelled it
        except Exception as exc:  # noqa: BLE001 - closing must not raise
            log.debug("llmwatch producer: error while closing: %r", exc)

    async def __aenter__(self) -> "LLMWatchProducer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- background drain -----------------------------------------------------------------------
    async def _drain(self) -> None:
        while True:
            kafka = await self._connected()
            if kafka is None:
                return
            items = await self._take()
            if not items:
                return
            for key, value in items:
                try:
                    future = await kafka.send(self.topic, value=value, key=key)
                except Exception as exc:  # noqa: BLE001 - e.g. metadata timeout, message too large
                    self._settle(exc)
                    continue
                future.add_done_callback(self._on_delivery)

    async def _connected(self) -> AIOKafkaProducer | None:
        """The started aiokafka producer; retries with backoff until Kafka answers or we close."""
        backoff = 0.1
        while self._kafka is None and not self._closing:
            kafka = AIOKafkaProducer(**self._kafka_config)
            try:
                await kafka.start()
            except Exception as exc:  # noqa: BLE001 - KafkaConnectionError, OSError, version probe timeouts
                try:
                    await kafka.stop()
                except Exception:  # noqa: BLE001
                    pass
                self._rate_log.warning(
                    "llmwatch producer: Kafka at %s unreachable (%r); buffering up to %d events, then dropping",
                    self.bootstrap_servers, exc, self.max_buffered,
                )
                assert self._closing_event is not None
                try:
                    await asyncio.wait_for(self._closing_event.wait(), backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, 5.0)
            else:
                log.info("llmwatch producer: connected to Kafka at %s", self.bootstrap_servers)
                self._kafka = kafka
        return self._kafka

    async def _take(self) -> list[tuple[bytes, bytes]]:
        """Up to ``_DRAIN_CHUNK`` buffered items; ``[]`` once closing and empty."""
        assert self._wake is not None
        while True:
            with self._lock:
                if self._buffer:
                    n = min(len(self._buffer), _DRAIN_CHUNK)
                    items = [self._buffer.popleft() for _ in range(n)]
                    self._in_flight += n
                    return items
                if self._closing:
                    return []
                # Clear under the lock so a producer's wake-up after this point is never lost.
                self._idle = True
                self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    def _on_delivery(self, future: asyncio.Future[Any]) -> None:
        self._settle(asyncio.CancelledError() if future.cancelled() else future.exception())

    def _settle(self, exc: BaseException | None) -> None:
        with self._lock:
            if self._final:
                return
            self._in_flight -= 1
            if exc is None:
                self._sent += 1
            else:
                self._errors += 1
        if exc is not None:
            self._rate_log.warning("llmwatch producer: delivery to %s failed: %r", self.topic, exc)


class SyncLLMWatchProducer:
    """The async producer on a background thread with its own event loop, for synchronous code.

    ``send`` costs one encode plus a lock acquired with a ``max_block_ms`` timeout (default 5 ms);
    the GIL can still delay any Python call, so treat the bound as a few milliseconds, not exact.
    The producer is closed at interpreter exit if the application forgot to.
    """

    def __init__(
        self,
        bootstrap_servers: str = "127.0.0.1:9092",
        topic: str = "llm.calls",
        *,
        max_block_ms: float = 5.0,
        **options: Any,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmwatch-producer", daemon=True)
        self._thread.start()
        self._producer = LLMWatchProducer(bootstrap_servers, topic, max_block_ms=max_block_ms, **options)
        self._run(self._producer.start(), timeout=10.0)
        self._closed = False
        atexit.register(self.close)

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def send(self, event: Mapping[str, Any]) -> bool:
        """Queue one event; see :meth:`LLMWatchProducer.send`."""
        return self._producer.send(event)

    def stats(self) -> ProducerStats:
        return self._producer.stats()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything buffered is acknowledged or failed, at most ``timeout`` s."""
        if self._closed:
            return self.stats().buffered == 0
        try:
            return bool(self._run(self._producer.flush(timeout), timeout + 1.0))
        except Exception:  # noqa: BLE001 - includes concurrent.futures.TimeoutError
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout`` s, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self._run(self._producer.close(timeout), timeout + 1.0)
        except Exception as exc:  # noqa: BLE001 - closing must not raise
            log.debug("llmwatch producer: error while closing: %r", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> "SyncLLMWatchProducer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
