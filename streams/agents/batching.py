"""What the batch-consumer agents share: a Faust service owning their consumers, and the
two-stage loop that decodes batch N+1 while batch N is stored, committing strictly in order.

Ingest (calls -> ``llm_calls``), store (verdicts and drift reports -> ClickHouse) and the OTLP
bridge (spans -> calls topic) all read :class:`~streams.kafka.batch_consumer.BatchConsumer`
batches and commit a batch only once its output is written and its dead letters delivered.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Sequence

import faust
from aiokafka.errors import ConsumerStoppedError

from streams.kafka.batch_consumer import BatchConsumer
from streams.pipeline.ingest import RawMessage, raw_message
from streams.worker.services import Services

#: Decoded batches waiting for their output: one decodes while one is written.
PIPELINE_DEPTH = 1

Decode = Callable[[list[RawMessage]], Awaitable[Any]]
Finish = Callable[[list[RawMessage], Any], Awaitable[Any]]
Done = Callable[[list[RawMessage], Any, Any], None]


def register_consumers(
    app: faust.App,
    services: Services,
    build: Callable[[], list[BatchConsumer]],
    run: Callable[[BatchConsumer], Awaitable[None]],
) -> None:
    """A service started and stopped with the app: ``build()``'s consumers, each driven by
    ``run(consumer)`` once ClickHouse (or the detect role's stand-in) is ready."""

    class BatchConsumers(faust.Service):
        consumers: list[BatchConsumer]

        async def on_start(self) -> None:
            self.consumers = build()
            for consumer in self.consumers:
                await consumer.start()

        async def on_stop(self) -> None:
            for consumer in self.consumers:
                await consumer.stop()

        @faust.Service.task
        async def _run(self) -> None:
            await services.ready.wait()
            try:
                await asyncio.gather(*(run(c) for c in self.consumers))
            except ConsumerStoppedError:
                # on_stop closed the consumers under a waiting take(): the worker is stopping, not
                # crashing (a "crash" here kept the worker up until the shutdown bound ran out)
                if not self.should_stop:
                    raise

    app.service(BatchConsumers)


async def run_pipelined(consumer: BatchConsumer, within_s: float, decode: Decode, finish: Finish, done: Done) -> None:
    """Take, ``decode`` (awaited, on a thread of the caller's choosing) and hand over to a
    second stage that runs ``finish`` (write, dead-letter), commits, then calls
    ``done(messages, batch, what finish returned)`` (metrics). A batch that is not finished is abandoned: read again by the next owner."""
    queue: asyncio.Queue[tuple[Sequence[Any], list[RawMessage], Any]] = asyncio.Queue(PIPELINE_DEPTH)
    second = asyncio.ensure_future(_finish_loop(queue, consumer, finish, done))
    try:
        while True:
            records = await consumer.take(within_s)
            if not records:
                if second.done():
                    return second.result()
                continue
            messages = [raw_message(r) for r in records]
            try:
                await queue.put((records, messages, await decode(messages)))
            except BaseException:
                await consumer.abandon()
                raise
    finally:
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        while not queue.empty():  # decoded, never written: read again by whoever owns them next
            queue.get_nowait()
            await consumer.abandon()


async def _finish_loop(queue: asyncio.Queue, consumer: BatchConsumer, finish: Finish, done: Done) -> None:
    while True:
        records, messages, batch = await queue.get()
        try:
            finished = await finish(messages, batch)
        except BaseException:
            await consumer.abandon()
            raise
        await consumer.commit(records)
        done(messages, batch, finished)
